"""files.py rules that mutants of it survived: the temp-name pattern, the probe of an
existing output, read_bytes' size bound and owner trust, append's refusals, the link
of a new file in one step, the retries of a temp name, the kill point halfway through
the data, and no descriptor left open on any path. Literal expectations; runs as root
(it may chown and chattr)."""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bootstrap.killpoint
from bootstrap.errors import OutputError
from bootstrap.outputs import files

OTHER_UID = 65534  # nobody
TEMP_NAME = r"\.bt-[0-9a-f]{8}\.tmp"
NAMED_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
ENOSPC = "no space left on the device; nothing was changed there"


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def named(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def no_anonymous_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where there is no O_TMPFILE: the named temp file."""
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)


def enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write into, root included (chattr +i)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    (directory / "out.env").write_bytes(b"OLD=1\n")
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


# --- temp names --------------------------------------------------------------------------


def test_random_hex_is_lower_case_hex_of_the_length_asked() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}", files.random_hex(4))
    assert re.fullmatch(r"[0-9a-f]{2}", files.random_hex(1))


def test_the_temp_name_of_a_replacement_is_bt_eight_hex_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_bytes(b"OLD=1\n")
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str, **kwargs: Any) -> None:
        replaced.append((src, dst))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(files.os, "replace", spy)
    files.write_atomic(out, b"NEW=1\n")
    no_anonymous_file(monkeypatch)
    files.write_atomic(out, b"NEW=2\n")
    assert [dst for _, dst in replaced] == ["out.env", "out.env"]
    for src, _ in replaced:
        assert re.fullmatch(TEMP_NAME, src), src
    assert out.read_bytes() == b"NEW=2\n"
    assert named(tmp_path) == ["out.env"]


@pytest.mark.parametrize("name", [".bt-0000_000.tmp", ".bt-0000.000.tmp", ".bt-........tmp"])
def test_a_name_with_other_characters_is_not_a_leftover(tmp_path: Path, name: str) -> None:
    """Only `.bt-` + 8 lower-case hex digits + `.tmp` is ours to remove."""
    path = tmp_path / name
    path.write_bytes(b"someone's\n")
    then = 1_000_000_000  # 2001: old enough
    os.utime(path, (then, then))
    files.write_atomic(tmp_path / "out.env", b"x\n")
    assert named(tmp_path) == sorted([name, "out.env"])


# --- check_writable / check_readable -------------------------------------------------------


def test_an_existing_output_in_a_read_only_directory_is_refused(read_only_dir: Path) -> None:
    """It could be opened and written in place, but not replaced: the check probes the
    directory (by default), not the file."""
    out = read_only_dir / "out.env"
    with pytest.raises(OutputError) as e:
        files.check_writable(out)
    assert str(e.value) == f"cannot write {out}: permission denied; nothing was changed there"
    files.check_writable(out, append_to=True)  # appending to it would work
    assert out.read_bytes() == b"OLD=1\n"


def test_the_probe_of_an_existing_output_opens_the_directory_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_bytes(b"OLD=1\n")
    seen: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if not flags & os.O_DIRECTORY or flags & os.O_TMPFILE == os.O_TMPFILE:
            seen.append((str(name), flags, mode))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "open", spy)
    files.check_writable(out)
    assert seen == [(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)]
    assert named(tmp_path) == ["out.env"]


def test_the_named_probe_is_ours_0600_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is no O_TMPFILE the probe has a name for an instant: no one else may
    open it meanwhile."""
    no_anonymous_file(monkeypatch)
    previous = os.umask(0)
    seen: list[tuple[str, int, int]] = []
    real_open, real_unlink = os.open, os.unlink

    def spy_open(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if str(name).startswith(".bt-"):
            seen.append((str(name), flags, mode))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    def spy_unlink(name: Any, *, dir_fd: int | None = None) -> None:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        seen.append((str(name), info.st_uid, stat.S_IMODE(info.st_mode)))
        real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "open", spy_open)
    monkeypatch.setattr(files.os, "unlink", spy_unlink)
    try:
        files.check_writable(tmp_path / "out.env")
    finally:
        os.umask(previous)
    [(created, flags, mode), (removed, uid, on_disk)] = seen
    assert re.fullmatch(TEMP_NAME, created)
    assert (flags, mode) == (NAMED_TEMP_FLAGS, 0o600)
    assert (removed, uid, on_disk) == (created, 0, 0o600)
    assert named(tmp_path) == []


def test_check_readable_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    with pytest.raises(OutputError) as e:
        files.check_readable(tmp_path / "config")
    assert str(e.value) == f"cannot read {tmp_path}/config: it is a directory, not a regular file"
    assert e.value.exit_code == 9
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError) as e:
        files.check_readable(tmp_path / "fifo")
    assert str(e.value) == (
        f"cannot read {tmp_path}/fifo: it is a FIFO (named pipe), not a regular file"
    )
    files.check_readable(tmp_path / "absent")
    (tmp_path / "file").write_bytes(b"apiVersion: v1\n")
    files.check_readable(tmp_path / "file")


