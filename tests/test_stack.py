"""ensure_stack(): the whole tested set together, never torch, proven by an import in a fresh process.
(The same install cell runs for real in a Kaggle-image environment in tests/test_rehearsal.py.)"""
import subprocess

import pytest

from genhelpers.platform import stack

MIN = {"diffusers": "0.42.1", "transformers": "5.0"}
KAGGLE_2026 = {"diffusers": "0.37.1", "transformers": "5.0.0", "huggingface-hub": "1.16.1", "accelerate": "1.13.0",
               "imageio": "2.37.3", "imageio-ffmpeg": "0.6.0", "torch": "2.11.0+cu128"}  # no trimesh


def ok(calls):
    return lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", "")


def test_outdated_compares_versions():
    have = {"diffusers": "0.35.2", "transformers": "5.24.0"}.get
    assert stack.outdated(MIN, have) == {"diffusers": "0.35.2"}
    assert stack.outdated(MIN, {"diffusers": "0.42.1", "transformers": "5.0.0"}.get) == {}
    assert stack.outdated(MIN, {"transformers": "4.57.1"}.get) == {"diffusers": None, "transformers": "4.57.1"}


def test_this_environment_is_supported():
    assert stack.outdated() == {}


def test_ensure_is_silent_when_nothing_is_old(capsys):
    assert stack.ensure(run=lambda *a, **k: pytest.fail("pip was called")) == []
    assert capsys.readouterr().out == ""


def test_one_old_library_brings_the_whole_tested_set_and_keeps_torch(capsys):
    """Kaggle's image: only diffusers is too old, but upgrading it alone pulls huggingface-hub 2.x and breaks the
    image's transformers. The tested four go together (plus trimesh, missing), with torch held in place."""
    calls, image = [], dict(KAGGLE_2026)
    after = {**image, **stack.tested(), "trimesh": "4.6.0"}
    state = {"done": False}

    def run(cmd, **k):
        calls.append(cmd)
        state["constraints"] = open(cmd[cmd.index("-c") + 1]).read()
        state["done"] = True
        return subprocess.CompletedProcess(cmd, 0, "", "")

    installed = lambda n: (after if state["done"] else image).get(n)  # noqa: E731
    specs = stack.ensure(run=run, installed=installed, check=lambda: None)
    assert specs == [f"{n}=={v}" for n, v in stack.tested().items()] + ["trimesh>=4.0"]
    assert calls[0][1:5] == ["-m", "pip", "install", "-q"] and "--no-index" not in calls[0]
    assert state["constraints"].split() == ["torch==2.11.0+cu128"]
    out = capsys.readouterr().out
    assert "diffusers 0.37.1 → 0.42.1" in out and "transformers 5.0.0 → 5.24.0" in out and "trimesh missing" in out
    import sys

    loaded = any(m in sys.modules for m in ("diffusers", "transformers", "huggingface_hub", "accelerate", "trimesh"))
    assert ("restart the kernel" in out) == loaded  # the note only when an old version is already imported


def test_a_stack_that_does_not_import_is_an_error_that_says_what_to_run():
    image = dict(KAGGLE_2026)
    with pytest.raises(RuntimeError, match=r"do not import \(ImportError: huggingface-hub>=1.3.0,<2.0 is required.*"
                                           r"Run: .*pip install.*'diffusers==0.42.1'.*--force-reinstall"):
        stack.ensure(run=ok([]), installed=image.get,
                     check=lambda: "ImportError: huggingface-hub>=1.3.0,<2.0 is required")


def test_pip_failure_is_explained():
    failed = lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable")  # noqa: E731
    with pytest.raises(RuntimeError,
                       match=r"network is unreachable.*internet on.*genhelpers kaggle build.*run: .*pip install"):
        stack.ensure(run=failed, installed=dict(KAGGLE_2026).get, check=lambda: None)
    with pytest.raises(RuntimeError, match=r"needs the tested versions.*Run: .*pip install"):
        stack.ensure(upgrade=False, installed=dict(KAGGLE_2026).get)


def test_tested_versions_are_installed_here():
    """make setup installs the tested versions; the Kaggle wheelhouse carries the same."""
    from importlib.metadata import version

    pins = stack.tested()
    assert set(pins) == {"diffusers", "transformers", "huggingface-hub", "accelerate"}
    assert all(version(name) == v for name, v in pins.items())


