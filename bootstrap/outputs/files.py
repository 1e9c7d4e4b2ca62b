"""Writing the outputs, and reading back the files they replace, without being tricked.

Every file the tool writes or reads back (the output, the CA file beside it, the
`.bak` of a merge, the kubeconfig merged into, $GITHUB_ENV and $GITHUB_OUTPUT) is
reached by paths.py's walk: trusted symlinks only, regular files only. Then:

- Writes are atomic: an anonymous O_TMPFILE file of the same directory (Linux; else
  a temp file created O_CREAT|O_EXCL|O_NOFOLLOW) with mode 0600 (never wider, not
  even for an instant), fsynced, then linked in under its name (or renamed over the
  target). A failed or killed write leaves the previous file intact and no temp file
  (but for a kill between that link and the rename: the next write there removes it).
- Every other file the tool reads (kubeconfigs, CA and token files, client
  certificates and keys, `check FILE`, the in-cluster ServiceAccount files) goes
  through `read_input`: regular files only (a FIFO, socket or device such as
  /dev/zero is refused before it is opened, and checked again on the open file),
  opened O_NONBLOCK|O_NOCTTY, at most `limit` bytes (so it cannot hang past
  --timeout nor fill the memory); the caller names the error class, hence the exit
  code (3 for the kubeconfig and what it names, 2 for `check FILE`).
- A kubeconfig merge is done under client-go's lock, `FILE.lock` (lock.py), whose
  directory is reached by the same walk.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from bootstrap.errors import OutputError
from bootstrap.inputs import (  # the one reader of inputs, and what files.py shares with it
    MAX_INPUT_BYTES,
    MAX_PEM_BYTES,
    MAX_TOKEN_BYTES,
    read_input,
)
from bootstrap.inputs import (
    kind as _kind,
)
from bootstrap.inputs import (
    reason as _reason,
)
from bootstrap.inputs import (
    size_text as _size,
)
from bootstrap.kube.kubeconfig import parse
from bootstrap.outputs.paths import READ, parent, regular, write_failure

# The most read back of an existing output (--renew-before; a kubeconfig merged into).
MAX_OUTPUT_BYTES = MAX_INPUT_BYTES
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# Temp and probe files are `.bt-` + 8 hex digits + `.tmp`; a killed run's are removed
# by the next write into the same directory once they are this old (seconds).
_TEMP_NAME = re.compile(r"\.bt-[0-9a-f]{8}\.tmp")
LEFTOVER_AGE = 600
_TEMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def random_hex(nbytes: int) -> str:
    """Random hex for temp and probe names (what secrets.token_hex does, without the
    import of hmac and hashlib it brings into every run)."""
    return os.urandom(nbytes).hex()


def ca_path_for(out: Path | None, cluster: str, cwd: Path) -> Path:
    """The CA file goes beside the output (`creds.env` -> `creds.ca.crt`), or in the
    current directory when the output is stdout. Not resolved: a symlink at that
    name is checked when it is written."""
    from bootstrap.outputs.emit import safe_file_name

    if out is None:
        return cwd.absolute() / f"{safe_file_name(cluster)}.ca.crt"
    return out.absolute().with_name(out.name.rsplit(".", 1)[0] + ".ca.crt")


# --- checks before any request ----------------------------------------------------------


def check_writable(path: Path, append_to: bool = False) -> None:
    """Fail now, before the cluster is changed, if `path` could not be written later:
    untrusted symlink, not a regular file, directory missing or not writable, or a
    file of another user in a sticky directory, which only its owner may replace."""
    with parent(path) as (dir_fd, name):
        existing = regular(dir_fd, name, path)
        if append_to and existing is not None:
            try:
                os.close(os.open(name, _APPEND & ~os.O_CREAT, dir_fd=dir_fd))
            except OSError as e:
                raise OutputError(write_failure(path, e)) from None
            return
        if existing is not None:
            _check_replaceable(existing, os.fstat(dir_fd), path)
        # An anonymous file where there is one: a kill can leave no probe behind.
        anonymous = _anonymous_file(dir_fd, 0o600)
        if anonymous is not None:
            os.close(anonymous)
            return
        probe = f".bt-{random_hex(4)}.tmp"
        try:
            os.close(os.open(probe, _TEMP, 0o600, dir_fd=dir_fd))
            os.unlink(probe, dir_fd=dir_fd)
        except OSError as e:
            raise OutputError(write_failure(path, e)) from None


def _check_replaceable(info: os.stat_result, directory: os.stat_result, path: Path) -> None:
    """In a sticky directory (/tmp) only the file's owner, the directory's owner or root
    may rename over a file: the kernel refuses the others (EPERM), and by then the
    cluster would have been changed."""
    euid = os.geteuid()
    if not directory.st_mode & stat.S_ISVTX or euid in (0, info.st_uid, directory.st_uid):
        return
    raise OutputError(
        f"cannot write {path}: it belongs to uid {info.st_uid}, not to you (uid {euid}), "
        f"in the sticky directory {path.parent}, where only its owner may replace it: "
        "remove it or choose another --out"
    )


def check_readable(path: Path) -> None:
    """The kubeconfig to merge into, if it exists, must be a regular file we can read."""
    read_bytes(path)


# --- reading back ---------------------------------------------------------------------


def read_bytes(path: Path, *, trusted_owner: bool = False) -> bytes | None:
    """The content of the regular file `path` (at most MAX_OUTPUT_BYTES), or None when
    it does not exist. `trusted_owner`: a file owned by anyone but the user running the
    tool or root is refused (exit 9) before it is opened, as a planted symlink is."""
    with parent(path) as (dir_fd, name):
        info = regular(dir_fd, name, path, "read")
        if info is None:
            return None
        if trusted_owner:
            _check_owner(info, path)
        try:
            fd = os.open(name, READ, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise OutputError(f"cannot read {path}: {_reason(e)}") from None
        try:
            opened = os.fstat(fd)
            kind = _kind(opened.st_mode)
            if kind:
                raise OutputError(f"cannot read {path}: it is {kind}, not a regular file")
            if trusted_owner:
                _check_owner(opened, path)
            chunks, size = [], 0
            while size <= MAX_OUTPUT_BYTES and (
                chunk := os.read(fd, min(1 << 20, MAX_OUTPUT_BYTES + 1 - size))
            ):
                chunks.append(chunk)
                size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise OutputError(
                    f"cannot read {path}: it is larger than {_size(MAX_OUTPUT_BYTES)}, "
                    "not an output of bootstrap-token"
                )
            return b"".join(chunks)
        except OSError as e:
            raise OutputError(f"cannot read {path}: {_reason(e)}") from None
        finally:
            os.close(fd)


def _check_owner(info: os.stat_result, path: Path) -> None:
    euid = os.geteuid()
    if info.st_uid in (euid, 0):
        return
    raise OutputError(
        f"refusing to use {path}: it is owned by uid {info.st_uid}, not by you (uid {euid}); "
        "another user may have planted it to be kept and sourced: remove it or choose "
        "another --out"
    )


def read_existing_kubeconfig(path: Path) -> Mapping[str, Any] | None:
    """The kubeconfig at `path` to merge into; None when there is none yet."""
    try:
        data = read_bytes(path)
    except OutputError as e:
        raise OutputError(f"{e}; it is needed to merge into it") from None
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OutputError(f"cannot read the existing {path} to merge into it: {e}") from None
    try:
        return parse(text, path)
    except Exception as e:
        raise OutputError(f"cannot merge into {path}: {e}; it is left alone") from e


def backup(path: Path) -> Path | None:
    """Keep the previous version of a file we are about to merge into, as FILE.bak."""
    try:
        data = read_bytes(path)
    except OutputError as e:
        raise OutputError(f"cannot back up {path} before merging: {e}") from None
    if data is None:
        return None
    target = path.with_name(path.name + ".bak")
    write_atomic(target, data, 0o600)
    return target


# --- writing ----------------------------------------------------------------------------


def append(path: Path, text: str) -> None:
    """Append to a file another program owns (e.g. $GITHUB_ENV), in one write with
    O_APPEND so that what others appended meanwhile is kept."""
    data = text.encode("utf-8")
    with parent(path) as (dir_fd, name):
        regular(dir_fd, name, path)
        try:
            fd = os.open(name, _APPEND, 0o600, dir_fd=dir_fd)
        except OSError as e:
            raise OutputError(write_failure(path, e)) from None
        try:
            kind = _kind(os.fstat(fd).st_mode)
            if kind:
                raise OutputError(f"cannot write {path}: it is {kind}, not a regular file")
            while data:
                data = data[os.write(fd, data) :]
        except OSError as e:
            raise OutputError(write_failure(path, e)) from None
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix.

    Where the kernel has O_TMPFILE (Linux), the data goes into an anonymous file of the
    directory first: a process killed while writing (SIGKILL, OOM, a cancelled CI job)
    leaves no temp file behind. A new file is then linked in under its name in one
    step; an existing one is replaced by a link to a temp name and a rename (a kill
    between those two calls, two system calls apart, is the one moment that leaves a
    complete `.bt-*.tmp`, which a later write into the directory removes). Elsewhere:
    a named temp file, as before."""
    with parent(path) as (dir_fd, name):
        existing = regular(dir_fd, name, path)
        fd = _anonymous_file(dir_fd, mode)
        if fd is None:
            _write_via_temp(dir_fd, name, path, data, mode)
        else:
            try:
                _write_all(fd, data, path)
                if not _link_in(fd, dir_fd, name, path, replace=existing is not None):
                    _write_via_temp(dir_fd, name, path, data, mode)
            finally:
                os.close(fd)
        # The rename is done; a directory fsync is best effort on some filesystems.
        with suppress(OSError):
            os.fsync(dir_fd)
        _remove_leftovers(dir_fd)


