"""bootstrap.outputs.files: atomic 0600 writes, no planted symlink followed, only regular
files, merges that keep every entry; and the output names of bootstrap.run. The lock of
a merge: test_lock.py."""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.errors import OutputError
from bootstrap.outputs import files
from bootstrap.outputs.emit import Issued
from bootstrap.outputs.files import (
    append,
    backup,
    check_writable,
    read_existing_kubeconfig,
    write_atomic,
)
from bootstrap.outputs.write import write_outputs
from bootstrap.run import Options

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def existing_config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prod-admin",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod"}}],
        "users": [{"name": "prod-admin", "user": {"client-certificate-data": "Q0VSVA=="}}],
        "contexts": [{"name": "prod-admin", "context": {"cluster": "prod", "user": "prod-admin"}}],
    }


# --- append ----------------------------------------------------------------------------


def test_append_creates_0600_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "github_env"
    append(path, "A=1\n")
    append(path, "B=2\n")
    assert path.read_text() == "A=1\nB=2\n"
    assert mode_of(path) == 0o600


def test_append_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "github_env"
    path.write_text("X=0\n")
    path.chmod(0o644)
    append(path, "A=1\n")
    assert path.read_text() == "X=0\nA=1\n"
    assert mode_of(path) == 0o644


def test_append_to_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"the directory .*/missing does not exist"):
        append(tmp_path / "missing" / "env", "A=1\n")


# --- reading back ------------------------------------------------------------------------


def test_read_existing_kubeconfig(tmp_path: Path) -> None:
    assert read_existing_kubeconfig(tmp_path / "absent") is None
    good = tmp_path / "good"
    good.write_text(yaml.safe_dump(existing_config()))
    assert read_existing_kubeconfig(good) == existing_config()
    bad = tmp_path / "bad"
    bad.write_text("- a list\n")
    with pytest.raises(OutputError, match=r"cannot merge into .*; it is left alone"):
        read_existing_kubeconfig(bad)


