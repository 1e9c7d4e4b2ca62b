"""What a killed run may leave, and what removes it: the probe of check_writable leaves no
name at all where there is O_TMPFILE, and a write removes our own `.bt-*.tmp` files that
have sat untouched for 10 minutes, and nothing else."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import OutputError
from bootstrap.outputs import files
from bootstrap.outputs.files import check_writable, write_atomic

OTHER_UID = 65534  # nobody (the tests run as root, which may chown)


def aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def named(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_probe_is_an_anonymous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill during the probe can leave no `.bt-*.tmp`: the probe never has a name."""
    seen: list[tuple[str, int]] = []
    real_open = os.open

    def spy(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        seen.append((str(name), flags))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "open", spy)
    check_writable(tmp_path / "out.env")
    # The files opened, not the directories on the way (O_TMPFILE includes O_DIRECTORY).
    [(name, flags)] = [s for s in seen if s[1] & os.O_TMPFILE != os.O_DIRECTORY]
    assert name == "."
    assert flags & os.O_TMPFILE == os.O_TMPFILE
    assert named(tmp_path) == []


def test_without_o_tmpfile_the_named_probe_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    check_writable(tmp_path / "out.env")
    assert named(tmp_path) == []


@pytest.mark.parametrize("anonymous", [True, False])
def test_the_probe_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anonymous: bool
) -> None:
    if not anonymous:
        monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    (tmp_path / "github_env").write_text("A=1\n")
    before = sorted(os.listdir("/proc/self/fd"))
    check_writable(tmp_path / "out.env")
    check_writable(tmp_path / "github_env", append_to=True)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_file_to_append_to_is_opened_for_appending_not_created(tmp_path: Path) -> None:
    """$GITHUB_ENV that exists: checked by opening it for appending, and left as it was."""
    github_env = tmp_path / "github_env"
    github_env.write_text("A=1\n")
    github_env.chmod(0o640)
    check_writable(github_env, append_to=True)
    assert github_env.read_text() == "A=1\n"
    assert stat.S_IMODE(github_env.stat().st_mode) == 0o640
    assert named(tmp_path) == ["github_env"]
    if os.geteuid() == 0:  # root ignores modes: an immutable file cannot be opened to write
        subprocess.run(["chattr", "+i", str(github_env)], check=True)
    else:
        github_env.chmod(0o440)
    try:
        with pytest.raises(OutputError) as e:
            check_writable(github_env, append_to=True)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(github_env)], check=True)
    assert str(e.value).startswith(f"cannot write {github_env}: ")
    assert str(e.value).endswith("; nothing was changed there")


@pytest.mark.parametrize("existing", [False, True])
def test_a_write_removes_our_temp_files_older_than_ten_minutes(
    tmp_path: Path, existing: bool
) -> None:
    if existing:
        (tmp_path / "out.env").write_bytes(b"OLD=1\n")
    (tmp_path / ".bt-0123abcd.tmp").write_bytes(b"TOKEN=left by a kill\n")
    aged(tmp_path / ".bt-0123abcd.tmp", 601)
    (tmp_path / ".bt-ffffffff.tmp").write_bytes(b"")
    aged(tmp_path / ".bt-ffffffff.tmp", 86400)
    write_atomic(tmp_path / "out.env", b"TOKEN=new\n")
    assert named(tmp_path) == ["out.env"]
    assert (tmp_path / "out.env").read_bytes() == b"TOKEN=new\n"


def test_a_write_keeps_everything_else(tmp_path: Path) -> None:
    """Young temp files (another run may be writing one now), other users' files, files
    with a second link, links, directories and names that are not ours stay."""
    old = 86400

    def file(name: str, seconds: float = old) -> Path:
        path = tmp_path / name
        path.write_bytes(b"x")
        return aged(path, seconds)

    file(".bt-00000001.tmp", 599)  # 10 minutes less a second: maybe still being written
    os.chown(file(".bt-00000002.tmp"), OTHER_UID, OTHER_UID)
    file(".bt-00000003.tmp")
    os.link(tmp_path / ".bt-00000003.tmp", tmp_path / "hard-link")
    aged(tmp_path / ".bt-00000003.tmp", old)
    (tmp_path / ".bt-00000004.tmp").symlink_to(file("target"))
    aged(tmp_path / ".bt-00000004.tmp", old)
    (tmp_path / ".bt-00000005.tmp").mkdir()
    aged(tmp_path / ".bt-00000005.tmp", old)
    for name in (
        ".bt-0000000.tmp",  # 7 hex digits
        ".bt-000000000.tmp",  # 9
        ".bt-0000000G.tmp",
        ".bt-ABCDEF01.tmp",  # ours are lower case
        ".bt-00000006.tmp.bak",
        "x.bt-00000007.tmp",
        ".bt-00000008.tmpx",
        "bt-00000009.tmp",
    ):
        file(name)
    before = named(tmp_path)
    write_atomic(tmp_path / "out.env", b"TOKEN=new\n")
    assert named(tmp_path) == sorted([*before, "out.env"])


def test_the_age_is_ten_minutes() -> None:
    assert files.LEFTOVER_AGE == 600