def _remove_leftovers(dir_fd: int) -> None:
    """Remove what a killed earlier run left in this directory: our own `.bt-*.tmp`
    files (regular, one link, owned by us) untouched for LEFTOVER_AGE seconds, so a
    temp file another run is writing right now is never taken from under it."""
    try:
        names = [n for n in os.listdir(dir_fd) if _TEMP_NAME.fullmatch(n)]
    except OSError:
        return
    old = time.time() - LEFTOVER_AGE
    for name in names:
        with suppress(OSError):
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (
                stat.S_ISREG(info.st_mode)
                and info.st_nlink == 1
                and info.st_uid == os.geteuid()
                and info.st_mtime < old
            ):
                os.unlink(name, dir_fd=dir_fd)


def _anonymous_file(dir_fd: int, mode: int) -> int | None:
    """An unnamed file in the directory (O_TMPFILE), or None where there is no such
    thing (not Linux, or a filesystem without it)."""
    flags = getattr(os, "O_TMPFILE", 0)
    if not flags or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(".", flags | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError:  # EOPNOTSUPP, EISDIR (old kernels), EINVAL...: the named way, then
        return None


def _write_all(fd: int, data: bytes, path: Path) -> None:
    try:
        view = memoryview(data)
        half = len(view) // 2
        view = view[os.write(fd, view[:half]) :] if half else view
        if "_BOOTSTRAP_TOKEN_KILL_AT" in os.environ:  # tests: SIGKILL with half written
            from bootstrap.killpoint import reached

            reached("write")
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as e:
        raise OutputError(write_failure(path, e)) from None


def _link_in(fd: int, dir_fd: int, name: str, path: Path, replace: bool) -> bool:
    """Give the anonymous file `fd` the name `name`; False if links through /proc are not
    possible here (the caller then writes the named way)."""
    source = f"/proc/self/fd/{fd}"
    try:
        if not replace:
            try:
                os.link(source, name, dst_dir_fd=dir_fd)  # never replaces: EEXIST
                return True
            except FileExistsError:
                regular(dir_fd, name, path)  # appeared meanwhile: is it still writable?
        for _ in range(8):
            tmp = f".bt-{random_hex(4)}.tmp"
            try:
                os.link(source, tmp, dst_dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise OutputError(f"cannot write {path}: no free temp file name in its directory")
        try:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        return True
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EPERM, errno.EXDEV, errno.ENOTSUP):
            return False  # no /proc, or linking an O_TMPFILE refused here
        raise OutputError(write_failure(path, e)) from None


def _write_via_temp(dir_fd: int, name: str, path: Path, data: bytes, mode: int) -> None:
    tmp, fd = _create_temp(dir_fd, path, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as e:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise OutputError(write_failure(path, e)) from None


def _create_temp(dir_fd: int, path: Path, mode: int) -> tuple[str, int]:
    """A new temp file, ours alone: O_EXCL, so a file or link someone put at the
    name is never reused (it would stay theirs after the rename)."""
    for _ in range(8):
        # Short, so any valid target name still leaves room for the temp name.
        tmp = f".bt-{random_hex(4)}.tmp"
        try:
            return tmp, os.open(tmp, _TEMP, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(write_failure(path, e)) from None
    raise OutputError(f"cannot write {path}: no free temp file name in its directory")


__all__ = ["MAX_INPUT_BYTES", "MAX_PEM_BYTES", "MAX_TOKEN_BYTES", "read_input"]
