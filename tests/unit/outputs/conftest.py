"""Fixtures shared by the tests of files.py and lock.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    precious = tmp_path / "precious"
    precious.write_bytes(b"precious\n")
    precious.chmod(0o644)
    return precious