# --- write_atomic / backup ---------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_write_atomic_creates_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    write_atomic(path, b"secret\n")
    assert path.read_bytes() == b"secret\n"
    assert mode_of(path) == 0o600
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("umask_zero")
def test_write_atomic_is_0600_even_with_umask_zero(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    write_atomic(path, b"secret")
    assert mode_of(path) == 0o600


@pytest.mark.usefixtures("umask_zero")
def test_write_atomic_honours_an_explicit_mode(tmp_path: Path) -> None:
    path = tmp_path / "ca.crt"
    write_atomic(path, CA_PEM, 0o644)
    assert mode_of(path) == 0o644


@pytest.mark.usefixtures("umask_zero")
def test_write_atomic_replaces_a_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    path.write_bytes(b"old")
    path.chmod(0o666)
    old_inode = path.stat().st_ino
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode_of(path) == 0o600
    assert path.stat().st_ino != old_inode, "not replaced by a rename"
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("umask_zero")
def test_write_atomic_temp_file_is_0600_and_complete_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.env"
    path.write_bytes(b"old content")
    seen: list[tuple[str, int, bytes, bytes]] = []
    real_replace = os.replace

    def spy(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        mode = stat.S_IMODE(os.stat(src, dir_fd=src_dir_fd).st_mode)
        data = (Path(f"/proc/self/fd/{src_dir_fd}") / src).read_bytes()
        before = (Path(f"/proc/self/fd/{dst_dir_fd}") / dst).read_bytes()
        seen.append((src, mode, data, before))
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(path, b"new content")
    [(name, mode, data, target_before)] = seen
    assert name.startswith(".bt-") and name.endswith(".tmp")
    assert mode == 0o600
    assert data == b"new content"
    assert target_before == b"old content"


def test_write_atomic_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "out.env"
    with pytest.raises(OutputError) as e:
        write_atomic(path, b"x")
    assert (
        str(e.value) == f"cannot write {path}: the directory {tmp_path / 'missing'} does not exist"
    )
    assert e.value.exit_code == 9
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_onto_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    path.mkdir()
    with pytest.raises(OutputError, match="it is a directory"):
        write_atomic(path, b"x")
    assert path.is_dir()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_write_atomic_failure_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "out.env"
    path.write_bytes(b"previous")
    path.chmod(0o600)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OutputError) as e:
        write_atomic(path, b"replacement")
    monkeypatch.undo()
    assert "no space left on the device" in str(e.value)
    assert "nothing was changed there" in str(e.value)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.env"]


def test_write_atomic_failure_when_creating_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.env"
    path.write_bytes(b"previous")

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(OutputError, match="permission denied"):
        write_atomic(path, b"replacement")
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_write_atomic_directory_fsync_failure_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.env"
    calls: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 1:  # the second fsync is the directory's
            raise OSError(errno.EINVAL, "not supported")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(path, b"data")
    assert len(calls) == 2
    assert path.read_bytes() == b"data"


def test_write_atomic_long_but_valid_file_name(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 250)
    path.write_bytes(b"old")  # the name itself is valid
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"


def test_backup_absent_file(tmp_path: Path) -> None:
    assert backup(tmp_path / "config") is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("umask_zero")
def test_backup_keeps_the_previous_content_0600(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"previous: content\n")
    path.chmod(0o644)
    (tmp_path / "config.bak").write_bytes(b"older backup")
    kept = backup(path)
    assert kept == tmp_path / "config.bak"
    assert kept.read_bytes() == b"previous: content\n"
    assert mode_of(kept) == 0o600
    assert path.read_bytes() == b"previous: content\n"
    assert mode_of(path) == 0o644
    assert leftovers(tmp_path) == []


# --- symlinks: planted ones are refused, the user's own are written through -------------

OTHER_UID = 65534  # nobody: "another local user" (the tests run as root, which may lchown)


def planted_link(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    os.lchown(link, OTHER_UID, OTHER_UID)
    return link


@pytest.fixture
def sticky(tmp_path: Path) -> Path:
    """A shared directory like /tmp: world-writable with the sticky bit (mode 1777)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


def test_a_link_planted_in_a_sticky_directory_is_never_written_through(
    sticky: Path, victim: Path
) -> None:
    link = planted_link(sticky / "out.ca.crt", victim)
    with pytest.raises(OutputError) as e:
        write_atomic(link, CA_PEM, 0o644)
    assert str(e.value) == (
        f"refusing to use {link}: {link} is a symlink owned by uid 65534, not by you "
        f"(uid {os.geteuid()}), in the world-writable sticky directory {sticky}; another "
        "user may have planted it to redirect the write: remove it or choose another --out"
    )
    assert e.value.exit_code == 9
    assert victim.read_bytes() == b"precious\n"
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert sorted(p.name for p in sticky.iterdir()) == ["out.ca.crt"]


def test_a_link_owned_by_another_user_is_refused_anywhere(tmp_path: Path, victim: Path) -> None:
    link = planted_link(tmp_path / "out.env", victim)
    with pytest.raises(OutputError, match="symlink owned by uid 65534, not by you") as e:
        write_atomic(link, b"TOKEN=x\n")
    assert "sticky" not in str(e.value)
    assert victim.read_bytes() == b"precious\n"


def test_a_link_planted_in_a_parent_directory_is_refused(sticky: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted_link(sticky / "creds", elsewhere)
    with pytest.raises(OutputError, match=rf"{sticky / 'creds'} is a symlink owned by uid 65534"):
        write_atomic(sticky / "creds" / "dev.env", b"TOKEN=x\n")
    assert list(elsewhere.iterdir()) == []


def test_own_symlinked_file_is_written_through_the_link(tmp_path: Path) -> None:
    """~/.kube/config -> ../dotfiles/kubeconfig: the target changes, the link stays."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "kubeconfig"
    target.write_bytes(b"old")
    kube = tmp_path / ".kube"
    kube.mkdir()
    link = kube / "config"
    link.symlink_to("../dotfiles/kubeconfig")
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == "../dotfiles/kubeconfig"
    assert target.read_bytes() == b"new"
    assert mode_of(target) == 0o600
    assert sorted(p.name for p in kube.iterdir()) == ["config"]


def test_own_link_chain_and_parent_links_are_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "dirlink").symlink_to("real")
    (real / "b").symlink_to("c.env")
    (real / "a").symlink_to(real / "b")
    write_atomic(tmp_path / "dirlink" / "a", b"x")
    assert (real / "c.env").read_bytes() == b"x"
    assert (real / "a").is_symlink() and (real / "b").is_symlink()


def test_dot_dot_after_a_link_is_physical(tmp_path: Path) -> None:
    """As the kernel does: `link/..` is the parent of the link's target."""
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "link").symlink_to(deep)
    write_atomic(tmp_path / "link" / ".." / "x.env", b"x")
    assert (tmp_path / "a" / "x.env").read_bytes() == b"x"
    assert not (tmp_path / "x.env").exists()


