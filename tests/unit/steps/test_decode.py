"""bootstrap.steps.wait.decode: turning a filled token Secret's data into a Token."""

from __future__ import annotations

import base64

import pytest

from bootstrap.errors import ApiError
from bootstrap.steps.wait import Token, decode

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def test_valid_token_ca_and_namespace() -> None:
    data = {"token": b64(JWT), "ca.crt": b64(CA_PEM), "namespace": b64("ci")}
    token = decode(data, "requested", "sa-token")
    assert token == Token(token=JWT, ca_pem=CA_PEM, namespace="ci")


def test_namespace_defaults_to_the_requested_one() -> None:
    assert decode({"token": b64(JWT)}, "ci", "s").namespace == "ci"
    assert decode({"token": b64(JWT), "namespace": ""}, "ci", "s").namespace == "ci"


@pytest.mark.parametrize("bad", ["!!!", b64(b"\xff\xfe")])
def test_unreadable_namespace_falls_back_to_the_requested_one(bad: str) -> None:
    assert decode({"token": b64(JWT), "namespace": bad}, "ci", "s").namespace == "ci"


@pytest.mark.parametrize(
    "bad",
    ["not base64!", "abc", b64(JWT) + "\n", "ZXlK*", "ünï", b64(b"\xff\xfe\xfd")],
    ids=["punctuation", "bad-padding", "newline", "star", "non-ascii", "not-ascii-text"],
)
def test_token_not_base64_is_an_api_error(bad: str) -> None:
    with pytest.raises(ApiError) as e:
        decode({"token": bad}, "ci", "sa-token")
    message = str(e.value)
    assert message == "Secret ci/sa-token: data.token is not valid base64 text"
    assert bad not in message
    assert e.value.exit_code == 4


def test_token_surrounding_whitespace_is_stripped() -> None:
    assert decode({"token": b64(f"  {JWT}\n")}, "ci", "s").token == JWT


@pytest.mark.parametrize("inner", [f"{JWT} extra", f"{JWT}\nsecond", "a\tb", "   ", "\n"])
def test_token_with_inner_whitespace_or_blank_is_an_api_error(inner: str) -> None:
    with pytest.raises(ApiError) as e:
        decode({"token": b64(inner)}, "ci", "sa-token")
    assert str(e.value) == "Secret ci/sa-token: data.token does not hold a token"
    assert JWT not in str(e.value)


@pytest.mark.parametrize("data", [{}, {"ca.crt": ""}, {"ca.crt": None}])
def test_missing_ca(data: dict[str, object]) -> None:
    assert decode({"token": b64(JWT), **data}, "ci", "s").ca_pem is None


def test_ca_not_base64_is_an_api_error() -> None:
    with pytest.raises(ApiError, match=r"Secret ci/s: data\.ca\.crt is not valid base64"):
        decode({"token": b64(JWT), "ca.crt": "%%%"}, "ci", "s")


def test_repr_hides_the_token() -> None:
    token = decode({"token": b64(JWT), "ca.crt": b64(CA_PEM)}, "ci", "s")
    for text in (repr(token), str(token), f"{token}", f"{token!r}", repr([token])):
        assert JWT not in text
        assert "redacted" in text
    assert "ci" in repr(token)
