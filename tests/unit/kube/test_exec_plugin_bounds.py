"""What a plugin writes never grows our memory past fixed bounds: stdout beyond 4 MiB gets
it killed with one error; of stderr, however long, the first 64 KiB are replayed, the rest
counted, and the last line still ends a failure's message. Real shell scripts as plugins;
the peak memory is measured in a child process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bootstrap.kube import exec_plugin
from bootstrap.kube.exec_plugin import ExecError, exec_config

PATH = "/usr/bin:/bin"
CREDENTIAL = (
    '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
    '"status":{"token":"plugin-token-0123"}}'
)
MIB = 1024 * 1024


def plugin(tmp_path: Path, body: str, name: str = "plugin") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def run(command: str, timeout: float = 20) -> exec_plugin.ExecResult:
    config = exec_config(
        {"command": command, "apiVersion": "client.authentication.k8s.io/v1",
         "interactiveMode": "Never"},
        "u",
    )  # fmt: skip
    return exec_plugin.run(config, None, timeout, {"PATH": PATH}, False)


def test_the_bounds_are_pinned() -> None:
    assert exec_plugin.MAX_STDOUT == 4 * MIB
    assert exec_plugin.MAX_STDERR == 64 * 1024


def test_a_plugin_flooding_stdout_is_killed_with_one_error(tmp_path: Path) -> None:
    command = plugin(tmp_path, "exec cat /dev/zero\n")
    started = time.monotonic()
    with pytest.raises(ExecError) as e:
        run(command)
    assert time.monotonic() - started < 10  # not the 20 s deadline: the bound stopped it
    assert str(e.value) == f"exec: executable {command} wrote more than 4 MiB to stdout; killed it"


def test_exactly_four_mib_of_stdout_is_read_whole(tmp_path: Path) -> None:
    """4 MiB is allowed (and is not a credential): the refusal is the parser's."""
    command = plugin(tmp_path, f"head -c {4 * MIB} /dev/zero | tr '\\0' ' '\n")
    with pytest.raises(ExecError) as e:
        run(command)
    assert "wrote more than" not in str(e.value)


def test_a_long_stderr_is_replayed_from_its_start_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10 MiB of "a" on stderr, then a credential.
    command = plugin(
        tmp_path, f"head -c {10 * MIB} /dev/zero | tr '\\0' a >&2\necho '{CREDENTIAL}'\n"
    )
    assert run(command).token == "plugin-token-0123"
    err = capsys.readouterr().err
    assert (
        err
        == "a" * 65536 + "\n" + f"[exec plugin stderr: {10 * MIB - 65536} more bytes not shown]\n"
    )


def test_the_last_line_of_a_long_stderr_ends_the_failure(tmp_path: Path) -> None:
    command = plugin(
        tmp_path,
        f"head -c {10 * MIB} /dev/zero | tr '\\0' a >&2\necho >&2\necho 'the real reason' >&2\n"
        "exit 3\n",
    )
    with pytest.raises(ExecError) as e:
        run(command)
    assert str(e.value) == f"exec: executable {command} failed with exit code 3: the real reason"


def test_memory_stays_bounded_whatever_the_plugin_writes(tmp_path: Path) -> None:
    """Peak RSS of a process that runs a plugin writing 200 MiB to stderr and then floods
    stdout: far below what holding either would take (communicate() held it all)."""
    command = plugin(
        tmp_path, f"head -c {200 * MIB} /dev/zero >&2\nexec cat /dev/zero\n", name="flood"
    )
    script = (
        "import sys\n"
        "from bootstrap.kube import exec_plugin\n"
        "config = exec_plugin.exec_config({'command': sys.argv[1], 'apiVersion': "
        "'client.authentication.k8s.io/v1', 'interactiveMode': 'Never'}, 'u')\n"
        "try:\n"
        "    exec_plugin.run(config, None, 60, {'PATH': sys.argv[2]}, False)\n"
        "except exec_plugin.ExecError as e:\n"
        "    print(e)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest)
        # across fork and exec; VmHWM is this process's own peak.
        "print(next(line.split()[1] for line in open('/proc/self/status')\n"
        "           if line.startswith('VmHWM:')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, command, PATH], capture_output=True, text=True, timeout=120
    )
    message, peak_kib = done.stdout.splitlines()
    assert message == f"exec: executable {command} wrote more than 4 MiB to stdout; killed it"
    assert int(peak_kib) < 40 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"  # 19 MiB here


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting for its parent."""
    state = Path(f"/proc/{pid}/stat")
    return not state.exists() or state.read_text().split(") ")[1].startswith("Z")


def test_a_flooding_plugin_is_killed_with_what_it_started(tmp_path: Path) -> None:
    """The whole process group: the plugin and a child it left in the background."""
    pids = tmp_path / "pids"
    command = plugin(tmp_path, f"sleep 100 &\necho $! $$ > {pids}\nexec cat /dev/zero\n")
    with pytest.raises(ExecError):
        run(command)
    time.sleep(0.2)
    child, parent = map(int, pids.read_text().split())
    assert gone(parent), "the plugin (cat) still runs"
    assert gone(child), "what the plugin started still runs"


@pytest.mark.parametrize(
    ("body", "timeout", "within"),
    [
        ("sleep 10\n", 0.1, 0.9),  # writing nothing: the select's deadline
        # Pipes at their end is not the plugin's end: the wait for its exit is bounded too.
        ("exec >&- 2>&-\nsleep 10\n", 0.3, 5),
    ],
)
def test_the_deadline_holds(tmp_path: Path, body: str, timeout: float, within: float) -> None:
    command = plugin(tmp_path, body)
    started = time.monotonic()
    with pytest.raises(ExecError) as e:
        run(command, timeout=timeout)
    assert time.monotonic() - started < within
    assert str(e.value) == f"exec: executable {command} did not finish before --timeout; killed it"


def test_what_is_kept_of_stderr() -> None:
    kept = exec_plugin._Stderr()
    kept.add(b"a" * 100)
    kept.add(b"b" * 65536)
    kept.add(b"c" * 10)
    assert kept.head == b"a" * 100 + b"b" * 65436
    assert kept.tail == b"b" * 65526 + b"c" * 10
    assert kept.total == 65646