def test_a_symlink_loop_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OutputError, match="too many levels of symlinks"):
        write_atomic(tmp_path / "a", b"x")


def test_merge_source_behind_a_planted_link_is_not_read(sticky: Path, tmp_path: Path) -> None:
    """Else the admin credentials of the link's target would be merged into a file
    in the shared directory."""
    admin = tmp_path / "admin.kubeconfig"
    admin.write_text(yaml.safe_dump(existing_config()))
    link = planted_link(sticky / "ci.kubeconfig", admin)
    with pytest.raises(OutputError, match="symlink owned by uid 65534"):
        read_existing_kubeconfig(link)
    with pytest.raises(OutputError, match="symlink owned by uid 65534"):
        backup(link)
    assert sorted(p.name for p in sticky.iterdir()) == ["ci.kubeconfig"]


def test_backup_never_writes_through_a_planted_bak_link(sticky: Path, victim: Path) -> None:
    config = sticky / "config"
    config.write_bytes(b"apiVersion: v1\n")
    planted_link(sticky / "config.bak", victim)
    with pytest.raises(OutputError, match=r"config\.bak is a symlink owned by uid 65534"):
        backup(config)
    assert victim.read_bytes() == b"precious\n"


def test_append_never_writes_through_a_planted_link(sticky: Path, victim: Path) -> None:
    link = planted_link(sticky / "github_env", victim)
    with pytest.raises(OutputError, match="symlink owned by uid 65534"):
        append(link, "TOKEN=x\n")
    assert victim.read_bytes() == b"precious\n"


def test_append_through_own_link(tmp_path: Path) -> None:
    (tmp_path / "env").write_text("X=0\n")
    (tmp_path / "link").symlink_to("env")
    append(tmp_path / "link", "A=1\n")
    assert (tmp_path / "env").read_text() == "X=0\nA=1\n"


# --- only regular files; a FIFO never hangs -------------------------------------------------


@pytest.fixture
def no_hang() -> Iterator[None]:
    """A blocking open of a FIFO would hang the test: turn that into a failure."""

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("hung on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("no_hang")
def test_a_fifo_is_never_opened_nor_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "out.kubeconfig"
    os.mkfifo(fifo)
    for attempt in (
        lambda: write_atomic(fifo, b"x"),
        lambda: append(fifo, "A=1\n"),
        lambda: read_existing_kubeconfig(fifo),
        lambda: backup(fifo),
        lambda: check_writable(fifo),
    ):
        with pytest.raises(OutputError, match=r"it is a FIFO \(named pipe\), not a regular file"):
            attempt()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_hang")
def test_a_fifo_reached_through_own_link_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "env").symlink_to("fifo")
    with pytest.raises(OutputError, match="FIFO"):
        append(tmp_path / "env", "A=1\n")


