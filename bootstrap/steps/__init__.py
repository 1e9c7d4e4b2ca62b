"""The steps of the job, each one module: what the run asks for (`options`), connecting
with the bootstrap credentials (`connect`), the objects (`manifests`, `plan`), `apply`,
`wait` for the token controller (or `tokenrequest`), `verify` the new token and assess
what it may do (`powers`), and the lifecycle steps `revoke` and `inventory` (for `list`).

May import: `bootstrap.errors`, `bootstrap.redact`, `bootstrap.sanitize`, `bootstrap.kube`
and modules of this package. Never `outputs`, `commands`, `run` or `api`.
"""
