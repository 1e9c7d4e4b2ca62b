"""bootstrap-token: from a kubeconfig to a working, verified Kubernetes API token.

The data flow, one module per step:
kubeconfig -> target -> apply -> wait -> verify -> emit
(`client` is the only module that speaks HTTP; `cli` is the thin front end.)
"""

__version__ = "0.1.0"
