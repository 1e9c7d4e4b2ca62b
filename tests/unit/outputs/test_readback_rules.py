"""What `check FILE` and the reader of our own formats may trust, and how every
file is read (issue 17, items 1, 3 and 4): a checked file is evidence, not
configuration; every read is bounded and non-blocking; writers and readers agree
on what a line is.

The tool runs as a whole process (tests.conftest.run_tool); where a connection
must NOT happen, the file's server is a local listener that counts connections.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.errors import ConfigError, OutputError, UsageError
from bootstrap.outputs import files, readback
from bootstrap.outputs.emit import Issued, render_dotenv, render_env, render_github_outputs
from tests.conftest import run_tool

OTHER_UID = 65534  # nobody (the tests run as root, which may chown)
TOKEN = "abcd.efgh-not-a-real-token-1234"


class Listener:
    """A TCP port on 127.0.0.1 that accepts and counts connections (and says nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                self.received += conn.recv(65536)
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def kubeconfig(
    server: str, user: dict[str, object], cluster: dict[str, object] | None = None
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


# --- 1. check uses only the credentials written inside FILE ----------------------------


@pytest.mark.parametrize(
    ("user", "field"),
    [
        ({"tokenFile": "SECRET"}, "tokenFile"),
        (
            {"token": TOKEN, "client-certificate": "SECRET", "client-key": "SECRET"},
            "client-certificate",
        ),
        ({"token": TOKEN, "client-key": "SECRET"}, "client-key"),
        (
            {
                "token": TOKEN,
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "RUN",
                    "interactiveMode": "Never",
                },
            },
            "exec",
        ),
        ({"token": TOKEN, "auth-provider": {"name": "oidc", "config": {}}}, "auth-provider"),
    ],
)
def test_check_refuses_a_reference_out_of_the_file_before_any_connection(
    tmp_path: Path, listener: Listener, user: dict[str, object], field: str
) -> None:
    secret = tmp_path / "victim-token"
    secret.write_text("the-victims-own-token-0123456789")
    plugin = tmp_path / "plugin.sh"
    ran = tmp_path / "plugin-ran"
    plugin.write_text(f"#!/bin/sh\ntouch {ran}\n")
    plugin.chmod(0o755)
    text = kubeconfig(f"http://127.0.0.1:{listener.port}", user)
    text = text.replace("SECRET", str(secret)).replace("RUN", str(plugin))
    handed_over = tmp_path / "handed-over.kubeconfig"
    handed_over.write_text(text)

    result = run_tool("check", str(handed_over), "--timeout", "5")

    assert result.returncode == 2, result.stderr
    assert len(result.error_lines) == 1, result.stderr
    assert f"(users[].user.{field})" in result.error_lines[0]
    assert "only credentials written inside the file are used" in result.error_lines[0]
    assert listener.connections == 0
    assert not ran.exists(), "check ran the file's exec plugin"


@pytest.mark.parametrize("fmt", ["env", "dotenv", "json", "kubeconfig"])
def test_check_refuses_a_ca_path_that_is_not_the_one_written_beside_the_file(
    tmp_path: Path, listener: Listener, fmt: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ca = elsewhere / "prod.ca.crt"  # the right name, in another directory
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    server = f"https://127.0.0.1:{listener.port}"
    checked = tmp_path / "prod.env"
    if fmt == "env":
        checked.write_text(
            f"export APISERVER='{server}'\nexport TOKEN='{TOKEN}'\nexport CACERT='{ca}'\n"
        )
    elif fmt == "dotenv":
        checked.write_text(f"APISERVER={server}\nTOKEN={TOKEN}\nCACERT={ca}\n")
    elif fmt == "json":
        checked.write_text(
            f'{{"apiserver": "{server}", "token": "{TOKEN}", "cacert_path": "{ca}"}}'
        )
    else:
        checked.write_text(kubeconfig(server, {"token": TOKEN}, {"certificate-authority": str(ca)}))

    result = run_tool("check", str(checked), "--timeout", "5")

    assert result.returncode == 2, result.stderr
    assert len(result.error_lines) == 1
    assert f"it names the CA file {ca}, not one bootstrap-token wrote beside it" in result.stderr
    assert listener.connections == 0


def test_check_refuses_the_ca_file_beside_it_when_someone_else_owns_it(
    tmp_path: Path, listener: Listener
) -> None:
    ca = tmp_path / "prod.ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    os.chown(ca, OTHER_UID, OTHER_UID)
    checked = tmp_path / "prod.env"
    checked.write_text(
        f"APISERVER=https://127.0.0.1:{listener.port}\nTOKEN={TOKEN}\nCACERT=prod.ca.crt\n"
    )
    result = run_tool("check", str(checked), "--timeout", "5")
    assert result.returncode == 2, result.stderr
    assert f"cannot read the CA file {ca}: it is owned by uid {OTHER_UID}, not by you" in (
        result.stderr
    )
    assert listener.connections == 0


def test_check_refuses_a_ca_file_beside_it_that_is_a_symlink(
    tmp_path: Path, listener: Listener
) -> None:
    (tmp_path / "prod.ca.crt").symlink_to("/etc/hostname")
    checked = tmp_path / "prod.env"
    checked.write_text(
        f"APISERVER=https://127.0.0.1:{listener.port}\nTOKEN={TOKEN}\nCACERT=prod.ca.crt\n"
    )
    result = run_tool("check", str(checked), "--timeout", "5")
    assert result.returncode == 2, result.stderr
    assert "prod.ca.crt: it is a symlink" in result.stderr
    assert listener.connections == 0


def test_own_ca_reads_the_ca_file_written_beside_the_file(tmp_path: Path) -> None:
    from bootstrap.outputs.check import own_ca

    (tmp_path / "prod.ca.crt").write_bytes(b"PEM")
    creds = readback.parse("APISERVER=https://a\nTOKEN=t0k3n\nCACERT=prod.ca.crt\n", tmp_path)
    assert own_ca(creds, tmp_path).ca_pem == b"PEM"
    assert own_ca(creds, tmp_path).ca_file is None
    inline = replace(creds, ca_pem=b"INLINE")
    assert own_ca(inline, tmp_path) == replace(inline, ca_file=None)
    wrong_name = readback.parse("APISERVER=https://a\nTOKEN=t0k3n\nCACERT=prod.pem\n", tmp_path)
    (tmp_path / "prod.pem").write_bytes(b"PEM")
    with pytest.raises(UsageError, match="not one bootstrap-token wrote beside it"):
        own_ca(wrong_name, tmp_path)


# --- 3. every read is bounded and non-blocking ----------------------------------------------


def test_check_of_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "creds.env"
    os.mkfifo(fifo)
    result = run_tool("check", str(fifo), "--timeout", "2", timeout=20)
    assert result.returncode == 2
    assert result.error_lines == [
        f"error: cannot read {fifo}: it is a FIFO (named pipe), not a regular file"
    ]


def test_a_fifo_kubeconfig_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "config"
    os.mkfifo(fifo)
    result = run_tool("--kubeconfig", str(fifo), "--list-clusters", timeout=20)
    assert result.returncode == 3
    assert result.error_lines == [
        f"error: cannot read kubeconfig {fifo}: it is a FIFO (named pipe), not a regular file"
    ]


@pytest.mark.parametrize("where", ["certificate-authority", "tokenFile"])
def test_a_device_or_fifo_named_by_the_kubeconfig_is_refused(tmp_path: Path, where: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    if where == "certificate-authority":
        text = kubeconfig("https://127.0.0.1:1", {"token": TOKEN}, {where: "/dev/zero"})
        expected = "cannot read the CA file /dev/zero: it is a character device, not a regular file"
    else:
        text = kubeconfig(
            "https://127.0.0.1:1", {"tokenFile": str(fifo)}, {"insecure-skip-tls-verify": True}
        )
        expected = f"tokenFile: cannot read {fifo}: it is a FIFO (named pipe), not a regular file"
    config = tmp_path / "config"
    config.write_text(text)
    result = run_tool(
        "--kubeconfig",
        str(config),
        "--cluster",
        "c",
        "--out",
        str(tmp_path / "o.env"),
        "--timeout",
        "3",
        timeout=30,
    )
    assert result.returncode == 3, result.stderr
    assert len(result.error_lines) == 1
    assert expected in result.error_lines[0]


def test_a_huge_ca_file_is_refused_by_its_size(tmp_path: Path) -> None:
    huge = tmp_path / "huge.crt"
    with huge.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: nothing is really written
    config = tmp_path / "config"
    config.write_text(
        kubeconfig("https://127.0.0.1:1", {"token": TOKEN}, {"certificate-authority": str(huge)})
    )
    result = run_tool(
        "--kubeconfig", str(config), "--cluster", "c", "--out", str(tmp_path / "o.env"), timeout=30
    )
    assert result.returncode == 3
    assert (
        f"cannot read the CA file {huge}: it is 64 MiB, more than the 4 MiB allowed"
        in result.stderr
    )


def test_read_input_rules(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"12345")
    assert files.read_input(plain, "x", limit=5) == b"12345"
    with pytest.raises(
        ConfigError, match=r"^cannot read x .*plain: it is 5 bytes, more than the 4 bytes allowed$"
    ):
        files.read_input(plain, "x", limit=4)
    assert files.read_input(tmp_path / "none", "x", missing_ok=True) is None
    with pytest.raises(ConfigError, match=r"none: it does not exist$"):
        files.read_input(tmp_path / "none", "x")
    with pytest.raises(UsageError, match=r"it is a directory, not a regular file$"):
        files.read_input(tmp_path, "x", error=UsageError)
    link = tmp_path / "link"
    link.symlink_to(plain)
    assert files.read_input(link, "x") == b"12345"
    with pytest.raises(ConfigError, match=r"link: it is a symlink, not a regular file$"):
        files.read_input(link, "x", follow=False)
    os.chown(plain, OTHER_UID, OTHER_UID)
    assert files.read_input(plain, "x") == b"12345"
    with pytest.raises(ConfigError, match=f"owned by uid {OTHER_UID}, not by you"):
        files.read_input(plain, "x", own=True)
    with pytest.raises(
        ConfigError, match=r"/dev/zero: it is a character device, not a regular file$"
    ):
        files.read_input("/dev/zero", "x")


def test_read_back_refuses_an_output_someone_else_owns(tmp_path: Path) -> None:
    out = tmp_path / "prod.env"
    out.write_text("TOKEN=x\n")
    assert files.read_bytes(out, trusted_owner=True) == b"TOKEN=x\n"
    os.chown(out, OTHER_UID, OTHER_UID)
    assert files.read_bytes(out) == b"TOKEN=x\n"
    with pytest.raises(
        OutputError, match=rf"refusing to use {out}: it is owned by uid {OTHER_UID}"
    ):
        files.read_bytes(out, trusted_owner=True)
    os.chown(out, 0, 0)
    assert files.read_bytes(out, trusted_owner=True) == b"TOKEN=x\n"


def test_read_back_of_an_oversized_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "prod.env"
    with out.open("wb") as f:
        f.truncate(files.MAX_OUTPUT_BYTES + 1)
    with pytest.raises(
        OutputError, match="it is larger than 16 MiB, not an output of bootstrap-token"
    ):
        files.read_bytes(out)


# --- 4. writers and readers agree on what a line is -------------------------------------------

ISSUED = Issued(
    cluster="dev",
    server="https://127.0.0.1:6443",
    namespace="ci",
    service_account="deployer",
    secret="deployer-token",
    token=TOKEN,
    ca_pem=None,
    identity="system:serviceaccount:ci:deployer",
)
# What str.splitlines() splits on, besides \n and \r.
SPLITLINES_ONLY = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", *SPLITLINES_ONLY])
def test_every_line_based_writer_refuses_what_a_reader_splits_on(char: str) -> None:
    smuggled = replace(ISSUED, proxy_url=f"http://proxy:3128{char}APISERVER=http://127.0.0.1:9")
    for render in (render_env, render_dotenv):
        with pytest.raises(OutputError, match="HTTPS_PROXY contains"):
            render(smuggled, None)
    with pytest.raises(OutputError, match="identity contains"):
        render_github_outputs(replace(ISSUED, identity=f"x{char}y"), None)


def test_line_safe_names_what_it_refuses() -> None:
    from bootstrap.outputs.emit import line_safe

    def refusal(value: str) -> str:
        with pytest.raises(OutputError) as caught:
            line_safe("K", value, "dotenv")
        return str(caught.value)

    tail = ", which dotenv cannot carry on one line; use --format json or kubeconfig"
    assert refusal("a\ud800") == "K contains a lone surrogate (not UTF-8)" + tail
    assert refusal("a\udfff") == "K contains a lone surrogate (not UTF-8)" + tail
    assert refusal("a\x00") == "K contains a NUL" + tail
    assert refusal("a\u2028") == "K contains the line break U+2028" + tail
    assert line_safe("K", "tab\there \x1b[0m \ud7ff \ue000", "dotenv") == (
        "tab\there \x1b[0m \ud7ff \ue000"
    )


def test_the_reader_splits_lines_where_bash_does() -> None:
    text = (
        "export APISERVER='https://good:6443'\n"
        f"export TOKEN='{TOKEN}'\n"
        "export HTTPS_PROXY='http://p:1\u2028APISERVER=http://evil'\n"
    )
    creds = readback.parse(text, Path("/x"))
    assert creds.server == "https://good:6443"
    assert creds.proxy_url == "http://p:1\u2028APISERVER=http://evil"


BASH = shutil.which("bash")


def bash_reads(script: Path, names: tuple[str, ...]) -> dict[str, str]:
    out = subprocess.run(
        [BASH or "bash", "-c", '. "$1" && exec env -0', "bash", str(script)],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    values = dict(item.partition("=")[::2] for item in out.decode("utf-8").split("\0") if item)
    return {name: values[name] for name in names if name in values}


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=10))
def test_every_value_is_refused_or_read_back_identical_by_us_and_by_bash(
    tmp_path: Path, value: str, other: str
) -> None:
    # (Not proxy_url: a socks5:// proxy is written as socks5h:// on purpose, emit.shell_proxy.)
    issued = replace(ISSUED, server=value, token=other + "tok", namespace=value + other)
    try:
        text = render_env(issued, None)
    except OutputError:
        for bad in ("\x00", "\n", "\r", *SPLITLINES_ONLY):
            if bad in value + other:
                return
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value + other):
            return
        raise
    creds = readback.parse(text, tmp_path)
    assert (creds.server, creds.token, creds.namespace) == (value, other + "tok", value + other)
    script = tmp_path / "p.env"
    script.write_bytes(text.encode("utf-8"))
    assert bash_reads(script, ("APISERVER", "TOKEN", "NAMESPACE")) == {
        "APISERVER": value,
        "TOKEN": other + "tok",
        "NAMESPACE": value + other,
    }


@settings(max_examples=300, deadline=None)
@given(value=st.text(min_size=1, max_size=40))
def test_every_dotenv_value_is_refused_or_read_back_identical(value: str) -> None:
    issued = replace(ISSUED, server=value)
    try:
        text = render_dotenv(issued, None)
    except OutputError:
        assert any(c in value for c in "\x00\n\r" + "".join(SPLITLINES_ONLY)) or any(
            0xD800 <= ord(c) <= 0xDFFF for c in value
        )
        return
    assert readback.parse(text, Path("/x")).server == value


# --- 2. (pure part) a file the tool did not write -----------------------------------------------


def test_foreign_lines_and_headers_are_found() -> None:
    ours = render_env(replace(ISSUED, proxy_url="http://p:3128"), Path("/o/dev.ca.crt"))
    assert readback.foreign(ours) is None
    assert readback.foreign(ours + "export BASH_ENV='/tmp/x'\n") == "an unknown line (env line 9)"
    assert readback.foreign(ours.replace("# bootstrap-token: ", "# hello: ")) == (
        "its header is not bootstrap-token's"
    )
    unquoted = ours.replace("export NAMESPACE='ci'", "export NAMESPACE=ci$(id)")
    assert readback.foreign(unquoted) == "a line bootstrap-token does not write (env line 7)"
    twice = ours + "export TOKEN='other'\n"
    assert readback.foreign(twice) == "an unknown line (env line 9)"
    prefixed = render_env(ISSUED, None, "DEV_")
    assert readback.foreign(prefixed, "DEV_") is None
    assert readback.foreign(prefixed) == "an unknown line (env line 4)"
    dotenv = render_dotenv(ISSUED, None)
    assert readback.foreign(dotenv) is None
    assert readback.foreign(dotenv + "LD_PRELOAD=/tmp/x.so\n") == "an unknown line (dotenv line 4)"


def test_foreign_json_and_kubeconfig_fields_are_found() -> None:
    from bootstrap.outputs.emit import render_json, render_kubeconfig

    document = render_json(ISSUED, None)
    assert readback.foreign(document) is None
    assert readback.foreign(document.replace('"cluster"', '"exec"')) == "an unknown JSON key 'exec'"
    assert readback.foreign(document.replace("bootstrap-token/v1", "v9")) == (
        "JSON without bootstrap-token's apiVersion"
    )
    config = render_kubeconfig(ISSUED)
    name = ISSUED.entry_name
    assert readback.foreign(config, context=name) is None
    loaded = yaml.safe_load(config)
    loaded["users"][0]["user"]["exec"] = {"command": "x"}
    assert readback.foreign(yaml.safe_dump(loaded), context=name) == (
        "a field bootstrap-token does not write (user 'exec')"
    )
    loaded = yaml.safe_load(config)
    loaded["clusters"][0]["cluster"]["certificate-authority"] = "/tmp/ca"
    assert readback.foreign(yaml.safe_dump(loaded), context=name) == (
        "a field bootstrap-token does not write (cluster 'certificate-authority')"
    )
    assert readback.foreign(config, context="other") == "no context 'other'"


def test_read_back_of_a_fifo_output_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "out.env"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="FIFO"):
        files.read_bytes(fifo, trusted_owner=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --- the same rules in-process (so that scripts/mutation sees them) ---------------------------


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("tokenFile", "/etc/t", "takes its token from another file"),
        ("client-certificate", "/etc/c", "takes its client certificate from another file"),
        ("client-key", "/etc/k", "takes its client key from another file"),
        ("exec", {"command": "x"}, "runs a credential plugin"),
        ("auth-provider", {"name": "oidc"}, "runs an auth provider"),
    ],
)
def test_parse_refuses_what_reaches_out_of_the_file(field: str, value: object, what: str) -> None:
    text = kubeconfig("https://a", {"token": TOKEN, field: value})
    with pytest.raises(UsageError) as caught:
        readback.parse(text, Path("/x"))
    assert str(caught.value) == (
        f"the user of context 'x' {what} (users[].user.{field}): only credentials written "
        "inside the file are used, and nothing it names is read or run"
    )


