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


def test_tested_versions_are_installed_here():
    """make setup installs the tested versions; the Kaggle wheelhouse carries the same."""
    from importlib.metadata import version

    pins = stack.tested()
    assert set(pins) == {"diffusers", "transformers", "huggingface-hub", "accelerate"}
    assert all(version(name) == v for name, v in pins.items())


def test_an_attached_wheelhouse_brings_the_tested_versions(tmp_path, monkeypatch, capsys):
    wh = tmp_path / "input" / "genhelpers-wheel" / "wheelhouse"
    wh.mkdir(parents=True)
    (wh / "tested-versions.txt").write_text("diffusers==0.42.1\ntransformers==5.24.0\n")
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(tmp_path / "input"))
    assert stack.find_wheelhouse() == wh
    calls = []
    ok = lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", "")  # noqa: E731
    image = {"diffusers": "0.36.0", "transformers": "5.24.0"}.get
    assert stack.install_tested(wh, run=ok, installed=image) == ["diffusers==0.42.1"]
    assert calls[0][3:] == ["install", "-q", "--no-index", "--find-links", str(wh), "diffusers==0.42.1"]
    assert "tested versions from the attached wheelhouse: diffusers==0.42.1" in capsys.readouterr().out
    assert stack.install_tested(wh, run=ok, installed={"diffusers": "0.42.1", "transformers": "5.24.0"}.get) == []
    bad = lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")  # noqa: E731
    assert stack.install_tested(wh, run=bad, installed=image) == []
    assert "keeping the image's" in capsys.readouterr().out
