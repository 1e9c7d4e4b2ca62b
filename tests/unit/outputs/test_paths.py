"""bootstrap.outputs.paths: the walk to a file of ours. What is checked is what is opened,
even when someone swaps a name between the check and the open (the O_NOFOLLOW and
O_NONBLOCK of every open); every failure is one OutputError, never a raw OSError."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import OutputError
from bootstrap.outputs import paths
from bootstrap.outputs.files import read_bytes, write_atomic

OTHER_UID = 65534  # nobody (the tests run as root, which may lchown)


def swap_after_stat(
    monkeypatch: pytest.MonkeyPatch, name: str, nth: int, swap: Callable[[], None]
) -> None:
    """Run `swap` right after the `nth` os.stat of `name` relative to a directory: the
    moment between a check and the open that follows it."""
    real_stat = os.stat
    seen = [0]

    def stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        info = real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        if dir_fd is not None and path == name:
            seen[0] += 1
            if seen[0] == nth:
                swap()
        return info

    monkeypatch.setattr(os, "stat", stat)


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened without O_NONBLOCK waits for a writer)."""

    def hung(signum: int, frame: Any) -> None:
        raise AssertionError(f"hung for {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


# --- a name swapped between the check and the open ------------------------------------


def test_a_directory_swapped_for_a_link_after_its_check_is_not_entered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NOFOLLOW on each directory opened on the way."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "d").mkdir()

    def swap() -> None:
        (tmp_path / "d").rename(tmp_path / "d.real")
        (tmp_path / "d").symlink_to(victim)

    swap_after_stat(monkeypatch, "d", 1, swap)
    with pytest.raises(OutputError) as e:
        write_atomic(tmp_path / "d" / "out.env", b"TOKEN=x\n")
    assert str(e.value) == (
        f"cannot write {tmp_path}/d/out.env: a parent is not a directory; nothing was changed there"
    )
    assert list(victim.iterdir()) == []


@pytest.mark.parametrize(
    ("after", "message"),
    [
        # O_NOFOLLOW on the open of a file read back: swapped after regular()'s check.
        (2, "it is a symlink"),
        # regular() looks at the name itself (lstat), not at what a link there points to:
        # swapped after the walk, before regular().
        (1, "it is a symlink, not a regular file"),
    ],
)
def test_a_file_swapped_for_a_link_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int, message: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours\n")
    out = tmp_path / "out.env"
    out.write_bytes(b"TOKEN=x\n")

    def swap() -> None:
        out.unlink()
        out.symlink_to(secret)

    swap_after_stat(monkeypatch, "out.env", after, swap)
    with pytest.raises(OutputError) as e:
        read_bytes(out)
    assert str(e.value) == f"cannot read {out}: {message}"


def test_a_file_swapped_for_a_fifo_after_its_check_does_not_hang_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NONBLOCK on the open of a file read back."""
    out = tmp_path / "out.env"
    out.write_bytes(b"TOKEN=x\n")

    def swap() -> None:
        out.unlink()
        os.mkfifo(out)

    swap_after_stat(monkeypatch, "out.env", 2, swap)
    with alarm(5), pytest.raises(OutputError) as e:
        read_bytes(out)
    assert str(e.value) == f"cannot read {out}: it is a FIFO (named pipe), not a regular file"


def test_a_link_changed_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a")
    real_readlink = os.readlink

    def readlink(path: Any, *, dir_fd: int | None = None) -> Any:
        target = real_readlink(path, dir_fd=dir_fd)
        (tmp_path / "new").symlink_to(tmp_path / "b")  # made first: a new inode
        (tmp_path / "new").replace(link)
        return target

    monkeypatch.setattr(os, "readlink", readlink)
    with pytest.raises(OutputError) as e:
        write_atomic(link / "out.env", b"TOKEN=x\n")
    assert str(e.value) == f"cannot write {link}/out.env: {link} changed while checked"
    assert list((tmp_path / "a").iterdir()) == list((tmp_path / "b").iterdir()) == []


# --- what the walk says and keeps -----------------------------------------------------


def test_a_name_too_long_is_an_output_error(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 300)
    before = open_fds()
    with pytest.raises(OutputError) as e:
        write_atomic(path, b"x")
    assert open_fds() == before
    assert str(e.value) == (
        f"cannot write {path}: the name is too long for the file system; nothing was changed there"
    )


def test_a_file_that_cannot_be_looked_at_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error other than "absent" from regular()'s look at the name (here EIO, after
    the walk saw the file) names the file and the reason."""
    out = tmp_path / "out.env"
    out.write_bytes(b"TOKEN=x\n")
    real_stat = os.stat
    seen = [0]

    def stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        if dir_fd is not None and path == "out.env":
            seen[0] += 1
            if seen[0] == 2:
                raise OSError(errno.EIO, "Input/output error")
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(OutputError) as e:
        read_bytes(out)
    assert str(e.value) == f"cannot read {out}: Input/output error"


def test_a_link_to_the_root_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "root").symlink_to("/")
    with pytest.raises(OutputError) as e:
        write_atomic(tmp_path / "root", b"x")
    assert str(e.value) == f"cannot write {tmp_path}/root: it is a directory"


def test_a_fifo_is_refused_by_name(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError) as e:
        write_atomic(tmp_path / "fifo", b"x")
    assert str(e.value) == (
        f"cannot write {tmp_path}/fifo: it is a FIFO (named pipe), not a regular file"
    )


def test_the_walk_leaves_no_descriptor_open(tmp_path: Path) -> None:
    """Through an absolute link (the walk starts again at /) and a relative one."""
    (tmp_path / "real").mkdir()
    (tmp_path / "absolute").symlink_to(tmp_path / "real")
    (tmp_path / "relative").symlink_to("real")
    before = open_fds()
    write_atomic(tmp_path / "absolute" / "a.env", b"x")
    write_atomic(tmp_path / "relative" / "r.env", b"x")
    with pytest.raises(OutputError):
        write_atomic(tmp_path / "absolute" / "missing" / "x.env", b"x")
    assert open_fds() == before
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["a.env", "r.env"]


def test_a_directory_one_below_the_root_is_opened_as_itself(tmp_path: Path) -> None:
    top = Path("/", tmp_path.parts[1])  # /tmp
    fd = paths.directory(top)
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(top))
    finally:
        os.close(fd)
