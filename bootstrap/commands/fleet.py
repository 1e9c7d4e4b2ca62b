"""Several jobs at once (clusters, or service accounts of a cluster): bounded
concurrency, one failure never stops the others, and a summary table says which
job did what."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from bootstrap.errors import FLEET_FAILED, BootstrapError
from bootstrap.sanitize import visible

log = logging.getLogger("bootstrap")

__all__ = ["FLEET_FAILED", "Outcome", "current_cluster", "render_summary", "run_all"]

_current = threading.local()


def current_cluster() -> str | None:
    """The cluster the calling thread works on (for log prefixes)."""
    return getattr(_current, "cluster", None)


@dataclass(frozen=True)
class Outcome:
    cluster: str
    ok: bool
    detail: str
    exit_code: int = 0


def run_all(
    clusters: list[str],
    job: Callable[[str], str],
    parallel: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run `job(cluster)` for each cluster, at most `parallel` at a time, in input order;
    `on_done` hears of each outcome as it comes (for a live count)."""

    def one(cluster: str) -> Outcome:
        outcome = _one(cluster, job)
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(clusters)))) as pool:
        futures = [pool.submit(one, cluster) for cluster in clusters]
        return [future.result() for future in futures]


def _one(cluster: str, job: Callable[[str], str]) -> Outcome:
    _current.cluster = cluster
    try:
        return Outcome(cluster, True, job(cluster))
    except BootstrapError as e:
        return Outcome(cluster, False, str(e), e.exit_code)
    except Exception as e:
        log.debug("internal error", exc_info=True)
        return Outcome(
            cluster, False, f"internal error ({type(e).__name__}); rerun with --debug", 1
        )
    finally:
        _current.cluster = None


def render_summary(outcomes: list[Outcome]) -> str:
    outcomes = [replace(o, cluster=visible(o.cluster), detail=visible(o.detail)) for o in outcomes]
    width = max(len("TARGET"), *(len(o.cluster) for o in outcomes))
    lines = [f"{'TARGET':<{width}}  {'RESULT':<6}  DETAIL"]
    lines += [
        f"{o.cluster:<{width}}  {'ok' if o.ok else 'FAILED':<6}  {o.detail}" for o in outcomes
    ]
    failed = sum(not o.ok for o in outcomes)
    lines.append(f"{len(outcomes) - failed} of {len(outcomes)} ok")
    return "\n".join(lines) + "\n"
