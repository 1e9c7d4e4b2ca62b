"""Where the outputs go, checked before the cluster is changed, and written there.

The default file name (`CLUSTER.EXT`, `SA@CLUSTER.EXT` for another ServiceAccount
than `default`), `--out` with its placeholders, the CA file beside it, the checks
that every output of every job can be written and that no two jobs write the same
file or variables, and the writing itself (through files.py: atomic, 0600, never
through a planted link; a kubeconfig merged under its lock, lock.py).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bootstrap.errors import UsageError
from bootstrap.outputs import emit, files

if TYPE_CHECKING:
    from bootstrap.steps.options import Options

log = logging.getLogger("bootstrap")

FILE_FORMATS = {"env": "env", "kubeconfig": "kubeconfig", "json": "json", "dotenv": "env"}
FILE_FORMATS.update(emit.SECRET_FORMATS)


def default_stem(cluster: str, service_account: str) -> str:
    """`dev` for the default ServiceAccount, `deployer@dev` for another one (as the
    kubeconfig entry NS/SA@CLUSTER): `@` is in no file-safe cluster name nor in a
    ServiceAccount name, so two (cluster, account) pairs never share a name."""
    stem = emit.safe_file_name(cluster)
    return stem if service_account == "default" else f"{service_account}@{stem}"


def output_path(options: Options, cwd: Path) -> Path | None:
    """Where the output goes; None means stdout (or, for github, the runner's files)."""
    if options.out == "-" or options.format == "github" or options.apply_to:
        return None
    if options.out:
        out = options.out.replace("{cluster}", emit.safe_file_name(options.cluster))
        out = out.replace("{service_account}", options.service_account)
        return (cwd / Path(out).expanduser()).absolute()
    stem = default_stem(options.cluster, options.service_account)
    return cwd / f"{stem}.{FILE_FORMATS[options.format]}"


def ca_path(options: Options, cwd: Path, environ: Mapping[str, str]) -> Path | None:
    """Where the CA file goes; None when the format needs none: a kubeconfig embeds
    the CA, and so does json on stdout (`ca_crt`)."""
    if options.format in ("kubeconfig", *emit.SECRET_FORMATS) or (
        options.format == "json" and options.out == "-"
    ):
        return None
    if options.format == "github":
        return files.ca_path_for(None, options.cluster, Path(environ.get("RUNNER_TEMP") or cwd))
    return files.ca_path_for(output_path(options, cwd), options.cluster, cwd)


def check_output_location(options: Options, cwd: Path, environ: Mapping[str, str]) -> None:
    """Fail before any request if an output cannot be written, so nothing is created in
    vain: untrusted symlinks, non-regular files, missing or unwritable directories."""
    if options.format == "github":
        if not environ.get("GITHUB_ENV"):
            raise UsageError("--format github needs $GITHUB_ENV: run it inside GitHub Actions")
        for variable in ("GITHUB_ENV", "GITHUB_OUTPUT"):
            if environ.get(variable):
                files.check_writable(cwd / environ[variable], append_to=True)
    out = output_path(options, cwd)
    if out is not None:
        files.check_writable(out)
        if options.format == "kubeconfig":
            files.check_readable(out)
            files.check_writable(out.with_name(out.name + ".bak"))
    cacert = ca_path(options, cwd, environ)
    if cacert is not None:
        files.check_writable(cacert)


def check_outputs(jobs: list[Options], cwd: Path, environ: Mapping[str, str]) -> None:
    """check_output_location for every job, and no two jobs writing the same file or
    (github) the same variable names: else one would silently overwrite the other."""
    writers: dict[str, tuple[Options, bool]] = {}
    prefixes: dict[str, Options] = {}
    for options in jobs:
        check_output_location(options, cwd, environ)
        out, cacert = output_path(options, cwd), ca_path(options, cwd, environ)
        for path, is_ca in ((out, False), (cacert, True)):
            if path is None:
                continue
            key = os.path.normpath(path)
            other, other_is_ca = writers.setdefault(key, (options, is_ca))
            # The same cluster's CA file may be shared: same content.
            if other is not options and not (
                is_ca and other_is_ca and other.cluster == options.cluster
            ):
                raise UsageError(
                    f"{_job(other)} and {_job(options)} would both write {path}; "
                    "give them distinct --out names (or run them separately)"
                )
        if options.format == "github":
            other = prefixes.setdefault(options.variable_prefix, options)
            if other is not options:
                raise UsageError(
                    f"--format github: {_job(other)} and {_job(options)} would append the same "
                    "variable names to $GITHUB_ENV; add e.g. --env-prefix "
                    "'{cluster}_{service_account}_'"
                )


def _job(options: Options) -> str:
    return f"cluster {options.cluster!r} (service account {options.service_account!r})"


def write_outputs(
    issued: emit.Issued,
    options: Options,
    cwd: Path,
    environ: Mapping[str, str],
    stdout: IO[str] | None = None,
    deadline: float | None = None,
) -> Path | None:
    """Write what the user asked for. `deadline` (time.monotonic) bounds the wait for
    a kubeconfig's lock; default: --timeout from now."""
    stdout = stdout or sys.stdout  # looked up now, so a redirected sys.stdout is honoured
    check_output_location(options, cwd, environ)  # again: the run may have taken a while
    out = output_path(options, cwd)
    prefix = options.variable_prefix
    if options.format in emit.SECRET_FORMATS:
        from bootstrap.outputs import deliver

        text = deliver.render(issued, options)
    elif options.format == "kubeconfig":
        if out is None:
            text = emit.render_kubeconfig(issued)
        else:
            from bootstrap.outputs.lock import locked

            wait = options.timeout if deadline is None else deadline - time.monotonic()
            with locked(out, wait):
                existing = files.read_existing_kubeconfig(out)
                text = emit.render_kubeconfig(issued, existing)
                if existing is not None:
                    kept = files.backup(out)
                    log.info("merging into existing %s (previous version kept as %s)", out, kept)
                files.write_atomic(out, text.encode(), 0o600)
            log.info("wrote %s (mode 0600)", out)
            return out
    else:
        cacert = ca_path(options, cwd, environ) if issued.ca_pem else None
        if cacert is not None and issued.ca_pem:
            files.write_atomic(cacert, issued.ca_pem, 0o644)
        if options.format == "github":
            # The mask must reach the runner before the token can appear anywhere else.
            stdout.write(emit.github_mask(issued))
            stdout.flush()
            files.append(cwd / environ["GITHUB_ENV"], emit.render_dotenv(issued, cacert, prefix))
            if environ.get("GITHUB_OUTPUT"):
                files.append(
                    cwd / environ["GITHUB_OUTPUT"],
                    emit.render_github_outputs(issued, cacert, prefix),
                )
            log.info(
                "exported %s to $GITHUB_ENV", ", ".join(emit.variables(issued, cacert, prefix))
            )
            return None
        if options.format == "json":
            text = emit.render_json(issued, cacert)
        elif options.format == "dotenv":
            text = emit.render_dotenv(issued, cacert, prefix, ca_data=True)
        else:
            text = emit.render_env(issued, cacert, prefix)
    if out is None:
        stdout.write(text)
        stdout.flush()
    else:
        files.write_atomic(out, text.encode(), 0o600)
        log.info("wrote %s (mode 0600)", out)
    return out