def test_parse_takes_the_inline_token_and_ca() -> None:
    pem = base64.b64encode(b"PEM").decode()
    text = kubeconfig("https://a", {"token": TOKEN}, {"certificate-authority-data": pem})
    creds = readback.parse(text, Path("/x"))
    assert (creds.server, creds.token, creds.ca_pem, creds.ca_file) == (
        "https://a", TOKEN, b"PEM", None,
    )  # fmt: skip


def test_read_file_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from bootstrap.outputs.check import read_file

    good = tmp_path / "c.env"
    good.write_text("TOKEN=x\n")
    assert read_file(str(good)) == ("TOKEN=x\n", tmp_path, str(good))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"it is a FIFO \(named pipe\), not a regular file$"):
        read_file(str(fifo))
    (tmp_path / "latin").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(UsageError, match=r"latin: not UTF-8 text$"):
        read_file(str(tmp_path / "latin"))

    class Stdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin(b"A=b\n"))
    assert read_file("-") == ("A=b\n", Path.cwd(), "stdin")
    monkeypatch.setattr(sys, "stdin", Stdin(b"x" * (files.MAX_INPUT_BYTES + 1)))
    with pytest.raises(UsageError, match="cannot read stdin: more than 16 MiB"):
        read_file("-")
    monkeypatch.setattr(sys, "stdin", Stdin(b"x" * files.MAX_INPUT_BYTES))
    assert len(read_file("-")[0]) == files.MAX_INPUT_BYTES


