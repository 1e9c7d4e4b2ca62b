"""Areas 4 and 5: impersonation (`as`, `as-groups`, `as-uid`, `as-user-extra`)
and credentials in every form: client certificate and key as data or files (mixed,
relative), bearer `token` and `tokenFile`."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.cases import SA_ADMIN, Case, admin_user, b64, cluster, simple, variant
from tests.conformance.conftest import Lab

# --- impersonation ---------------------------------------------------------------


def _as(lab: Lab, d: Path, extra: dict[str, object], **case: object) -> Case:
    user = {**admin_user(lab), "as": "conform-someone", "as-groups": ["system:masters"], **extra}
    return simple(lab, d, cluster(lab), user, who="conform-someone", **case)  # type: ignore[arg-type]


@variant("impersonate-user-and-group", "impersonation")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _as(lab, d, {})


@variant("impersonate-uid", "impersonation")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _as(lab, d, {"as-uid": "uid-1234"}, whoami_extra={"uid": "uid-1234"})


@variant("impersonate-user-extra", "impersonation")
def _(lab: Lab, d: Path, ns: str) -> Case:
    extra = {"as-user-extra": {"scopes": ["read", "write"], "team": ["conform"]}}
    return _as(
        lab, d, extra, whoami_extra={"extra": {"scopes": ["read", "write"], "team": ["conform"]}}
    )


@variant("impersonate-with-token-user", "impersonation")
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {"token": lab.sa_token, "as": "conform-other", "as-groups": ["system:masters", "team-a"]}
    return simple(lab, d, cluster(lab), user, who="conform-other")


@variant("impersonate-groups-without-user", "impersonation", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {**admin_user(lab), "as-groups": ["system:masters"]})


# --- client certificates and tokens --------------------------------------------------


@variant("creds-cert-data-key-file", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {
        "client-certificate-data": b64(lab.admin.crt.read_bytes()),
        "client-key": str(lab.admin.key),
    }
    return simple(lab, d, cluster(lab), user, who="dev-admin")


@variant("creds-cert-file-key-data", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {
        "client-certificate": str(lab.admin.crt),
        "client-key-data": b64(lab.admin.key.read_bytes()),
    }
    return simple(lab, d, cluster(lab), user, who="dev-admin")


@variant("creds-cert-and-key-relative-files", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "keys").mkdir()
    (d / "keys" / "admin.crt").write_bytes(lab.admin.crt.read_bytes())
    (d / "keys" / "admin.key").write_bytes(lab.admin.key.read_bytes())
    (d / "keys" / "admin.key").chmod(0o600)
    (d / "run").mkdir()
    user = {"client-certificate": "keys/admin.crt", "client-key": "./keys/admin.key"}
    return simple(lab, d, cluster(lab), user, who="dev-admin", cwd=d / "run")


@variant("creds-token", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {"token": lab.sa_token}, who=SA_ADMIN)


@variant("creds-token-file-absolute-with-newline", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "token").write_text(lab.sa_token + "\n")
    return simple(lab, d, cluster(lab), {"tokenFile": str(d / "token")}, who=SA_ADMIN)


@variant("creds-token-file-relative", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "secret").mkdir()
    (d / "secret" / "token").write_text(lab.sa_token)
    (d / "run").mkdir()
    return simple(lab, d, cluster(lab), {"tokenFile": "secret/token"}, who=SA_ADMIN, cwd=d / "run")


@variant("creds-token-file-wins-over-token", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # client-go re-reads tokenFile for every request, and its content wins.
    (d / "token").write_text(lab.sa_token)
    user = {"token": "conformance-not-a-token", "tokenFile": str(d / "token")}
    return simple(lab, d, cluster(lab), user, who=SA_ADMIN)


@variant("creds-invalid-token-file-beats-valid-token", "credentials", accepts=False, exit_code=5)
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "token").write_text("conformance-not-a-token")
    user = {"token": lab.sa_token, "tokenFile": str(d / "token")}
    return simple(lab, d, cluster(lab), user)


@variant("creds-cert-without-key", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(
        lab, d, cluster(lab), {"client-certificate-data": b64(lab.admin.crt.read_bytes())}
    )


@variant("creds-key-does-not-match-cert", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {"client-certificate": str(lab.admin.crt), "client-key": str(lab.material.other_ca.key)}
    return simple(lab, d, cluster(lab), user)


@variant("creds-invalid-token", "credentials", accepts=False, exit_code=5)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {"token": "conformance-not-a-token"})


@variant("creds-basic-auth", "credentials", accepts=False, exit_code=5)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {"username": "admin", "password": "secret"})


@variant("creds-token-file-missing", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {"tokenFile": str(d / "missing-token")})


@variant("creds-token-file-with-line-break-inside", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "token").write_text(lab.sa_token[:20] + "\n" + lab.sa_token[20:] + "\n")
    return simple(lab, d, cluster(lab), {"tokenFile": str(d / "token")})


@variant("creds-server-with-trailing-slash", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(
        lab, d, cluster(lab, server=lab.server + "/"), {"token": lab.sa_token}, who=SA_ADMIN
    )


@variant("creds-cert-data-and-cert-file-both-set", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(
        lab, d, cluster(lab), {**admin_user(lab), "client-certificate": str(lab.admin.crt)}
    )


@variant("creds-token-and-basic-auth-both-set", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab), {"token": lab.sa_token, "username": "a", "password": "b"})


@variant("creds-rsa-pkcs1-key", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {
        "client-certificate": str(lab.admin.crt),
        "client-key": str(lab.material.admin_pkcs1_key),
    }
    return simple(lab, d, cluster(lab), user, who="dev-admin")


@variant("creds-ec-client-certificate-data", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    ec = lab.material.ec_client
    user = {
        "client-certificate-data": b64(ec.crt.read_bytes()),
        "client-key-data": b64(ec.key.read_bytes()),
    }
    return simple(lab, d, cluster(lab), user, who="ec-admin")


@variant("creds-encrypted-key", "credentials", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {
        "client-certificate": str(lab.admin.crt),
        "client-key": str(lab.material.admin_encrypted_key),
    }
    return simple(lab, d, cluster(lab), user)


@variant("creds-token-file-empty", "credentials", accepts=False, exit_code=5)
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "token").write_text("")
    return simple(lab, d, cluster(lab), {"tokenFile": str(d / "token")})


@variant("creds-token-file-tilde-is-not-home", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # client-go never expands "~" in kubeconfig paths: "~/token" is relative to the
    # kubeconfig's directory, like any relative path.
    (d / "~").mkdir()
    (d / "~" / "token").write_text(lab.sa_token)
    return simple(lab, d, cluster(lab), {"tokenFile": "~/token"}, who=SA_ADMIN)


@variant("impersonate-extra-key-needs-escaping", "impersonation")
def _(lab: Lab, d: Path, ns: str) -> Case:
    extra = {"as-user-extra": {"example.com/scope": ["a b", "c%d"]}}
    return _as(lab, d, extra, whoami_extra={"extra": {"example.com/scope": ["a b", "c%d"]}})
