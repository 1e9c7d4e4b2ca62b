"""The one reader of every file the tool reads (kubeconfigs, CA and token files, client
certificates and keys, the Pod's ServiceAccount files, `check FILE`): regular files only,
checked before and after opening, opened non-blocking (a FIFO never hangs the run),
never more than a limit read. A file that fails is one error line saying why, with the
caller's exit code. At the bottom of the layers: kube/ reads through it, outputs/files.py
(which writes) shares its messages.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from bootstrap.errors import BootstrapError, ConfigError

# The most `read_input` reads of a kubeconfig or a checked file (kubeconfig.py's limit
# too), and of a PEM file (a CA bundle, a certificate, a key) or a token file.
MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_PEM_BYTES = 4 * 1024 * 1024
MAX_TOKEN_BYTES = 1024 * 1024
_INPUT = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symlink",  # where a name is looked at without following it
}


def kind(mode: int) -> str | None:
    """None for a regular file; else what it is, for the message."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def reason(error: OSError) -> str:
    reasons = {
        errno.ENOENT: "the directory does not exist",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large for the device or the size limit",
        errno.EISDIR: "it is a directory",
        errno.ENOTDIR: "a parent is not a directory",
        errno.ELOOP: "it is a symlink",
        errno.ENXIO: "it is a FIFO without a reader",
        errno.ENAMETOOLONG: "the name is too long for the file system",
    }
    return reasons.get(error.errno or 0, error.strerror or type(error).__name__)


def read_input(
    path: Path | str,
    what: str,
    *,
    limit: int = MAX_INPUT_BYTES,
    error: type[BootstrapError] = ConfigError,
    missing_ok: bool = False,
    follow: bool = True,
    own: bool = False,
) -> bytes | None:
    """The content of the regular file `path` (`what` names it in messages), at most
    `limit` bytes, or `error` saying why not. None when it does not exist and
    `missing_ok`. `follow=False`: a symlink is refused; `own`: so is a file that is
    not owned by the user running the tool."""
    where = f"cannot read {what} {path}" if what else f"cannot read {path}"
    try:
        info = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{where}: it does not exist") from None
    except OSError as e:
        raise error(f"{where}: {input_reason(e)}") from None
    check_input(info, where, limit, error, own)
    try:
        fd = os.open(path, _INPUT if follow else _INPUT | os.O_NOFOLLOW)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{where}: it does not exist") from None
    except OSError as e:
        raise error(f"{where}: {input_reason(e)}") from None
    try:
        # Again on what was opened: the name may have been swapped since the stat.
        check_input(os.fstat(fd), where, limit, error, own)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise error(f"{where}: {input_reason(e)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{where}: it grew past {size_text(limit)} while read")
    return b"".join(chunks)


def check_input(
    info: os.stat_result, where: str, limit: int, error: type[BootstrapError], own: bool
) -> None:
    what = kind(info.st_mode)
    if what:
        raise error(f"{where}: it is {what}, not a regular file")
    if info.st_size > limit:
        raise error(
            f"{where}: it is {size_text(info.st_size)}, more than the {size_text(limit)} allowed"
        )
    if own and info.st_uid != os.geteuid():
        raise error(f"{where}: it is owned by uid {info.st_uid}, not by you (uid {os.geteuid()})")


def size_text(count: int) -> str:
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    if count >= 1 << 10 and count % (1 << 10) == 0:
        return f"{count >> 10} KiB"
    return f"{count} bytes"


def input_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "it is a symlink"
    if error.errno == errno.ENOENT:
        return "it does not exist"
    return reason(error)
