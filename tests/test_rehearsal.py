"""Kaggle as it is today, rehearsed: the unchanged notebooks' install cell in an environment with Kaggle's
package set (tests/kaggle_image.py), online and with only the wheelhouse, in both mount layouts; then the
notebooks themselves in that environment. And Colab's route.

These need the package index once to build the cached image environment and the wheelhouse (CI reaches it);
the offline run then reaches no index at all.
"""
import json
import shutil
import subprocess

import nbformat
import pytest
import yaml

from genhelpers.platform import stack
from genhelpers.runs import run_notebook

from . import kaggle_image
from .conftest import NOTEBOOKS

pytestmark = pytest.mark.rehearsal
PROFILES = yaml.safe_load((NOTEBOOKS / "profiles.yaml").read_text())
WATCHED = ["diffusers", "transformers", "huggingface-hub", "accelerate", "tokenizers", "safetensors", "trimesh",
           "torch"]


@pytest.fixture(scope="module")
def image_env():
    return kaggle_image.base_env()


def test_the_image_environment_has_the_image_versions(image_env):
    """The starting point is Kaggle's, not ours: diffusers 0.37.1 (older than we support), transformers 5.0.0,
    huggingface-hub 1.16.1, no trimesh."""
    got = kaggle_image.versions(image_env / "bin" / "python", WATCHED)
    image = stack.image_packages()
    assert got["diffusers"] == image["diffusers"] == "0.37.1"
    assert got["transformers"] == image["transformers"] and got["huggingface-hub"] == image["huggingface-hub"]
    assert got["trimesh"] is None and got["torch"].startswith("2.13.0")  # the CPU stand-in for 2.11.0+cu128


def run_in_image(tmp_path, monkeypatch, name, mount, env_vars=None):
    """Run notebook ``name`` (smoke profile) as Kaggle would: from a folder outside any checkout, in a copy of
    the image environment, the inputs mounted at ``mount`` (GENHELPERS_KAGGLE_INPUT)."""
    env = kaggle_image.work_env(tmp_path / "env")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(mount))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("GENHELPERS_CACHE", str(tmp_path / "twins"))
    for k, v in (env_vars or {}).items():
        monkeypatch.setenv(k, v)
    kernel = kaggle_image.kernelspec(env, tmp_path / "jupyter")
    work = tmp_path / "kaggle-working"
    work.mkdir()
    shutil.copy(NOTEBOOKS / f"{name}.ipynb", work / f"{name}.ipynb")
    result = run_notebook(work / f"{name}.ipynb", PROFILES[name]["smoke"], tmp_path / "out", timeout=600,
                          kernel=kernel)
    executed = nbformat.read(tmp_path / "out" / f"{name}.ipynb", as_version=4)
    install_output = "".join(o.get("text", "") for o in executed.cells[1].outputs)
    return env, result, install_output


def test_online_old_layout_the_install_cell_then_sdxl(tmp_path, monkeypatch):
    """Internet on, the genhelpers wheel attached in the older layout (/kaggle/input/<slug>/): the install cell
    installs the tested set together from the index, the stack imports, and the SDXL notebook runs."""
    mount = tmp_path / "input"
    kaggle_image.genhelpers_wheel(mount / "genhelpers-wheel")
    env, result, said = run_in_image(tmp_path, monkeypatch, "sdxl", mount)
    assert result["status"] == "passed", result.get("error")
    assert f"genhelpers installed from {mount / 'genhelpers-wheel'}" in said  # the one line: what, from where
    assert "installed the tested versions from the package index: diffusers 0.37.1 → 0.42.1" in said
    got = kaggle_image.versions(env / "bin" / "python", WATCHED)
    assert {n: got[n] for n in stack.tested()} == stack.tested()
    assert got["torch"].startswith("2.13.0") and got["trimesh"]  # torch untouched; trimesh added
    assert stack.verify(str(env / "bin" / "python")) is None
    assert result["outputs"]


