"""Everything that leaves the process or is read back: rendering the formats (`emit`),
the Argo CD / Flux Secrets and `--apply-to` (`deliver`), where outputs go (`write`),
writing and reading files safely (`files`), client-go's lock on a kubeconfig merged
into (`lock`), and reading our own outputs back for `check` and `--renew-before`
(`readback`, `check`, `renew`).

May import: `bootstrap.errors`, `bootstrap.redact`, `bootstrap.sanitize`, `bootstrap.kube`,
`bootstrap.steps` and modules of this package. Never `commands`, `run` or `api`.
"""
