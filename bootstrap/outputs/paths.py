"""Reaching a file of ours without being tricked: the walk that every output, and every
file read back, goes through (files.py, lock.py).

A path is walked one component at a time with directory descriptors (`openat` with
O_NOFOLLOW), so what is checked is what is then opened:

- A symlink anywhere on the path is followed only when it is *trusted*: owned by
  the user running the tool (effective uid) or by root. Any other symlink is refused
  before any request (OutputError, exit 9): someone else planted it and could point
  it at any file. This is stricter than the kernel's `fs.protected_symlinks=1`
  (which refuses to follow a symlink in a sticky, world-writable directory such as
  /tmp unless the link is owned by the follower or by the directory's owner) and
  also holds where that sysctl is 0 or does not exist (macOS).
- The user's own symlink (`~/.kube/config -> dotfiles/kubeconfig`) is followed, so it
  is written THROUGH: the target is replaced, the link stays, as kubectl does.
- `..` is resolved physically, after the links before it, as the kernel does.
- Only regular files are written or read: a directory, FIFO, socket or device is
  refused (a FIFO is never opened, so it cannot hang the run).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap.errors import OutputError
from bootstrap.inputs import kind as _kind
from bootstrap.inputs import reason as _reason

MAX_LINKS = 40  # as the kernel's MAXSYMLINKS: more is a loop
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO swapped in after the checks returns at once instead of hanging.
READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@contextmanager
def parent(path: Path) -> Iterator[tuple[int, str]]:
    """The open directory that really holds `path` and the name in it, following
    trusted symlinks only (the last component's too). The name is not a symlink."""
    dir_fd, name = _walk(path)
    try:
        yield dir_fd, name
    finally:
        os.close(dir_fd)


def _walk(path: Path) -> tuple[int, str]:
    # Not os.path.abspath: `..` is resolved physically below, after the links before it.
    pending = list(path.absolute().parts[1:])
    dir_fd = _open_dir("/", None, path)
    shown = Path("/")
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            last = not pending
            if name == "..":
                # Physical `..`: the walked directory's parent, as the kernel does.
                if last:
                    raise OutputError(f"cannot write {path}: it is a directory")
                dir_fd = _step(dir_fd, "..", path)
                shown = shown.parent
                continue
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return dir_fd, name
                raise OutputError(
                    f"cannot write {path}: the directory {shown / name} does not exist"
                ) from None
            if stat.S_ISLNK(info.st_mode):
                _check_trusted(shown / name, info, dir_fd, path)
                target = os.readlink(name, dir_fd=dir_fd)
                again = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if (again.st_ino, again.st_uid) != (info.st_ino, info.st_uid):
                    raise OutputError(f"cannot write {path}: {shown / name} changed while checked")
                links += 1
                if links > MAX_LINKS:
                    raise OutputError(f"cannot write {path}: too many levels of symlinks")
                if target.startswith("/"):
                    root = _open_dir("/", None, path)
                    os.close(dir_fd)
                    dir_fd, shown = root, Path("/")
                pending[:0] = [p for p in Path(target).parts if p != "/"]
                continue
            if last:
                return dir_fd, name
            if not stat.S_ISDIR(info.st_mode):
                raise OutputError(f"cannot write {path}: {shown / name} is not a directory")
            dir_fd = _step(dir_fd, name, path)
            shown = shown / name
        raise OutputError(f"cannot write {path}: it is a directory")
    except OSError as e:  # a name too long, a directory we may read but not search...
        os.close(dir_fd)
        raise OutputError(write_failure(path, e)) from None
    except BaseException:
        os.close(dir_fd)
        raise


def directory(path: Path) -> int:
    """The open directory `path`, reached as `_walk` does."""
    if not path.absolute().parts[1:]:
        return _open_dir("/", None, path)
    dir_fd, name = _walk(path)
    try:
        return _open_dir(name, dir_fd, path)
    finally:
        os.close(dir_fd)


def _open_dir(name: str, dir_fd: int | None, path: Path) -> int:
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except OSError as e:
        raise OutputError(write_failure(path, e)) from None


def _step(dir_fd: int, name: str, path: Path) -> int:
    """Into `name`; `dir_fd` is closed only once that worked (else the caller closes it)."""
    inner = _open_dir(name, dir_fd, path)
    os.close(dir_fd)
    return inner


def _check_trusted(link: Path, info: os.stat_result, dir_fd: int, path: Path) -> None:
    """Follow a symlink only if its owner is the effective user or root."""
    euid = os.geteuid()
    if info.st_uid in (euid, 0):
        return
    directory = os.fstat(dir_fd).st_mode
    shared = directory & stat.S_ISVTX and directory & stat.S_IWOTH
    where = f", in the world-writable sticky directory {link.parent}" if shared else ""
    raise OutputError(
        f"refusing to use {path}: {link} is a symlink owned by uid {info.st_uid}, not by "
        f"you (uid {euid}){where}; another user may have planted it to redirect the "
        "write: remove it or choose another --out"
    )


def regular(dir_fd: int, name: str, path: Path, verb: str = "write") -> os.stat_result | None:
    """The regular file `name` in `dir_fd`, None when absent; anything else is refused."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OutputError(f"cannot {verb} {path}: {_reason(e)}") from None
    kind = _kind(info.st_mode)
    if kind:
        raise OutputError(f"cannot {verb} {path}: it is {kind}, not a regular file")
    return info


def write_failure(path: Path, error: OSError) -> str:
    return f"cannot write {path}: {_reason(error)}; nothing was changed there"
