"""Areas 7 and 9: the context's namespace, several files in KUBECONFIG (merged,
first file wins, relative paths relative to the file that holds them), and which
context kubectl picks when several use the cluster."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conformance.cases import (
    ADMIN,
    SA_ADMIN,
    Case,
    admin_user,
    b64,
    cluster,
    config,
    variant,
    write,
)
from tests.conformance.conftest import Lab

# --- the context's namespace -----------------------------------------------------


@variant("namespace-from-context", "namespace")
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), admin_user(lab), namespace=ns)
    return Case(kubeconfig=write(d / "config", document), who=ADMIN, namespace_from_context=True)


@variant("namespace-from-context-via-kubeconfig-env", "namespace")
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), {"token": lab.sa_token}, namespace=ns)
    path = write(d / "config", document)
    return Case(env={"KUBECONFIG": str(path)}, who=SA_ADMIN, namespace_from_context=True)


# --- several files in KUBECONFIG ------------------------------------------------------


def _files(lab: Lab, d: Path) -> tuple[Path, Path, Path]:
    """Three directories: one for the context, one for the cluster (CA as a relative
    file), one for the user (certificate and key as relative files)."""
    a, b, c = d / "contexts", d / "clusters", d / "users"
    for directory in (a, b, c):
        (directory / "files").mkdir(parents=True)
    (b / "files" / "ca.crt").write_bytes(lab.ca_pem)
    (c / "files" / "admin.crt").write_bytes(lab.admin.crt.read_bytes())
    (c / "files" / "admin.key").write_bytes(lab.admin.key.read_bytes())
    return a, b, c


def _split(lab: Lab, d: Path) -> list[Path]:
    a, b, c = _files(lab, d)
    return [
        write(
            a / "config",
            {
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            },
        ),
        write(
            b / "config",
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": lab.server, "certificate-authority": "files/ca.crt"},
                    }
                ]
            },
        ),
        write(
            c / "config",
            {
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "client-certificate": "files/admin.crt",
                            "client-key": "files/admin.key",
                        },
                    }
                ]
            },
        ),
    ]


def _kubeconfig_env(paths: list[Path]) -> dict[str, str]:
    return {"KUBECONFIG": os.pathsep.join(str(p) for p in paths)}


@variant("merge-split-over-three-files-relative-paths", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "elsewhere").mkdir()
    return Case(env=_kubeconfig_env(_split(lab, d)), who=ADMIN, cwd=d / "elsewhere")


@variant("merge-first-file-wins", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    broken = write(
        d / "late" / "config",
        {
            "clusters": [
                {"name": "c", "cluster": {"server": f"https://127.0.0.1:{lab.dead_port}"}}
            ],
            "users": [{"name": "u", "user": {"token": "not-a-token"}}],
            "contexts": [{"name": "ctx", "context": {"cluster": "nowhere", "user": "u"}}],
            "current-context": "other",
        },
    )
    return Case(env=_kubeconfig_env([*_split(lab, d), broken]), who=ADMIN)


@variant("merge-missing-file-skipped", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    paths = [d / "does-not-exist", *_split(lab, d)]
    return Case(env=_kubeconfig_env(paths), who=ADMIN)


@variant("merge-broken-first-file-wins", "merging", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    other = lab.material.other_ca.crt.read_bytes()
    first = write(
        d / "first" / "config",
        {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": lab.server, "certificate-authority-data": b64(other)},
                }
            ],
        },
    )
    return Case(env=_kubeconfig_env([first, *_split(lab, d)]))


# --- several contexts for the cluster ---------------------------------------------


@variant("context-current-among-several", "contexts")
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), admin_user(lab))
    document["users"].append({"name": "bad", "user": {"token": "not-a-token"}})
    document["contexts"] = [
        {"name": "a-bad", "context": {"cluster": "c", "user": "bad"}},
        {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
        {"name": "z-bad", "context": {"cluster": "c", "user": "bad"}},
    ]
    return Case(kubeconfig=write(d / "config", document), who=ADMIN)


@variant("context-current-other-cluster-names", "contexts")
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), admin_user(lab), name="prod-eu")
    document["clusters"].insert(
        0, {"name": "c", "cluster": {"server": f"https://127.0.0.1:{lab.dead_port}"}}
    )
    return Case(kubeconfig=write(d / "config", document), who=ADMIN, cluster="prod-eu")


@variant("merge-kubeconfig-symlink-paths-relative-to-link", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # The CA sits beside the link, not beside the file it points to.
    (d / "ca.crt").write_bytes(lab.ca_pem)
    real = write(
        d / "real" / "config",
        config(
            cluster(lab, certificate_authority_data=None, certificate_authority="ca.crt"),
            admin_user(lab),
        ),
    )
    (d / "link").symlink_to(real)
    return Case(env={"KUBECONFIG": str(d / "link")}, who=ADMIN)


# --- "~" and explicit files: kubectl expands nothing; the shell does, when it can ----


def _tilde_dir_config(lab: Lab, d: Path) -> None:
    write(d / "~" / "config", config(cluster(lab), admin_user(lab)))


@variant("merge-kubeconfig-env-tilde-is-not-home", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    _tilde_dir_config(lab, d)  # ./~/config, relative to the working directory
    return Case(env={"KUBECONFIG": "~/config"}, who=ADMIN, cwd=d)


@variant("merge-kubeconfig-flag-tilde-is-not-home", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    _tilde_dir_config(lab, d)
    return Case(kubeconfig=Path("~/config"), who=ADMIN, cwd=d)


@variant("merge-kubeconfig-env-tilde-only-in-home", "merging", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    write(d.parent / "home" / "config", config(cluster(lab), admin_user(lab)))
    return Case(env={"KUBECONFIG": "~/config"}, cwd=d)


@variant("merge-flag-wins-over-kubeconfig-env", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    broken = write(
        d / "broken", config(cluster(lab, server=f"https://127.0.0.1:{lab.dead_port}"), {})
    )
    good = write(d / "config", config(cluster(lab), admin_user(lab)))
    return Case(kubeconfig=good, env={"KUBECONFIG": str(broken)}, who=ADMIN)


@variant("merge-exec-command-relative-to-its-own-file", "merging")
def _(lab: Lab, d: Path, ns: str) -> Case:
    from tests.conformance.variants_exec import V1, plugin

    a, b = d / "contexts", d / "users"
    plugin(b / "bin" / "get-token", V1, {"token": lab.sa_token})
    first = write(a / "config", config(cluster(lab), {}))
    exec_body = {"apiVersion": V1, "command": "bin/get-token", "interactiveMode": "Never"}
    second = write(b / "config", {"users": [{"name": "u", "user": {"exec": exec_body}}]})
    # The first file defines user "u" too, but empty: drop it so the second one's counts.
    document = config(cluster(lab), {})
    document["users"] = []
    write(first, document)
    return Case(env={"KUBECONFIG": f"{first}{os.pathsep}{second}"}, who=SA_ADMIN, cwd=d)


@variant("merge-explicit-kubeconfig-missing", "merging", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return Case(kubeconfig=d / "no-such-file")


@variant("merge-every-kubeconfig-env-file-missing", "merging", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return Case(env={"KUBECONFIG": f"{d / 'a'}{os.pathsep}{d / 'b'}"})
