"""Paths, names and the one error type shared by every part of the benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
# The tool is measured as users install it: from a wheel, in a venv of its own.
# (.venv's editable install adds ~20 ms of import-hook set-up to every start.)
BENCH_VENV = REPO / ".venv-bench"
TOOL = BENCH_VENV / "bin" / "bootstrap-token"
RECIPE_B = REPO / "scripts" / "bench_recipe.sh"
RECIPE_C = REPO / "scripts" / "bench_kubectl_token.sh"
GNU_TIME = Path("/usr/bin/time")
FLEET_FAILED = 10  # bootstrap-token's exit code when some of several jobs failed
CLUSTER = "dev"  # the dev cluster's kubeconfig name; its current context uses it too
SETUP_DONE_ENV = "BOOTSTRAP_BENCH_SETUP_DONE"

Arg = str | Path  # one argument of a command line

VARIANTS: dict[str, str] = {
    "A": "bootstrap-token (1 process)",
    "B": "docs recipe: Secret + kubectl + curl",
    "C": "kubectl create token + curl",
}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure worth one line to the operator, not a traceback."""