def test_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "null").symlink_to("/dev/null")
    with pytest.raises(OutputError, match="it is a character device, not a regular file"):
        check_writable(tmp_path / "null")
    with pytest.raises(OutputError, match="it is a character device"):
        write_atomic(tmp_path / "null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_writable_refuses_a_directory_and_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="it is a directory, not a regular file"):
        check_writable(tmp_path / "d")
    with pytest.raises(OutputError, match="it is a directory"):
        check_writable(tmp_path / "d" / "..")
    with pytest.raises(OutputError, match=r"the directory .*/nope does not exist"):
        check_writable(tmp_path / "nope" / "x.env")
    with pytest.raises(OutputError, match=r"is not a directory"):
        (tmp_path / "file").write_text("")
        check_writable(tmp_path / "file" / "x.env")


def test_check_writable_finds_a_read_only_directory(tmp_path: Path) -> None:
    with read_only(tmp_path / "ro") as directory:
        with pytest.raises(OutputError, match=r"permission denied|read-only"):
            check_writable(directory / "x.env")
        assert list(directory.iterdir()) == []
    check_writable(tmp_path / "x.env")
    assert list(tmp_path.iterdir()) == [tmp_path / "ro"], "the probe file was left behind"


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """A directory nobody may write into, root included (chattr +i): root ignores modes."""
    directory.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    try:
        yield directory
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o755)


# --- the rules a mutation must not break (literal flags and modes) ---------------------------


def test_write_atomic_never_reuses_a_file_planted_at_the_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_EXCL: a file another user put at the temp name stays theirs; reusing it
    would hand them the token file (they could keep it open and read it later)."""
    names = iter(["deadbeef", "cafef00d"])
    monkeypatch.setattr(files, "random_hex", lambda n: next(names))
    planted = tmp_path / ".bt-deadbeef.tmp"
    planted.write_bytes(b"planted and longer than the data")
    os.chown(planted, OTHER_UID, OTHER_UID)
    planted.chmod(0o666)
    out = tmp_path / "out.env"
    out.write_bytes(b"OLD=1\n")  # replaced: through a temp name
    write_atomic(out, b"TOKEN=x\n")
    assert out.read_bytes() == b"TOKEN=x\n"
    info = out.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (os.geteuid(), 0o600)
    assert planted.read_bytes() == b"planted and longer than the data"
    assert planted.stat().st_ino != info.st_ino


def opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Every os.open made by bootstrap.outputs.files: (name, flags, mode)."""
    seen: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        seen.append((str(name), flags, mode))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "open", spy)
    return seen


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_temp_file_flags_and_mode_are_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """Where there is no O_TMPFILE: the named temp file."""
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    seen = opens(monkeypatch)
    write_atomic(tmp_path / "out", b"x", mode)
    [(_, flags, created_mode)] = [s for s in seen if s[0].startswith(".bt-")]
    required = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    assert flags & required == required
    assert flags & os.O_TRUNC == 0
    assert created_mode == mode
    assert (tmp_path / "out").read_bytes() == b"x"


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_anonymous_file_flags_and_mode_are_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    seen = opens(monkeypatch)
    write_atomic(tmp_path / "out", b"x", mode)
    [(name, flags, created_mode)] = seen[-1:]
    assert name == "."
    assert flags & (os.O_TMPFILE | os.O_WRONLY) == os.O_TMPFILE | os.O_WRONLY
    assert flags & os.O_TRUNC == 0
    assert created_mode == mode
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == mode


def test_write_atomic_default_mode_is_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = opens(monkeypatch)
    write_atomic(tmp_path / "out", b"x")
    assert [m for n, _, m in seen if n == "."] == [0o600]
    monkeypatch.setattr(files, "_anonymous_file", lambda dir_fd, mode: None)
    write_atomic(tmp_path / "out", b"y")
    assert [m for n, _, m in seen if n.startswith(".bt-")] == [0o600]


@pytest.mark.parametrize("existing", [False, True])
def test_a_killed_write_leaves_the_old_file_or_none_and_no_temp_file(
    tmp_path: Path, existing: bool
) -> None:
    """SIGKILL halfway through the data (the `write` kill point): nothing is left but
    the previous file, whole."""
    out = tmp_path / "out.env"
    if existing:
        out.write_bytes(b"OLD=1\n")
    script = (
        "import sys; from pathlib import Path; from bootstrap.outputs.files import write_atomic; "
        f"write_atomic(Path({str(out)!r}), b'TOKEN=' + b'x' * 100000 + b'\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "_BOOTSTRAP_TOKEN_KILL_AT": "write:1"},
        capture_output=True,
    )
    assert done.returncode == -9
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.env"] if existing else [])
    if existing:
        assert out.read_bytes() == b"OLD=1\n"


