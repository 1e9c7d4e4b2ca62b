"""The connection layer: from a kubeconfig to an authenticated HTTP client (what
client-go calls clientcmd + transport).

Owns: reading and merging kubeconfig files (`kubeconfig`), choosing a cluster and its
credentials (`target`), the Pod's own ServiceAccount (`incluster`), credentials and exec
plugins (`credentials`, `exec_plugin`), TLS as Go does it (`transport`), proxies
(`proxies`, `endpoint`) and the one HTTP client: the HTTP/1.1 wire (`http1`), requests
and watches (`client`), what answers and failures mean (`failures`), retries (`retry`).

May import: `bootstrap.errors`, `bootstrap.redact`, `bootstrap.sanitize` and modules of
this package. Never `steps`, `outputs`, `commands`, `run` or `api`.
"""
