"""Flags that several commands share, one definition each, so their names, help and
defaults cannot drift apart: those of the token commands (`issue`, `rotate`, `revoke`:
`token_targets`, `token_outputs`, with shell completion of cluster and context names)
and those of the read-and-delete commands (`list`, `sweep`: `targets`, `connection`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def targets(command: F) -> F:
    """--cluster (repeatable), --all-clusters, --context, --kubeconfig, --in-cluster."""
    for option in reversed(
        [
            click.option(
                "--cluster",
                "clusters",
                multiple=True,
                metavar="NAME",
                shell_complete=_complete_clusters,
                help="Cluster name from the kubeconfig (clusters[].name); repeat for several.",
            ),
            click.option("--all-clusters", is_flag=True, help="Every cluster of the kubeconfig."),
            click.option(
                "--context",
                metavar="CTX",
                shell_complete=_complete_contexts,
                help="Context supplying the credentials, when several use the cluster.",
            ),
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
            ),
            click.option(
                "--in-cluster",
                is_flag=True,
                help="Use the Pod's own ServiceAccount (automatic in a Pod without a kubeconfig).",
            ),
        ]
    ):
        command = option(command)
    return command


def timeout(default: float, help: str) -> Callable[[F], F]:
    """--timeout SECONDS, each command with its default and its words for the bound."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=default,
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


INSECURE = click.option(
    "--insecure-skip-tls-verify",
    is_flag=True,
    help="Do not verify the API server's certificate (prints a warning).",
)


def connection(command: F) -> F:
    """--timeout (per cluster) and --insecure-skip-tls-verify."""
    return timeout(60.0, "Give up after this long (per cluster).")(INSECURE(command))


def _kubeconfig_names(section: str, ctx: click.Context, incomplete: str) -> list[str]:
    """Shell completion: the names of a kubeconfig section (never an error)."""
    try:
        from bootstrap.kube.kubeconfig import Kubeconfig, default_paths
        from bootstrap.run import environment

        environ, home, _ = environment()
        config = Kubeconfig.from_files(default_paths(ctx.params.get("kubeconfig"), environ, home))
        return [n for n in getattr(config, section) if n.startswith(incomplete)]
    except Exception:
        return []


def _complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _kubeconfig_names("clusters", ctx, incomplete)


def _complete_contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _kubeconfig_names("contexts", ctx, incomplete)


def token_targets(function: F) -> F:
    """Flags shared by issue, rotate and revoke: which clusters (`targets`), which
    account, how the run goes."""
    for decorator in reversed(
        [
            click.option(
                "-n",
                "--namespace",
                metavar="NS",
                help="Namespace of the ServiceAccount (must exist)  [default: the context's, "
                "else default]",
            ),
            click.option(
                "--service-account",
                "service_accounts",
                multiple=True,
                default=["default"],
                show_default=True,
                metavar="SA",
                help="ServiceAccount (created if missing); repeat for several.",
            ),
            click.option(
                "--secret", metavar="NAME", help="Name of the token Secret  [default: SA-token]"
            ),
            click.option(
                "--server",
                metavar="URL",
                help="Send the bootstrap requests here instead (e.g. kubectl proxy at "
                "http://127.0.0.1:8001); the outputs keep the cluster's server.",
            ),
            timeout(60.0, "Give up after this long, all steps included."),
            INSECURE,
            click.option(
                "--parallel",
                type=click.IntRange(min=1),
                default=16,
                show_default=True,
                metavar="N",
                help="Tokens issued at once with several clusters or service accounts.",
            ),
            click.option(
                "-v", "--verbose", is_flag=True, help="Every step on stderr, not only the result."
            ),
            click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr."),
            click.option(
                "--debug", is_flag=True, help="Log each request and step timings; show tracebacks."
            ),
        ]
    ):
        function = decorator(function)
    return targets(function)


FORMATS = ["env", "kubeconfig", "json", "dotenv", "github", "argocd", "kubeconfig-secret"]


def token_outputs(function: F) -> F:
    """Flags shared by issue and rotate: what kind of token, where it goes."""
    for decorator in reversed(
        [
            click.option(
                "-o",
                "--output",
                type=click.Choice(FORMATS),
                metavar="FORMAT",
                help="Print the token as FORMAT on stdout (or to --out): env, kubeconfig, json, "
                "dotenv, github, argocd, kubeconfig-secret  [default: an env file ./CLUSTER.env]",
            ),
            click.option(
                "--format",
                "output_format",
                type=click.Choice(FORMATS),
                default="env",
                metavar="FORMAT",
                help="As -o, but to a file by default (./CLUSTER.EXT); the formats: "
                "docs/delivery.md.",
            ),
            click.option(
                "--apply-to",
                metavar="CONTEXT/NAMESPACE",
                help="argocd, kubeconfig-secret: apply the Secret into NAMESPACE of context "
                "CONTEXT's cluster.",
            ),
            click.option(
                "--secret-name",
                "delivery_name",
                metavar="NAME",
                help="Name of the argocd / kubeconfig-secret Secret.",
            ),
            click.option(
                "--out",
                metavar="PATH|-",
                help="Output file ({cluster}, {service_account} are replaced), - for stdout  "
                "[default: stdout with -o, else ./CLUSTER.EXT or SA@CLUSTER.EXT]",
            ),
            click.option(
                "--env-prefix",
                default="",
                metavar="PREFIX",
                help="Prefix of env/dotenv/github variable names; may hold {cluster}, "
                "{service_account}.",
            ),
            click.option(
                "--mode",
                type=click.Choice(["secret", "request"]),
                default="secret",
                show_default=True,
                help="secret: a token Secret's token (does not expire); request: short-lived "
                "(TokenRequest).",
            ),
            click.option(
                "--duration",
                default="1h",
                show_default=True,
                metavar="DURATION",
                help="Lifetime of a request-mode token (at least 10m; the server may grant less).",
            ),
            click.option(
                "--audience",
                "audiences",
                multiple=True,
                metavar="AUD",
                help="Audience of a request-mode token (repeatable; default: the API server).",
            ),
            click.option(
                "--emit-server",
                metavar="URL",
                help="APISERVER written into the outputs  [default: the cluster's server]",
            ),
            click.option(
                "--bound-secret",
                metavar="NAME",
                help="Bind a request-mode token to this Secret: deleting it revokes the token.",
            ),
            click.option(
                "--ttl",
                metavar="DURATION",
                help="Lease: everything this run creates expires after DURATION (e.g. 2h, 1d), then `sweep` deletes it; request-mode tokens live at most as long.",
            ),
            click.option(
                "--role",
                "roles",
                multiple=True,
                metavar="ROLE",
                help="Bind this Role in the namespace (RoleBinding); repeatable.",
            ),
            click.option(
                "--clusterrole",
                "cluster_roles",
                multiple=True,
                metavar="ROLE",
                help="Bind this ClusterRole cluster-wide (ClusterRoleBinding); repeatable.",
            ),
        ]
    ):
        function = decorator(function)
    return function
