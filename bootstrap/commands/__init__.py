"""The command line, one module per command as gh does: `cli` (the click group, the
issue/rotate/revoke commands and the one error boundary), `group` (default command,
help, usage errors), `list`, `check`, `options` (the flags into the clusters and
ServiceAccounts asked for, their `run.Options` and the output choices), `jobs` (running
a command for every one of them) and `fleet` (running jobs concurrently).

May import every layer below: `bootstrap.errors`, `bootstrap.redact`, `kube`, `steps`,
`outputs` and `bootstrap.run`. Nothing imports it but `bootstrap.__main__` and the
console scripts.
"""
