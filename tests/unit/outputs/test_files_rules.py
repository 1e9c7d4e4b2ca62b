"""files.py rules the cluster tests used to be the only ones to reach: the symlink count,
trust of root's links, the planted-link message with and without a shared directory, the
owner check before and after opening, the temp-name retries and the named-temp fallback
(the lock's back-off: test_lock.py). Literal expectations; runs as root (it may chown)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import OutputError
from bootstrap.outputs import files, paths

OTHER_UID = 65534  # nobody


def _chain(tmp_path: Path, count: int) -> Path:
    """`count` symlinks, l0 -> l1 -> ... -> real directory."""
    real = tmp_path / "real"
    real.mkdir()
    previous = real
    for i in reversed(range(count)):
        link = tmp_path / f"l{i}"
        link.symlink_to(previous)
        previous = link
    return previous


def test_forty_symlinks_are_followed_and_forty_one_are_a_loop(tmp_path: Path) -> None:
    first = _chain(tmp_path, 40)
    files.write_atomic(first / "out.env", b"x\n")
    assert (tmp_path / "real" / "out.env").read_bytes() == b"x\n"
    more = tmp_path / "more"
    more.symlink_to(first)
    with pytest.raises(OutputError) as e:
        files.write_atomic(more / "out.env", b"y\n")
    assert str(e.value) == f"cannot write {more}/out.env: too many levels of symlinks"


def test_an_absolute_link_to_a_missing_directory_names_it_absolutely(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone" / "sub")
    with pytest.raises(OutputError) as e:
        files.write_atomic(link / "out.env", b"x\n")
    assert str(e.value) == (
        f"cannot write {link}/out.env: the directory {tmp_path}/gone does not exist"
    )


def test_a_regular_file_in_the_middle_of_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError) as e:
        files.write_atomic(tmp_path / "file" / "out.env", b"x\n")
    assert str(e.value) == (
        f"cannot write {tmp_path}/file/out.env: {tmp_path}/file is not a directory"
    )


def test_the_root_directory_is_opened_as_such() -> None:
    fd = paths.directory(Path("/"))
    try:
        assert os.path.samestat(os.fstat(fd), os.stat("/"))
    finally:
        os.close(fd)


def test_root_owned_links_are_trusted_for_another_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")  # owned by root
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    files.write_atomic(tmp_path / "link" / "out.env", b"x\n")
    assert (tmp_path / "real" / "out.env").read_bytes() == b"x\n"


@pytest.mark.parametrize(
    ("mode", "where"),
    [
        (0o1777, ", in the world-writable sticky directory {d}"),
        (0o777, ""),
        (0o1755, ""),
    ],
)
def test_the_planted_link_message(tmp_path: Path, mode: int, where: str) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "real").mkdir()
    link = shared / "link"
    link.symlink_to(tmp_path / "real")
    os.lchown(link, OTHER_UID, OTHER_UID)
    shared.chmod(mode)
    with pytest.raises(OutputError) as e:
        files.write_atomic(link / "out.env", b"x\n")
    assert str(e.value) == (
        f"refusing to use {link}/out.env: {link} is a symlink owned by uid {OTHER_UID}, not "
        f"by you (uid 0){where.format(d=shared)}; another user may have planted it to "
        "redirect the write: remove it or choose another --out"
    )


def _chown_when_opened(monkeypatch: pytest.MonkeyPatch, target: Path, uid: int) -> None:
    """Give `target` to `uid` between read_bytes' stat and its open."""
    real_open = os.open

    def swap(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if name == target.name and kwargs.get("dir_fd") is not None:
            os.chown(target, uid, uid)
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swap)


def _owned_message(path: Path) -> str:
    return (
        f"refusing to use {path}: it is owned by uid {OTHER_UID}, not by you (uid 0); "
        "another user may have planted it to be kept and sourced: remove it or choose "
        "another --out"
    )


def test_the_owner_is_checked_before_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_text("x\n")
    os.chown(out, OTHER_UID, OTHER_UID)
    _chown_when_opened(monkeypatch, out, 0)  # ours again once opened
    with pytest.raises(OutputError) as e:
        files.read_bytes(out, trusted_owner=True)
    assert str(e.value) == _owned_message(out)


def test_the_owner_is_checked_again_on_the_opened_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_text("x\n")
    _chown_when_opened(monkeypatch, out, OTHER_UID)  # swapped after the first check
    with pytest.raises(OutputError) as e:
        files.read_bytes(out, trusted_owner=True)
    assert str(e.value) == _owned_message(out)


