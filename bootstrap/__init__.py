"""bootstrap-token: from a kubeconfig to a working, verified Kubernetes API token.

The data flow, one module per step:
kubeconfig -> target -> apply -> wait -> verify -> emit
(`client` is the only module that speaks HTTP; `cli` is the thin front end.)

As a library: `from bootstrap import issue_token` (see `bootstrap.api`). The names
below are imported on first use, so `import bootstrap` (and `bootstrap-token --help`)
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bootstrap.api import IssuedToken, issue_token
    from bootstrap.errors import (
        ApiError,
        AuthError,
        BootstrapError,
        ConfigError,
        ConflictError,
        OutputError,
        UsageError,
        VerifyError,
        WaitTimeout,
    )

_LAZY = {
    "issue_token": "bootstrap.api",
    "IssuedToken": "bootstrap.api",
    **{
        name: "bootstrap.errors"
        for name in (
            "ApiError",
            "AuthError",
            "BootstrapError",
            "ConfigError",
            "ConflictError",
            "OutputError",
            "UsageError",
            "VerifyError",
            "WaitTimeout",
        )
    },
}
__all__ = [
    "ApiError",
    "AuthError",
    "BootstrapError",
    "ConfigError",
    "ConflictError",
    "IssuedToken",
    "OutputError",
    "UsageError",
    "VerifyError",
    "WaitTimeout",
    "__version__",
    "issue_token",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bootstrap' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
