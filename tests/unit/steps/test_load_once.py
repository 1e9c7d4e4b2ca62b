"""A fleet asks for the kubeconfig once per job: it is parsed once per process while
its files are unchanged, and read again when one changes (a merge by an earlier job)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap import run
from bootstrap.kube import kubeconfig

CONFIG = """\
clusters:
- name: {name}
  cluster: {{server: "https://127.0.0.1:6443"}}
users:
- name: u
  user: {{token: abc}}
contexts:
- name: c
  context: {{cluster: {name}, user: u}}
"""


def test_parsed_once_while_unchanged_and_again_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text(CONFIG.format(name="one"))
    calls: list[str] = []
    real = kubeconfig.parse

    def counting(text: str, where: Path) -> object:
        calls.append(str(where))
        return real(text, where)

    monkeypatch.setattr(kubeconfig, "parse", counting)
    options = run.Options(cluster="one", kubeconfig=str(path))
    first = [run.load_kubeconfig(options, {}, tmp_path) for _ in range(20)]
    assert len(calls) == 1
    assert all(config is first[0] for config in first)
    assert list(first[0].clusters) == ["one"]

    path.write_text(CONFIG.format(name="second"))  # another size: another stamp
    changed = run.load_kubeconfig(options, {}, tmp_path)
    assert len(calls) == 2
    assert list(changed.clusters) == ["second"]