def test_append_flags_are_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = opens(monkeypatch)
    append(tmp_path / "github_env", "A=1\n")
    [(_, flags, mode)] = [s for s in seen if s[0] == "github_env"]
    required = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    assert flags & required == required
    assert flags & (os.O_TRUNC | os.O_EXCL) == 0
    assert mode == 0o600


def test_append_keeps_what_another_writer_appended_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_APPEND: every write goes to the end as it is then, not where it was at open."""
    path = tmp_path / "github_env"
    path.write_text("X=0\n")
    real_fstat = os.fstat

    def another_step_appends(fd: int) -> os.stat_result:
        with path.open("a") as other:
            other.write("Y=9\n")
        return real_fstat(fd)

    monkeypatch.setattr(files.os, "fstat", another_step_appends)
    append(path, "A=1\n")
    monkeypatch.undo()
    assert path.read_text() == "X=0\nY=9\nA=1\n"


def test_backup_read_failure_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"apiVersion: v1\n")

    def broken(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "read", broken)
    with pytest.raises(OutputError) as e:
        backup(path)
    assert str(e.value) == (
        f"cannot back up {path} before merging: cannot read {path}: Input/output error"
    )
    assert e.value.exit_code == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_read_existing_kubeconfig_read_failure_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"apiVersion: v1\n")

    def broken(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "read", broken)
    with pytest.raises(OutputError) as e:
        read_existing_kubeconfig(path)
    assert str(e.value) == (
        f"cannot read {path}: Input/output error; it is needed to merge into it"
    )


def test_read_existing_kubeconfig_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"apiVersion: \xff\n")
    with pytest.raises(OutputError, match=rf"cannot read the existing {path} to merge into it"):
        read_existing_kubeconfig(path)


def test_read_existing_kubeconfig_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    with pytest.raises(OutputError, match="it is a directory, not a regular file"):
        read_existing_kubeconfig(tmp_path / "config")


def merge_worker(args: tuple[str, int]) -> None:
    directory, i = args
    issued = Issued(
        cluster="dev",
        server="https://127.0.0.1:6443",
        namespace="ci",
        service_account=f"sa-{i}",
        secret="",
        token=f"token-{i}",
        ca_pem=CA_PEM,
        identity=f"system:serviceaccount:ci:sa-{i}",
    )
    options = Options(cluster="dev", format="kubeconfig", out="merged.kubeconfig", timeout=30)
    write_outputs(issued, options, Path(directory), {}, stdout=io.StringIO())


def test_ten_concurrent_merges_keep_all_ten_entries(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with context.Pool(10) as pool:
        pool.map(merge_worker, [(str(tmp_path), i) for i in range(10)])
    merged = yaml.safe_load((tmp_path / "merged.kubeconfig").read_text())
    assert sorted(u["name"] for u in merged["users"]) == sorted(f"ci/sa-{i}@dev" for i in range(10))
    assert len(merged["contexts"]) == 10 and len(merged["clusters"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "merged.kubeconfig",
        "merged.kubeconfig.bak",
    ]


def test_a_directory_that_cannot_be_entered_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk closes each directory once: a double close would raise EBADF instead
    (or, with several jobs in threads, close another job's file)."""
    (tmp_path / "sub").mkdir()
    real_open, real_close = os.open, os.close
    held: set[int] = set()

    def refuse_sub(name: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if name == "sub":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        fd = real_open(name, flags, mode, dir_fd=dir_fd)
        held.add(fd)
        return fd

    def close(fd: int) -> None:
        assert fd in held, f"fd {fd} closed twice"
        held.remove(fd)
        real_close(fd)

    monkeypatch.setattr(files.os, "open", refuse_sub)
    monkeypatch.setattr(files.os, "close", close)
    with pytest.raises(OutputError, match=r"cannot write .*/sub/x\.env: permission denied"):
        write_atomic(tmp_path / "sub" / "x.env", b"x")
    assert held == set(), "a directory was left open"
