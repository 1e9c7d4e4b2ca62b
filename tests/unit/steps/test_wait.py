"""bootstrap.steps.wait: the Secret as applied, then one watch, then tenacity's polls.
The API is a stand-in with two methods (what the wait sends is the subject); the real
controller filling real Secrets is every cluster test, the watch through faults is in
tests/cluster/test_faults.py."""

from __future__ import annotations

import base64
import sys
from typing import Any

import pytest

from bootstrap.errors import AuthError, ConflictError, NotFoundError, WaitTimeout
from bootstrap.kube.client import Deadline
from bootstrap.steps import wait
from bootstrap.steps.wait import Token, wait_for_token

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln"
FILLED = {"token": base64.b64encode(JWT.encode()).decode()}
CREATED = {"metadata": {"name": "ci-token", "resourceVersion": "4711"}, "data": {}}
WATCH = (
    "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Dci-token&watch=1"
    "&timeoutSeconds=1&resourceVersion=4711"
)


class StandIn:
    """watch_for answers with `events` (or raises `refuse`); get answers with `gets`."""

    def __init__(
        self,
        events: list[dict[str, Any]] | None = None,
        refuse: Exception | None = None,
        gets: list[dict[str, Any] | Exception] | None = None,
    ) -> None:
        self.events = events or []
        self.refuse = refuse
        self.gets = gets or []
        self.sent: list[tuple[str, str]] = []

    def watch_for(self, path: str, what: str, seconds: float, found: Any) -> Any:
        self.sent.append(("WATCH", path))
        assert (what, seconds) == ("watch secrets in namespace ns", 1.0)
        if self.refuse is not None:
            raise self.refuse
        return next((event for event in self.events if found(event)), None)

    def get(self, path: str, what: str) -> dict[str, Any]:
        self.sent.append(("GET", path))
        answer = self.gets.pop(0) if self.gets else {"data": {}}
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(api: StandIn, first: dict[str, Any] | None = CREATED, seconds: float = 5) -> Token:
    return wait_for_token(api, "ns", "ci-token", Deadline(seconds), first)  # type: ignore[arg-type]


def test_a_filled_secret_as_applied_is_used_without_a_request() -> None:
    api = StandIn()
    assert run(api, {"metadata": {}, "data": FILLED}).token == JWT
    assert api.sent == []


def test_one_watch_from_the_version_created_picks_the_token_up() -> None:
    api = StandIn(
        events=[
            {"type": "ADDED", "object": {"data": {}}},
            {"type": "MODIFIED", "object": {"data": {"ca.crt": ""}}},
            {"type": "MODIFIED", "object": {"data": FILLED}},
        ]
    )
    assert run(api).token == JWT
    assert api.sent == [("WATCH", WATCH)]


def test_the_watch_needs_no_tenacity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tenacity", None)  # importing it would fail
    api = StandIn(events=[{"type": "MODIFIED", "object": {"data": FILLED}}])
    assert run(api).token == JWT


def test_without_a_version_the_watch_starts_from_now() -> None:
    api = StandIn(events=[{"type": "ADDED", "object": {"data": FILLED}}])
    assert run(api, {"metadata": {"resourceVersion": "1; x=y"}, "data": {}}).token == JWT
    assert run(api, {"metadata": {"resourceVersion": "4\u00b2"}, "data": {}}).token == JWT
    assert api.sent == [("WATCH", WATCH.removesuffix("&resourceVersion=4711"))] * 2


@pytest.mark.parametrize(
    "event",
    [
        {"type": "ERROR", "object": {"kind": "Status", "code": 410}},
        {"type": "MODIFIED", "object": ["not", "a", "secret"]},
        {"type": "MODIFIED", "object": {"data": ["token"]}},
        {"type": "MODIFIED"},
    ],
)
def test_what_is_not_a_filled_secret_is_passed_over_and_the_polls_follow(
    event: dict[str, Any],
) -> None:
    api = StandIn(events=[event], gets=[{"data": {}}, {"data": FILLED}])
    assert run(api).token == JWT
    assert [method for method, _ in api.sent] == ["WATCH", "GET", "GET"]


def test_a_refused_watch_falls_back_to_polls() -> None:
    refused = AuthError("forbidden: the bootstrap credentials may not watch secrets", 403)
    api = StandIn(refuse=refused, gets=[{"data": FILLED}])
    assert run(api).token == JWT
    assert api.sent == [("WATCH", WATCH), ("GET", "/api/v1/namespaces/ns/secrets/ci-token")]


def test_a_secret_deleted_while_watched_is_a_conflict() -> None:
    api = StandIn(events=[{"type": "DELETED", "object": {"data": {}}}])
    with pytest.raises(ConflictError, match="Secret ns/ci-token disappeared while waiting"):
        run(api)
    api = StandIn(gets=[NotFoundError('secrets "ci-token" not found', 404)])
    with pytest.raises(ConflictError, match="Secret ns/ci-token disappeared while waiting"):
        run(api)


def test_a_controller_that_never_fills_it_times_out() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0\.3 s waiting for the token"):
        run(StandIn(), seconds=0.3)


def test_the_watch_window_and_query_are_pinned() -> None:
    assert wait.WATCH_WINDOW == 1.0
