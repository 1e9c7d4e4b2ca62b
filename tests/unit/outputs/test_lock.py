"""bootstrap.outputs.lock: client-go's `FILE.lock` beside the name given, a clear error
when another holder keeps it past the timeout, taken once released, never removed when
no longer ours, never followed when it is a link; the back-off of the wait, no
descriptor left open. Literal expectations."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from bootstrap.errors import OutputError
from bootstrap.outputs.lock import locked


def test_lock_is_client_go_lock_file_beside_the_name_given(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "kubeconfig").write_text("")
    config = tmp_path / "config"
    config.symlink_to("dotfiles/kubeconfig")
    with locked(config, timeout=1):
        lock = tmp_path / "config.lock"
        assert stat.S_ISREG(lock.lstat().st_mode)
        assert list(dotfiles.iterdir()) == [dotfiles / "kubeconfig"]
    assert not lock.exists()


def test_lock_held_by_another_times_out_with_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (tmp_path / "config.lock").write_text("")
    started = time.monotonic()
    with pytest.raises(OutputError) as e, locked(config, timeout=0.5):
        pass
    assert 0.5 <= time.monotonic() - started < 2
    assert str(e.value) == (
        f"cannot merge into {config}: {config}.lock exists (kubectl or another bootstrap-token "
        "is changing it) and was not released before --timeout ran out; if no such command "
        f"is running, the lock is stale: remove {config}.lock"
    )
    assert e.value.exit_code == 9
    assert (tmp_path / "config.lock").exists(), "someone else's lock was removed"


def test_lock_is_taken_once_the_holder_releases_it(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    lock.write_text("")
    threading.Timer(0.3, lock.unlink).start()
    started = time.monotonic()
    with locked(tmp_path / "config", timeout=5):
        assert time.monotonic() - started >= 0.3
        assert lock.exists()
    assert not lock.exists()


def test_lock_that_is_no_longer_ours_is_left_alone(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    with locked(tmp_path / "config", timeout=1):
        lock.unlink()  # e.g. removed by hand as "stale", then taken by kubectl
        lock.write_text("")
    assert lock.exists()


def test_a_lock_is_removed_only_while_it_holds_exactly_our_mark(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    with locked(tmp_path / "config", timeout=1):
        mark = lock.read_bytes()
        assert mark.startswith(b"bootstrap-token ") and mark.endswith(b"\n")
        lock.write_bytes(mark + b"and more")  # not ours, though it starts like ours
    assert lock.read_bytes() == mark + b"and more"


def test_the_lock_file_is_ours_alone(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with locked(tmp_path / "config", timeout=1):
            assert stat.S_IMODE((tmp_path / "config.lock").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_lock_that_cannot_be_made_is_one_error_line(tmp_path: Path) -> None:
    too_long = tmp_path / ("c" * 251)  # + ".lock" is 256 bytes: over NAME_MAX
    with pytest.raises(OutputError, match=r"^cannot write .*c\.lock"), locked(too_long, 0.1):
        pass


def test_lock_name_is_never_followed(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "config.lock").symlink_to(victim)
    with pytest.raises(OutputError, match="was not released"), locked(tmp_path / "config", 0.1):
        pass
    assert victim.read_bytes() == b"precious\n"


def test_the_lock_beside_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError) as e, locked(tmp_path / "file" / "config", 1):
        pass
    assert str(e.value) == (
        f"cannot write {tmp_path}/file: a parent is not a directory; nothing was changed there"
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if len(self.sleeps) >= 1000:
            raise AssertionError("the lock waited past its deadline")
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def held_by_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """A lock kubectl holds, and a clock the lock's wait runs on (no real sleeping)."""
    (tmp_path / "config.lock").write_text("kubectl\n")
    clock = _Clock()
    monkeypatch.setattr("bootstrap.outputs.lock.time.monotonic", clock.monotonic)
    monkeypatch.setattr("bootstrap.outputs.lock.time.sleep", clock.sleep)
    return clock


def test_the_lock_wait_doubles_up_to_a_fifth_of_a_second(
    tmp_path: Path, held_by_kubectl: _Clock
) -> None:
    clock = held_by_kubectl
    with pytest.raises(OutputError), locked(tmp_path / "config", 1.0):
        pass
    assert clock.sleeps[:7] == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16, 0.2, 0.2])
    assert sum(clock.sleeps) == pytest.approx(1.0)


def test_a_zero_timeout_does_not_wait(tmp_path: Path, held_by_kubectl: _Clock) -> None:
    with pytest.raises(OutputError), locked(tmp_path / "config", 0):
        pass
    assert held_by_kubectl.sleeps == []


def test_the_lock_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    with locked(tmp_path / "config", 1):
        pass
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert list(tmp_path.iterdir()) == []
