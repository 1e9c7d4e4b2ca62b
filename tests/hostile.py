"""A hostile API server for tests: a FaultProxy that can also echo requests back.

Some servers (or proxies and gateways in front of them) quote the request in an
error: a Status `message` such as "invalid request GET /api/v1/...: Authorization:
Bearer ...". Only such a server can show that the tool does not print what it
echoes. `echo(status, ...)` answers matching requests itself, without going
upstream, with a Kubernetes Status whose message holds the request's method,
target and Authorization header; every other request is forwarded (or faulted)
as by FaultProxy.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tests.faultproxy import FaultProxy, status_body


@dataclass
class _Echo:
    status: int
    method: str | None
    path: re.Pattern[str] | None
    remaining: int | None  # None: every matching request


class EchoProxy(FaultProxy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._echoes: list[_Echo] = []
        self._echo_lock = threading.Lock()
        self.echoed = 0

    def echo(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests (default: all) with `status` and a
        Status message quoting the request's Authorization header."""
        rule = _Echo(
            status, method.upper() if method else None, re.compile(path) if path else None, times
        )
        with self._echo_lock:
            self._echoes.append(rule)

    def _take_echo(self, method: str, target: str) -> _Echo | None:
        with self._echo_lock:
            for rule in self._echoes:
                if rule.remaining == 0:
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                if rule.path is not None and not rule.path.search(target):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                self.echoed += 1
                return rule
        return None

    def _forward(
        self, method: str, target: str, headers: Message, body: bytes | None, client_cert: bool
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        rule = self._take_echo(method, target)
        if rule is None:
            return super()._forward(method, target, headers, body, client_cert)
        message = (
            f"request {method} {target} refused; it carried Authorization: "
            f"{headers.get('Authorization', '(none)')}"
        )
        document = status_body(rule.status, message)
        return (
            rule.status,
            "Echo",
            [("Content-Type", "application/json")],
            json.dumps(document).encode(),
        )