def test_own_ca_refusals_in_process(tmp_path: Path) -> None:
    from bootstrap.outputs.check import own_ca

    def creds(path: str) -> readback.FileCredentials:
        return readback.parse(f"APISERVER=https://a\nTOKEN=t0k3n\nCACERT={path}\n", tmp_path)

    other = tmp_path / "other"
    other.mkdir()
    (other / "p.ca.crt").write_bytes(b"PEM")
    with pytest.raises(UsageError, match="not one bootstrap-token wrote beside it"):
        own_ca(creds(str(other / "p.ca.crt")), tmp_path)
    # `..` back into the right directory is the same file: accepted.
    (tmp_path / "p.ca.crt").write_bytes(b"MINE")
    assert own_ca(creds("other/../p.ca.crt"), tmp_path).ca_pem == b"MINE"
    with pytest.raises(UsageError, match="not one bootstrap-token wrote beside it"):
        own_ca(creds("missing-dir/p.ca.crt"), tmp_path)
    os.chown(tmp_path / "p.ca.crt", OTHER_UID, OTHER_UID)
    with pytest.raises(UsageError, match=f"owned by uid {OTHER_UID}"):
        own_ca(creds("p.ca.crt"), tmp_path)
    (tmp_path / "l.ca.crt").symlink_to(other / "p.ca.crt")
    with pytest.raises(UsageError, match=r"l.ca.crt: it is a symlink, not a regular file$"):
        own_ca(creds("l.ca.crt"), tmp_path)
    assert own_ca(replace(creds("x"), ca_file=None), tmp_path).ca_pem is None


