"""Statistics over repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench_lib.runner import Run


@dataclass
class Summary:
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(min(values), statistics.median(values), max(values))


@dataclass
class VariantResult:
    label: str
    wall_ms: list[float] = field(default_factory=list)
    maxrss_mib: list[float] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.wall_ms.append(1000 * run.wall_s)
        self.maxrss_mib.append(run.maxrss_kib / 1024)
