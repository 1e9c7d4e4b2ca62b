"""inputs.py, the one reader of inputs: the words of each refusal and reason, and what it
does when the file changes between the checks and the read (swapped for a FIFO or a
symlink, grown). Literal expectations."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from bootstrap import inputs
from bootstrap.errors import ConfigError


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (errno.ENOENT, "the directory does not exist"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EROFS, "the file system is read-only"),
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EFBIG, "file too large for the device or the size limit"),
        (errno.EISDIR, "it is a directory"),
        (errno.ENOTDIR, "a parent is not a directory"),
        (errno.ELOOP, "it is a symlink"),
        (errno.ENXIO, "it is a FIFO without a reader"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_reasons(number: int, words: str) -> None:
    assert inputs.reason(OSError(number, os.strerror(number))) == words


def test_an_error_without_errno_is_named_by_its_type() -> None:
    assert inputs.reason(OSError("no number")) == "OSError"
    assert inputs.reason(TimeoutError()) == "TimeoutError"


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        with pytest.raises(ConfigError) as e:
            inputs.read_input(path, "the kubeconfig")
    finally:
        server.close()
    assert str(e.value) == f"cannot read the kubeconfig {path}: it is a socket, not a regular file"


def test_a_path_through_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "ca.crt"
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "the CA file")
    assert str(e.value) == f"cannot read the CA file {path}: a parent is not a directory"


def test_an_open_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_text("t")

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "the token file")
    assert str(e.value) == f"cannot read the token file {path}: permission denied"


def _swap_after_stat(monkeypatch: pytest.MonkeyPatch, path: Path, swap: Any) -> None:
    """Run `swap()` once, right after read_input's stat of `path`."""
    real_stat = os.stat
    done: list[bool] = []

    def stat_then_swap(name: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        info = real_stat(name, *args, **kwargs)
        if str(name) == str(path) and not done:
            done.append(True)
            swap()
        return info

    monkeypatch.setattr(os, "stat", stat_then_swap)


def _to_fifo(path: Path) -> Any:
    def swap() -> None:
        path.unlink()
        os.mkfifo(path)

    return swap


@pytest.mark.parametrize("follow", [True, False])
def test_a_file_swapped_for_a_fifo_is_refused_without_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, follow: bool
) -> None:
    path = tmp_path / "config"
    path.write_text("x")
    _swap_after_stat(monkeypatch, path, _to_fifo(path))
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "", follow=follow)
    assert str(e.value) == f"cannot read {path}: it is a FIFO (named pipe), not a regular file"


def test_a_file_swapped_for_a_symlink_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ca.crt"
    path.write_text("mine")
    (tmp_path / "other").write_text("theirs")

    def swap() -> None:
        path.unlink()
        path.symlink_to(tmp_path / "other")

    _swap_after_stat(monkeypatch, path, swap)
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "the CA file", follow=False)
    assert str(e.value) == f"cannot read the CA file {path}: it is a symlink"


def test_a_file_that_grows_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"12345")
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        with path.open("ab") as f:
            f.write(b"678901")  # 11 bytes now, one past the limit
        return info

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "the token file", limit=10)
    assert str(e.value) == f"cannot read the token file {path}: it grew past 10 bytes while read"


def test_reads_are_asked_for_a_mebibyte_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"k" * 100)
    asked: list[int] = []
    real_read = os.read

    def read(fd: int, count: int) -> bytes:
        asked.append(count)
        return real_read(fd, count)

    monkeypatch.setattr(os, "read", read)
    assert inputs.read_input(path, "") == b"k" * 100
    assert asked == [1048576, 1048576]
    asked.clear()
    assert inputs.read_input(path, "", limit=100) == b"k" * 100
    assert asked == [101, 1]


def test_no_descriptor_is_left_open(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"x")
    before = sorted(os.listdir("/proc/self/fd"))
    assert inputs.read_input(path, "") == b"x"
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_file_removed_between_the_stat_and_the_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text("x")
    _swap_after_stat(monkeypatch, path, path.unlink)
    with pytest.raises(ConfigError) as e:
        inputs.read_input(path, "the kubeconfig")
    assert str(e.value) == f"cannot read the kubeconfig {path}: it does not exist"
    path.write_text("x")
    monkeypatch.undo()
    _swap_after_stat(monkeypatch, path, path.unlink)
    assert inputs.read_input(path, "the kubeconfig", missing_ok=True) is None