# --- read_bytes ------------------------------------------------------------------------------


def test_the_read_back_bound_is_16_mib_exactly(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    with path.open("wb") as f:
        f.truncate(16 << 20)  # sparse: quick to make
    assert files.read_bytes(path) == bytes(16 << 20)
    with path.open("ab") as f:
        f.write(b"x")
    with pytest.raises(OutputError) as e:
        files.read_bytes(path)
    assert str(e.value) == (
        f"cannot read {path}: it is larger than 16 MiB, not an output of bootstrap-token"
    )


def test_no_more_than_16_mib_and_a_byte_is_read_of_a_larger_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.env"
    with path.open("wb") as f:
        f.truncate(64 << 20)
    got: list[int] = []
    real_read = os.read

    def spy(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        got.append(len(chunk))
        return chunk

    monkeypatch.setattr(files.os, "read", spy)
    with pytest.raises(OutputError, match="it is larger than 16 MiB"):
        files.read_bytes(path)
    assert sum(got) == (16 << 20) + 1


def test_read_bytes_leaves_no_descriptor_open(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    path.write_bytes(b"TOKEN=x\n")
    big = tmp_path / "big"
    with big.open("wb") as f:
        f.truncate((16 << 20) + 1)
    before = open_fds()
    assert files.read_bytes(path) == b"TOKEN=x\n"
    with pytest.raises(OutputError):
        files.read_bytes(big)
    assert open_fds() == before


def test_root_owned_files_are_trusted_for_another_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trusted_owner: the user's own files and root's, no one else's."""
    mine, roots, others = tmp_path / "mine", tmp_path / "roots", tmp_path / "others"
    for path, uid in ((mine, 1000), (roots, 0), (others, 1)):
        path.write_bytes(b"x\n")
        os.chown(path, uid, uid)
    monkeypatch.setattr(files.os, "geteuid", lambda: 1000)
    assert files.read_bytes(mine, trusted_owner=True) == b"x\n"
    assert files.read_bytes(roots, trusted_owner=True) == b"x\n"
    with pytest.raises(OutputError) as e:
        files.read_bytes(others, trusted_owner=True)
    assert str(e.value) == (
        f"refusing to use {others}: it is owned by uid 1, not by you (uid 1000); "
        "another user may have planted it to be kept and sourced: remove it or choose "
        "another --out"
    )


# --- append ----------------------------------------------------------------------------------


def test_append_to_a_file_that_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "github_env"
    path.write_text("A=1\n")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        before = open_fds()
        with pytest.raises(OutputError) as e:
            files.append(path, "B=2\n")
        assert open_fds() == before
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert str(e.value) == f"cannot write {path}: permission denied; nothing was changed there"
    assert path.read_text() == "A=1\n"


def test_append_to_a_fifo_swapped_in_after_the_check_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO with a reader opens without blocking; the open file is checked again."""
    path = tmp_path / "github_env"
    readers: list[int] = []
    real_regular = files.regular

    def swap(*args: Any) -> Any:
        found = real_regular(*args)
        os.mkfifo(path)
        readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        return found

    monkeypatch.setattr(files, "regular", swap)
    try:
        before = open_fds()
        with pytest.raises(OutputError) as e:
            files.append(path, "TOKEN=x\n")
        assert sorted([*before, *map(str, readers)]) == open_fds()  # but the test's reader
        assert os.read(readers[0], 100) == b""  # nothing was written into it
    finally:
        for fd in readers:
            os.close(fd)
    assert str(e.value) == f"cannot write {path}: it is a FIFO (named pipe), not a regular file"


def test_a_failed_append_is_one_error_and_closes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "github_env"
    path.write_text("A=1\n")
    before = open_fds()
    files.append(path, "B=2\n")
    assert open_fds() == before
    monkeypatch.setattr(files.os, "write", enospc)
    with pytest.raises(OutputError) as e:
        files.append(path, "C=3\n")
    monkeypatch.undo()
    assert open_fds() == before
    assert str(e.value) == f"cannot write {path}: {ENOSPC}"
    assert path.read_text() == "A=1\nB=2\n"


# --- write_atomic: the link of the anonymous file -------------------------------------------


def links(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every os.link and os.replace: (call, destination name) in order."""
    calls: list[tuple[str, str]] = []
    real_link, real_replace = os.link, os.replace

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        calls.append(("link", str(dst)))
        real_link(src, dst, **kwargs)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        calls.append(("replace", str(dst)))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(files.os, "link", link)
    monkeypatch.setattr(files.os, "replace", replace)
    return calls


def test_a_new_file_is_linked_in_under_its_name_in_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No temp name at all: a kill can leave nothing behind."""
    calls = links(monkeypatch)
    files.write_atomic(tmp_path / "out.env", b"NEW=1\n")
    assert calls == [("link", "out.env")]
    assert (tmp_path / "out.env").read_bytes() == b"NEW=1\n"


def test_an_existing_file_is_replaced_through_a_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out.env").write_bytes(b"OLD=1\n")
    calls = links(monkeypatch)
    files.write_atomic(tmp_path / "out.env", b"NEW=1\n")
    [(first, tmp), (second, name)] = calls
    assert (first, second, name) == ("link", "replace", "out.env")
    assert re.fullmatch(TEMP_NAME, tmp)
    assert (tmp_path / "out.env").read_bytes() == b"NEW=1\n"
    assert named(tmp_path) == ["out.env"]


def test_a_fifo_that_appears_at_a_new_name_before_the_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name was free when checked; what appeared there meanwhile is checked again,
    not replaced blindly."""
    out = tmp_path / "out.env"
    real_link = os.link

    def appear(src: Any, dst: Any, **kwargs: Any) -> None:
        if dst == "out.env" and not out.exists():
            os.mkfifo(out)
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(files.os, "link", appear)
    before = open_fds()
    with pytest.raises(OutputError) as e:
        files.write_atomic(out, b"TOKEN=x\n")
    assert open_fds() == before
    assert str(e.value) == f"cannot write {out}: it is a FIFO (named pipe), not a regular file"
    assert stat.S_ISFIFO(out.lstat().st_mode)
    assert named(tmp_path) == ["out.env"]


def test_a_link_that_fails_otherwise_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ENOENT, EPERM, EXDEV and ENOTSUP mean "no link through /proc here"."""
    monkeypatch.setattr(files.os, "link", enospc)
    out = tmp_path / "out.env"
    with pytest.raises(OutputError) as e:
        files.write_atomic(out, b"TOKEN=x\n")
    assert str(e.value) == f"cannot write {out}: {ENOSPC}"
    assert named(tmp_path) == []


def test_without_proc_the_named_temp_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_TMPFILE alone is not enough: the anonymous file is linked in through /proc."""

    class NoProc:
        def __init__(self, path: str) -> None:
            pass

        def is_dir(self) -> bool:
            return False

    monkeypatch.setattr(files, "Path", NoProc)
    seen: list[tuple[str, int]] = []
    real_open = os.open

    def spy(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if not flags & os.O_DIRECTORY or flags & os.O_TMPFILE == os.O_TMPFILE:
            seen.append((str(name), flags))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "open", spy)
    files.write_atomic(tmp_path / "out.env", b"x\n")
    [(name, flags)] = seen
    assert re.fullmatch(TEMP_NAME, name)
    assert flags == NAMED_TEMP_FLAGS
    assert (tmp_path / "out.env").read_bytes() == b"x\n"
    assert named(tmp_path) == ["out.env"]


# --- temp-name retries: eight, then one error ------------------------------------------------


def taken_names(monkeypatch: pytest.MonkeyPatch, directory: Path, taken: int) -> list[str]:
    """random_hex gives 00000000, 00000001, ...; the first `taken` are someone's files."""
    for i in range(taken):
        (directory / f".bt-{i:08x}.tmp").write_bytes(b"someone's\n")
    given: list[str] = []

    def sequential(nbytes: int) -> str:
        assert nbytes == 4
        given.append(f"{len(given):08x}")
        return given[-1]

    monkeypatch.setattr(files, "random_hex", sequential)
    return given


@pytest.mark.parametrize("anonymous", [True, False])
@pytest.mark.parametrize("taken", [7, 8])
def test_eight_temp_names_are_tried_then_nothing_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anonymous: bool, taken: int
) -> None:
    """With seven names taken the eighth is used; with eight, one error and the other
    files and the target are left as they were."""
    if not anonymous:
        no_anonymous_file(monkeypatch)
    out = tmp_path / "out.env"
    out.write_bytes(b"OLD=1\n")
    given = taken_names(monkeypatch, tmp_path, taken)
    before = open_fds()
    if taken == 7:
        files.write_atomic(out, b"NEW=1\n")
        assert out.read_bytes() == b"NEW=1\n"
    else:
        with pytest.raises(OutputError) as e:
            files.write_atomic(out, b"NEW=1\n")
        assert str(e.value) == f"cannot write {out}: no free temp file name in its directory"
        assert out.read_bytes() == b"OLD=1\n"
    assert open_fds() == before
    assert given == [f"{i:08x}" for i in range(8)]
    for i in range(taken):
        assert (tmp_path / f".bt-{i:08x}.tmp").read_bytes() == b"someone's\n"
    assert named(tmp_path) == sorted([f".bt-{i:08x}.tmp" for i in range(taken)] + ["out.env"])


# --- the named temp: synced before the rename, closed ------------------------------------------


def test_the_named_temp_is_synced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_anonymous_file(monkeypatch)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + ("file" if stat.S_ISREG(os.fstat(fd).st_mode) else "dir"))
        real_fsync(fd)

    def replace(*args: Any, **kwargs: Any) -> None:
        events.append("replace")
        real_replace(*args, **kwargs)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    files.write_atomic(tmp_path / "out.env", b"x\n")
    assert events == ["fsync file", "replace", "fsync dir"]


def test_the_named_temp_is_closed_whatever_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_anonymous_file(monkeypatch)
    out = tmp_path / "out.env"
    before = open_fds()
    files.write_atomic(out, b"x\n")
    assert open_fds() == before
    monkeypatch.setattr(files.os, "write", enospc)
    with pytest.raises(OutputError) as e:
        files.write_atomic(out, b"y\n")
    monkeypatch.undo()
    assert open_fds() == before
    assert str(e.value) == f"cannot write {out}: {ENOSPC}"
    assert out.read_bytes() == b"x\n"
    assert named(tmp_path) == ["out.env"]


# --- the kill point: halfway through the data --------------------------------------------------


def written_at_kill_point(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(point, bytes written so far) at each kill point reached; nothing is killed."""
    written = [0]
    points: list[tuple[str, int]] = []
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        n = real_write(fd, data)
        written[0] += n
        return n

    monkeypatch.setattr(files.os, "write", write)
    monkeypatch.setattr(bootstrap.killpoint, "reached", lambda p: points.append((p, written[0])))
    return points


@pytest.mark.parametrize(("data", "half"), [(b"0123456789", 5), (b"0123456789a", 5)])
def test_the_write_kill_point_comes_with_half_the_data_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, half: int
) -> None:
    monkeypatch.setenv("_BOOTSTRAP_TOKEN_KILL_AT", "write:9")
    points = written_at_kill_point(monkeypatch)
    files.write_atomic(tmp_path / "out.env", data)
    assert points == [("write", half)]
    assert (tmp_path / "out.env").read_bytes() == data


def test_without_the_variable_there_is_no_kill_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("_BOOTSTRAP_TOKEN_KILL_AT", raising=False)
    points = written_at_kill_point(monkeypatch)
    files.write_atomic(tmp_path / "out.env", b"0123456789")
    assert points == []


# --- what files.py passes on from bootstrap.inputs ------------------------------------------


def test_the_reexported_names() -> None:
    namespace: dict[str, Any] = {}
    exec("from bootstrap.outputs.files import *", namespace)
    import bootstrap.inputs

    shared = ("MAX_INPUT_BYTES", "MAX_PEM_BYTES", "MAX_TOKEN_BYTES", "read_input")
    assert sorted(n for n in namespace if n != "__builtins__") == sorted(shared)
    for name in shared:
        assert namespace[name] is getattr(bootstrap.inputs, name)
