"""Retrying a request that failed transiently, with tenacity.

Imported only by a run that retries (most never do: importing tenacity is a few
ms of a run). Exponential backoff from 50 ms to 2 s, or the server's Retry-After,
never past the deadline (less a last try's time, so the last attempt fails for
its real reason); a server that has not answered once in this run gets its grace
and no more. The first attempt, already failed, is replayed as tenacity's
attempt 1, so the backoff, the stop rules and the log lines are one retry loop's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity

from bootstrap.errors import TransientError, UnreachableError
from bootstrap.kube.credentials import Deadline

T = TypeVar("T")


def retried(
    first: BaseException,
    attempt: Callable[[], T],
    deadline: Deadline,
    grace_left: Callable[[], float | None],
    last_try: float,
    on_retry: Callable[[BaseException | None, float], None],
) -> T:
    """`attempt` again until it succeeds, fails for good, or time is up; `first` is
    how its first call failed; `grace_left` the seconds left for a server that never
    answered (None once it has); `on_retry(error, delay)` before each sleep."""
    replay: list[BaseException] = [first]

    def again() -> T:
        if replay:
            raise replay.pop()
        return attempt()

    def stop(state: tenacity.RetryCallState) -> bool:
        if deadline.remaining() <= last_try:
            return True
        error = state.outcome.exception() if state.outcome else None
        grace = grace_left()
        return isinstance(error, UnreachableError) and grace is not None and grace <= 0

    backoff = tenacity.wait_exponential(multiplier=0.05, max=2.0)

    def wait(state: tenacity.RetryCallState) -> float:
        delay: float = backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            delay = error.retry_after
        grace = grace_left()
        if grace is not None and isinstance(error, UnreachableError):
            delay = min(delay, max(0.0, grace))
        return max(0.0, min(delay, deadline.remaining() - last_try))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        on_retry(error, state.next_action.sleep if state.next_action else 0.0)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((TransientError, UnreachableError)),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = retrying(again)
    return result
