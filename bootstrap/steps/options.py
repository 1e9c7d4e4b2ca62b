"""What a run is asked to do: the validated command line (or Python API call) as one
frozen value. Validation is pure (no I/O); the delivery flags (--apply-to,
--secret-name) are checked by `outputs.deliver.validate`, the layer that owns them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bootstrap.errors import UsageError
from bootstrap.kube.target import validate_name
from bootstrap.steps.manifests import role_name_problem


@dataclass(frozen=True)
class Options:
    cluster: str
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "default"
    namespace_flag: bool = True  # False: -n not given, the context's namespace applies
    service_account: str = "default"
    secret: str | None = None  # default: <service-account>-token
    format: str = "env"
    out: str | None = (
        None  # None: ./<cluster>.<ext>; "-": stdout; may hold {cluster}, {service_account}
    )
    env_prefix: str = ""  # prefix of env/dotenv/github variable names; may hold placeholders
    timeout: float = 60.0
    insecure_skip_tls_verify: bool = False
    mode: str = "secret"  # or "request" (TokenRequest, short-lived)
    duration: int = 3600
    audiences: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    server: str | None = None  # where to send the bootstrap requests (e.g. kubectl proxy)
    rotate: bool = False  # make a token Secret under a fresh name (see apply.py)
    bound_secret: str | None = None  # request mode: the token dies with this Secret
    emit_server: str | None = None  # APISERVER written to the outputs (default: the cluster's)
    in_cluster: bool = False  # the Pod's ServiceAccount, not a kubeconfig (see incluster.py)
    apply_to: str | None = None  # CONTEXT/NAMESPACE: apply the Secret formats there (deliver.py)
    delivery_name: str | None = None  # --secret-name: name of the delivered Secret
    ttl: int | None = None  # --ttl seconds: a lease on every object the run creates (sweep.py)

    @property
    def secret_name(self) -> str | None:
        """The token Secret; None in request mode, which needs no Secret."""
        if self.mode == "request":
            return None
        return self.secret or f"{self.service_account}-token"

    def validate(self) -> Options:
        validate_name(self.namespace, "--namespace")
        validate_name(self.service_account, "--service-account", subdomain=True)
        validate_name(self.secret or f"{self.service_account}-token", "--secret", subdomain=True)
        for flag, names in (("--role", self.roles), ("--clusterrole", self.cluster_roles)):
            for name in names:
                problem = role_name_problem(name)
                if problem:
                    raise UsageError(
                        f"{flag} {name!r} is not a valid role name: {problem} "
                        "(see kubectl get roles,clusterroles -A)"
                    )
        for flag, url in (("--server", self.server), ("--emit-server", self.emit_server)):
            if url and not url.startswith(("https://", "http://")):
                raise UsageError(f"{flag} {url!r} must be an http:// or https:// URL")
        if self.audiences and self.mode != "request":
            raise UsageError("--audience needs --mode request")
        if self.bound_secret is not None:
            if self.mode != "request":
                raise UsageError("--bound-secret needs --mode request")
            validate_name(self.bound_secret, "--bound-secret", subdomain=True)
        if self.ttl is not None and self.mode == "request" and self.ttl < 600:
            raise UsageError(
                f"--ttl {self.ttl}s is shorter than the shortest request-mode token (10m): "
                "use --ttl 10m or more with --mode request"
            )
        _ = self.variable_prefix  # validates --env-prefix
        return self

    @property
    def variable_prefix(self) -> str:
        """--env-prefix with {cluster} and {service_account} filled in, upper-cased and
        with anything but A-Z, 0-9 and _ made `_`: `{cluster}_` for `prod-eu` is `PROD_EU_`."""
        template = self.env_prefix
        literal = template.replace("{cluster}", "").replace("{service_account}", "")
        if not re.fullmatch(r"[A-Za-z0-9_]*", literal):
            raise UsageError(
                f"--env-prefix {template!r} may only hold letters, digits, _ and the "
                "placeholders {cluster} and {service_account}"
            )
        prefix = template
        for placeholder, value in (
            ("{cluster}", self.cluster),
            ("{service_account}", self.service_account),
        ):
            prefix = prefix.replace(placeholder, re.sub(r"[^A-Z0-9_]", "_", value.upper()))
        if prefix[:1].isdigit():
            raise UsageError(
                f"--env-prefix {template!r} gives {prefix!r} for cluster {self.cluster!r}: "
                "a variable name cannot start with a digit; put a letter first"
            )
        return prefix
