"""scripts/soak, short: 30 issue / rotate / revoke / sweep cycles through the fault proxy
with random SIGKILLs must end with every count at zero (docs/reliability.md has N=1000)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, DevCluster


def test_a_short_soak_leaves_nothing_behind(dev_cluster: DevCluster, tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "soak"),
            *("--cycles", "30", "--seed", "7", "--json", str(figures)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    document = json.loads(figures.read_text())
    assert done.returncode == 0, (done.stderr[-3000:], document["problems"])
    assert document["finished"] is True
    assert document["cycles"] == 30
    assert {
        k: document[k]
        for k in ("orphaned", "half_written", "stray_files", "leaked_tokens", "alive_tokens")
    } == {"orphaned": 0, "half_written": 0, "stray_files": 0, "leaked_tokens": 0, "alive_tokens": 0}
    assert document["problems"] == []
    # It did soak: kills and every kind of fault happened.
    counts = document["counts"]
    assert counts["kills_at_a_request"] + counts["kills_at_a_random_time"] >= 5
    assert set(document["faults_injected"]) == {"fail", "reset", "delay"}
    assert document["tokens_seen"] >= 30