def test_offline_new_layout_only_the_wheelhouse_then_svd_and_dalle_tokens(tmp_path, monkeypatch):
    """Internet off (pip reaches no index), the dataset mounted in today's layout
    (/kaggle/input/datasets/<owner>/<slug>/) with the genhelpers wheel and the wheelhouse: the tested set and
    what it needs install from the wheelhouse alone, then the SVD notebook runs; then the dVAE notebook, whose
    package comes from the wheelhouse too, without its declared dependencies."""
    from genhelpers.platform.folders import record_hashes

    ds = tmp_path / "input" / "datasets" / "alice" / "genhelpers-wheel"
    kaggle_image.genhelpers_wheel(ds)
    shutil.copytree(kaggle_image.wheelhouse(), ds / "wheelhouse")
    record_hashes(ds)  # as `genhelpers kaggle build` does: every file of the dataset, wheelhouse included
    env, result, said = run_in_image(tmp_path, monkeypatch, "svd", tmp_path / "input", kaggle_image.offline_pip())
    assert result["status"] == "passed", result.get("error")
    assert "from the attached wheelhouse" in said and "transformers 5.0.0 → 5.24.0" in said
    got = kaggle_image.versions(env / "bin" / "python", WATCHED)
    assert {n: got[n] for n in stack.tested()} == stack.tested() and got["torch"].startswith("2.13.0")
    shipped = json.loads((ds / "wheelhouse" / "wheelhouse.json").read_text())["packages"]
    assert "torch" not in shipped and not any(n.startswith("nvidia") for n in shipped)
    assert "trimesh" in shipped and "numpy" not in shipped  # the image's numpy satisfies everything
    # then, in the same environment, DALL·E's dVAE notebook: its package comes from the wheelhouse without its
    # declared dependencies (torchvision, mypy, pytest)
    work = tmp_path / "kaggle-working"
    shutil.copy(NOTEBOOKS / "dalle_tokens.ipynb", work / "dalle_tokens.ipynb")
    dalle = run_notebook(work / "dalle_tokens.ipynb", PROFILES["dalle_tokens"]["smoke"], tmp_path / "out-dalle",
                         timeout=600, kernel=kaggle_image.kernelspec(env, tmp_path / "jupyter"))
    assert dalle["status"] == "passed", dalle.get("error")
    assert kaggle_image.versions(env / "bin" / "python", ["dall-e", "mypy", "pytest"]) == {
        "dall-e": "0.1", "mypy": None, "pytest": None}


def test_colab_route_installs_from_genhelpers_source(tmp_path, monkeypatch):
    """Colab: no /kaggle/input; the install cell takes GENHELPERS_SOURCE (here the wheel's path; the
    repository's git URL works the same way) and then brings the stack up to the tested set."""
    env = kaggle_image.work_env(tmp_path / "env")
    wheel = kaggle_image.genhelpers_wheel(tmp_path / "dist")
    cell = (NOTEBOOKS / "install_cell.py").read_text()
    work = tmp_path / "content"
    work.mkdir()
    (work / "cell.py").write_text(cell)
    import os

    vars_ = {**os.environ, "COLAB_RELEASE_TAG": "release-colab-20260514", "GENHELPERS_SOURCE": str(wheel),
             "GENHELPERS_KAGGLE_INPUT": str(tmp_path / "absent")}
    vars_.pop("KAGGLE_KERNEL_RUN_TYPE", None)
    r = subprocess.run([str(env / "bin" / "python"), "cell.py"], cwd=work, env=vars_, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "installed the tested versions" in r.stdout
    got = kaggle_image.versions(env / "bin" / "python", ["genhelpers", *stack.tested()])
    assert got["genhelpers"] and {n: got[n] for n in stack.tested()} == stack.tested()


def test_without_any_source_the_install_cell_says_where_to_get_genhelpers(tmp_path, image_env):
    import os

    (tmp_path / "cell.py").write_text((NOTEBOOKS / "install_cell.py").read_text())
    vars_ = {**os.environ, "GENHELPERS_KAGGLE_INPUT": str(tmp_path / "absent")}
    vars_.pop("GENHELPERS_SOURCE", None)
    r = subprocess.run([str(image_env / "bin" / "python"), "cell.py"], cwd=tmp_path, env=vars_, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "Add Input" in r.stderr and "GENHELPERS_SOURCE" in r.stderr and "/content" in r.stderr