@pytest.mark.parametrize("layout", ["genhelpers-wheel", "datasets/alice/genhelpers-wheel"])
def test_an_attached_wheelhouse_installs_offline_in_both_mount_layouts(tmp_path, monkeypatch, capsys, layout):
    from genhelpers.platform.folders import record_hashes

    wh = tmp_path / "input" / layout / "wheelhouse"
    wh.mkdir(parents=True)
    (wh / "tested-versions.txt").write_text(stack.TESTED_FILE.read_text())
    (wh / "diffusers-0.42.1-py3-none-any.whl").write_bytes(b"a wheel")
    record_hashes(wh.parent)  # as `genhelpers kaggle build` records every file of the dataset
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(tmp_path / "input"))
    assert stack.find_wheelhouse() == wh
    calls = []
    image = {**stack.tested(), "diffusers": "0.42.0", "trimesh": "4.0", "imageio": "2.37", "imageio-ffmpeg": "0.6",
             "torch": "2.11.0"}
    stack.ensure(run=ok(calls), installed=image.get, check=lambda: None)
    assert calls[0][5:8] == ["--no-index", "--find-links", str(wh)]
    assert "from the attached wheelhouse" in capsys.readouterr().out
    # the tested versions already there: nothing to do, nothing printed
    assert stack.ensure(run=ok([]), installed={**image, **stack.tested()}.get) == []


def test_closure_keeps_what_the_image_satisfies_and_never_takes_torch():
    """The walk asks pip (here a stand-in index) for each requirement alone and keeps the image's version of a
    dependency wherever it satisfies every requirement on it."""
    index = {"diffusers": ("0.42.1", ["huggingface-hub>=1.0", "safetensors>=0.8", "numpy", "Pillow"]),
             "transformers": ("5.24.0", ["huggingface-hub<3,>=2.0", "tokenizers>=0.23.1", "safetensors>=0.4",
                                         "numpy>=1.17", "sentencepiece; extra == 'sentencepiece'"]),
             "accelerate": ("1.15.0", ["torch>=2.0", "numpy<3,>=1.17", "psutil"]),
             "huggingface-hub": ("2.4.0", ["hf-xet>=1.5; platform_machine == 'x86_64'", "httpx>=0.23",
                                           "pywin32; sys_platform == 'win32'"]),
             "safetensors": ("0.8.0", []), "tokenizers": ("0.23.3", ["huggingface-hub<3,>=0.16"]),
             "hf-xet": ("1.8.0", [])}
    asked = []

    def pip(cmd, **k):
        import json

        specs = [c for c in cmd if c[0].isalpha() and c not in ("install",) and "=" not in c[:2]
                 and not c.startswith(("manylinux", "linux", "cp3", "abi3", "none"))]
        specs = [c for c in specs if any(c.startswith(n) for n in index)]
        asked.append(specs)
        names = [next(n for n in index if s.startswith(n)) for s in specs]
        items = [{"metadata": {"name": n, "version": index[n][0], "requires_dist": index[n][1]}} for n in names]
        open(cmd[cmd.index("--report") + 1], "w").write(json.dumps({"install": items}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    image = {"diffusers": "0.37.1", "transformers": "5.0.0", "huggingface-hub": "1.16.1", "safetensors": "0.7.0",
             "tokenizers": "0.22.2", "numpy": "2.0.2", "pillow": "11.3.0", "psutil": "5.9.5", "httpx": "0.28.1",
             "hf-xet": "1.5.0", "torch": "2.11.0+cu128"}
    got = stack.closure(["diffusers==0.42.1", "transformers==5.24.0", "accelerate==1.15.0"], image, run=pip)
    assert got == {"accelerate": "1.15.0", "diffusers": "0.42.1", "huggingface-hub": "2.4.0", "safetensors": "0.8.0",
                   "tokenizers": "0.23.3", "transformers": "5.24.0"}  # hf-xet 1.5, httpx, numpy… are the image's
    assert not any("torch" in s for specs in asked for s in specs)


# ---- gpt4motion: a package one notebook needs (mujoco) is installed by that notebook, pinned, torch held in place
def test_a_notebook_package_installs_pinned_from_the_wheelhouse_only_when_missing(tmp_path, monkeypatch, capsys):
    wh = tmp_path / "input" / "genhelpers-wheel" / "wheelhouse"
    wh.mkdir(parents=True)
    (wh / "tested-versions.txt").write_text(stack.TESTED_FILE.read_text())
    (wh / "mujoco-3.3.7-cp312-cp312-manylinux_2_28_x86_64.whl").write_text("")
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(tmp_path / "input"))
    calls = []
    stack.ensure_package("json", run=ok(calls))  # present: nothing to do
    assert calls == []
    stack.ensure_package("mujoco", module="no_such_module_here", run=ok(calls))
    cmd = calls[0]
    assert cmd[-1] == "mujoco==3.3.7" and cmd[5:8] == ["--no-index", "--find-links", str(wh)]
    assert "from the attached wheelhouse" in capsys.readouterr().out
    failed = lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, "", "ERROR: no matching distribution")  # noqa: E731
    with pytest.raises(RuntimeError, match="could not install mujoco==3.3.7.*genhelpers kaggle build"):
        stack.ensure_package("mujoco", module="no_such_module_here", run=failed)