def test_a_file_that_cannot_be_opened_for_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_text("x\n")
    real_open = os.open

    def refuse(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if name == "out.env":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(OutputError) as e:
        files.read_bytes(out)
    assert str(e.value) == f"cannot read {out}: permission denied"


def _names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """random_hex gives 00000000, 00000001, ... (and records each)."""
    given: list[str] = []

    def sequential(nbytes: int) -> str:
        given.append(f"{len(given):08x}")
        return given[-1]

    monkeypatch.setattr(files, "random_hex", sequential)
    return given


def test_eight_temp_names_are_tried_when_replacing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.env"
    out.write_text("old\n")
    for i in range(7):
        (tmp_path / f".bt-{i:08x}.tmp").write_text("someone's\n")
    given = _names(monkeypatch)
    files.write_atomic(out, b"new\n")
    assert out.read_bytes() == b"new\n"
    assert given == [f"{i:08x}" for i in range(8)]
    assert not (tmp_path / ".bt-00000007.tmp").exists()


def test_no_free_named_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    monkeypatch.setattr(files, "random_hex", lambda nbytes: "aaaaaaaa")
    (tmp_path / ".bt-aaaaaaaa.tmp").write_text("someone's\n")
    with pytest.raises(OutputError) as e:
        files.write_atomic(tmp_path / "out.env", b"x\n")
    assert (
        str(e.value) == f"cannot write {tmp_path}/out.env: no free temp file name in its directory"
    )


def test_a_refused_link_of_the_anonymous_file_falls_back_to_a_named_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    files.write_atomic(tmp_path / "out.env", b"x\n")
    assert (tmp_path / "out.env").read_bytes() == b"x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.env"]


def test_a_failed_rename_of_the_named_temp_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OutputError) as e:
        files.write_atomic(tmp_path / "out.env", b"x\n")
    assert str(e.value) == (
        f"cannot write {tmp_path}/out.env: the file system is read-only; nothing was changed there"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_named_temp_that_cannot_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    real_open = os.open

    def read_only(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(name).startswith(".bt-"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputError) as e:
        files.write_atomic(tmp_path / "out.env", b"x\n")
    assert str(e.value) == (
        f"cannot write {tmp_path}/out.env: the file system is read-only; nothing was changed there"
    )


# --- a file of another user in a sticky directory ---------------------------------------

YOU = 1000  # the euid the tool runs as in these tests (faked: the tests run as root)


@pytest.mark.parametrize(
    ("sticky", "file_owner", "dir_owner", "euid", "refused"),
    [
        (True, OTHER_UID, 0, YOU, True),  # /tmp/ci.env of another user: only they may replace it
        (True, YOU, 0, YOU, False),  # your own file in /tmp
        (True, OTHER_UID, YOU, YOU, False),  # your own sticky directory
        (True, OTHER_UID, 4242, 0, False),  # root may replace anything
        (False, OTHER_UID, 0, YOU, False),  # not sticky: the directory's write bit decides
    ],
)
def test_a_file_only_its_owner_may_replace_is_refused_before_any_request(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sticky: bool,
    file_owner: int,
    dir_owner: int,
    euid: int,
    refused: bool,
) -> None:
    """The kernel refuses the final rename there (EPERM), after the cluster was changed;
    check_writable says so first. As a user (uid 1000), in a 1777 directory:
    `mv new /tmp/ci.env` -> Operation not permitted when ci.env is nobody's."""
    shared = tmp_path / "shared"
    shared.mkdir()
    out = shared / "ci.env"
    out.write_bytes(b"OLD=1\n")
    os.chown(out, file_owner, file_owner)
    os.chown(shared, dir_owner, dir_owner)
    shared.chmod(0o1777 if sticky else 0o777)
    monkeypatch.setattr(files.os, "geteuid", lambda: euid)
    if not refused:
        files.check_writable(out)
        return
    with pytest.raises(OutputError) as e:
        files.check_writable(out)
    assert str(e.value) == (
        f"cannot write {out}: it belongs to uid 65534, not to you (uid 1000), in the sticky "
        f"directory {shared}, where only its owner may replace it: remove it or choose "
        "another --out"
    )
    files.check_writable(out, append_to=True)  # appending is not replacing
