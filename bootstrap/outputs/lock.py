"""client-go's lock on a kubeconfig that is merged into, so that bootstrap-token runs
and kubectl config commands on the same file take turns: `FILE.lock` beside the name
as given, created O_CREAT|O_EXCL (never through a link) with a mark of our own, and
removed afterwards only while it is still ours. Its directory is reached as every
output's is, through trusted symlinks only (files.py, which does not import this).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bootstrap.errors import OutputError
from bootstrap.outputs.files import random_hex
from bootstrap.outputs.paths import READ, directory, write_failure

_LOCK = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold client-go's lock on `path` (kubectl's ModifyConfig takes the same one):
    `PATH.lock`, beside the name as given, created O_CREAT|O_EXCL and removed after.
    Waits at most `timeout` seconds for another holder."""
    lock = path.with_name(path.name + ".lock")
    dir_fd = directory(path.parent)
    try:
        name = lock.name
        deadline = time.monotonic() + max(0.0, timeout)
        pause = 0.01
        while True:
            try:
                fd = os.open(name, _LOCK, 0o600, dir_fd=dir_fd)
                break
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise OutputError(
                        f"cannot merge into {path}: {lock} exists (kubectl or another "
                        "bootstrap-token is changing it) and was not released before "
                        "--timeout ran out; if no such command is running, the lock is "
                        f"stale: remove {lock}"
                    ) from None
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.2)
            except OSError as e:
                raise OutputError(write_failure(lock, e)) from None
        # A mark of our own: inode numbers are reused at once after a removal.
        mark = f"bootstrap-token {os.getpid()} {random_hex(8)}\n".encode()
        try:
            os.write(fd, mark)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            _unlock(dir_fd, name, mark)
    finally:
        os.close(dir_fd)


def _unlock(dir_fd: int, name: str, mark: bytes) -> None:
    """Remove the lock only if it is still ours (not removed as stale and retaken)."""
    try:
        fd = os.open(name, READ, dir_fd=dir_fd)
    except OSError:
        return
    try:
        content = os.read(fd, len(mark) + 1)
    except OSError:
        return
    finally:
        os.close(fd)
    if content == mark:
        with suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