def test_limits_and_sizes_are_pinned() -> None:
    import errno

    assert (files.MAX_INPUT_BYTES, files.MAX_PEM_BYTES, files.MAX_TOKEN_BYTES) == (
        16777216, 4194304, 1048576,
    )  # fmt: skip
    assert files.MAX_OUTPUT_BYTES == 16777216
    sizes = [0, 1023, 1024, 1536, 2048, 512 * 1024, 1 << 20, (1 << 20) + 1024, 3 << 19, 3 << 20]
    assert [files._size(n) for n in sizes] == [
        "0 bytes", "1023 bytes", "1 KiB", "1536 bytes", "2 KiB", "512 KiB", "1 MiB",
        "1025 KiB", "1536 KiB", "3 MiB",
    ]  # fmt: skip
    from bootstrap import inputs

    assert inputs.input_reason(OSError(errno.ELOOP, "x")) == "it is a symlink"
    assert inputs.input_reason(OSError(errno.ENOENT, "x")) == "it does not exist"
    assert inputs.input_reason(OSError(errno.EACCES, "x")) == "permission denied"


def test_read_file_message_is_exact(tmp_path: Path) -> None:
    from bootstrap.outputs.check import read_file

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        read_file(str(fifo))
    assert str(caught.value) == f"cannot read {fifo}: it is a FIFO (named pipe), not a regular file"


