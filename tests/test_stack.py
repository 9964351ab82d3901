import subprocess

import pytest

from genhelpers import stack

MIN = {"diffusers": "0.42.1", "transformers": "5.0"}


def test_outdated_compares_versions():
    have = {"diffusers": "0.35.2", "transformers": "5.24.0"}.get
    assert stack.outdated(MIN, have) == {"diffusers": "0.35.2"}
    assert stack.outdated(MIN, {"diffusers": "0.42.1", "transformers": "5.0.0"}.get) == {}
    assert stack.outdated(MIN, {"transformers": "4.57.1"}.get) == {"diffusers": None, "transformers": "4.57.1"}


def test_this_environment_is_supported():
    assert stack.outdated() == {}


def test_ensure_is_silent_when_nothing_is_old(capsys):
    stack.ensure(run=lambda *a, **k: pytest.fail("pip was called"))
    assert capsys.readouterr().out == ""


def test_ensure_upgrades_what_is_old(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(stack, "outdated", lambda minimum: {"diffusers": "0.30.0"})
    stack.ensure(run=lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    assert calls[0][-1] == "diffusers>=0.42.1" and calls[0][1:5] == ["-m", "pip", "install", "-q"]
    assert "upgraded diffusers>=0.42.1" in capsys.readouterr().out


def test_ensure_explains_when_pip_cannot(monkeypatch):
    monkeypatch.setattr(stack, "outdated", lambda minimum: {"transformers": "4.44.0"})
    failed = lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable")  # noqa: E731
    with pytest.raises(RuntimeError, match=r"transformers 4.44.0.*network is unreachable.*Internet.*transformers>=5.0"):
        stack.ensure(run=failed)
    with pytest.raises(RuntimeError, match="Run: .*pip install -U 'transformers>=5.0'"):
        stack.ensure(upgrade=False)
