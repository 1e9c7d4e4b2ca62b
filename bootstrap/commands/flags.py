"""Flags that several read-and-delete commands share (`list`, `sweep`): which clusters,
through which kubeconfig and context, and how long to wait. One definition, so their
names, help and defaults cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def targets(command: F) -> F:
    """--cluster (repeatable), --all-clusters, --in-cluster, --context, --kubeconfig."""
    for option in reversed(
        [
            click.option(
                "--cluster",
                "clusters",
                multiple=True,
                metavar="NAME",
                help="Cluster name from the kubeconfig (clusters[].name); repeat for several.",
            ),
            click.option("--all-clusters", is_flag=True, help="Every cluster of the kubeconfig."),
            click.option(
                "--in-cluster",
                is_flag=True,
                help="Use the Pod's ServiceAccount (automatic in a Pod without a kubeconfig).",
            ),
            click.option("--context", metavar="CTX", help="Context supplying the credentials."),
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
            ),
        ]
    ):
        command = option(command)
    return command


def connection(command: F) -> F:
    """--timeout (per cluster) and --insecure-skip-tls-verify."""
    command = click.option(
        "--insecure-skip-tls-verify",
        is_flag=True,
        help="Do not verify the API server's certificate (prints a warning).",
    )(command)
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=60.0,
        show_default=True,
        metavar="SECONDS",
        help="Give up after this long (per cluster).",
    )(command)