def test_split_lines_and_detect() -> None:
    assert readback.split_lines("A=1") == ["A=1"]
    assert readback.split_lines("A=1\n") == ["A=1"]
    assert readback.split_lines("A=1\n\n") == ["A=1", ""]
    assert readback.split_lines("") == []
    assert readback.split_lines("a\u2028b\x1cc\rd\n") == ["a\u2028b\x1cc\rd"]
    assert readback.detect("_A=1\nAPISERVER=x\n") == "dotenv"
    assert readback.detect("  export _A='1'\n# c\nAPISERVER=x\n") == "env"


def test_foreign_kubeconfig_edge_cases() -> None:
    from bootstrap.outputs.emit import render_kubeconfig

    config = render_kubeconfig(ISSUED)
    assert readback.foreign(config) == "no context of bootstrap-token's"
    secret = "apiVersion: v1\nkind: Secret\nstringData: {value: x}\n"
    assert readback.foreign(secret) is None
    assert readback.foreign("- a\n- b\n", context="x") == "no context of bootstrap-token's"
    loaded = yaml.safe_load(config)
    loaded["contexts"][0]["context"]["extensions"] = []
    assert readback.foreign(yaml.safe_dump(loaded), context=ISSUED.entry_name) == (
        "a field bootstrap-token does not write (context 'extensions')"
    )
    loaded = yaml.safe_load(config)
    loaded["users"] = []
    assert readback.foreign(yaml.safe_dump(loaded), context=ISSUED.entry_name) == (
        f"no user for context {ISSUED.entry_name!r}"
    )
    assert readback.foreign("{not json", context=None) == "JSON that does not parse"
    assert readback.foreign("key: [unclosed\n", context="x") == "YAML that does not parse"


def test_foreign_accepts_every_variable_and_field_the_tool_writes() -> None:
    from bootstrap.outputs.emit import render_json, render_kubeconfig

    full = replace(
        ISSUED,
        ca_pem=b"PEM",
        expires_at="2030-01-01T00:00:00Z",
        tls_server_name="kubernetes",
        proxy_url="http://proxy:3128",
    )
    env = render_env(full, Path("/o/dev.ca.crt"))
    assert [line.split("=")[0] for line in env.splitlines()[3:]] == [
        "export APISERVER", "export TOKEN", "export CACERT", "export NAMESPACE",
        "export EXPIRES_AT", "export TLS_SERVER_NAME", "export CURL_CONNECT_TO",
        "export CURL_APISERVER", "export HTTPS_PROXY",
    ]  # fmt: skip
    assert readback.foreign(env) is None
    assert readback.foreign(render_dotenv(full, Path("/o/dev.ca.crt"))) is None
    assert readback.foreign(render_json(full, Path("/o/dev.ca.crt"))) is None
    assert readback.foreign(render_kubeconfig(full), context=full.entry_name) is None
    insecure = replace(full, insecure=True)
    assert readback.foreign(render_kubeconfig(insecure), context=full.entry_name) is None
