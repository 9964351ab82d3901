"""Every test runs offline, with its own genhelpers cache and Hugging Face cache (set before any library
reads them), and with /kaggle/input replaced by an empty folder."""
import os
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="genhelpers-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_ROOT / "hf")
os.environ["HF_HUB_CACHE"] = str(_ROOT / "hf" / "hub")
os.environ["GENHELPERS_CACHE"] = str(_ROOT / "cache")
# twins are kept between sessions, each in a folder named after the fingerprint of the code and libraries that
# built it (twins/registry.fingerprint): a rebuilt twin is never stale, and an unchanged one is not rebuilt
os.environ.setdefault("GENHELPERS_TWIN_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "twins"))
os.environ["GENHELPERS_KAGGLE_INPUT"] = str(_ROOT / "kaggle-input-absent")
for var in ("KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG", "COLAB_GPU"):
    os.environ.pop(var, None)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
REFERENCE = Path(__file__).resolve().parent / "reference"  # published layouts and numbers (data only)


@pytest.fixture(scope="session")
def twins():
    """The SDXL twins, built once into the session cache: {key: folder}."""
    from genhelpers.twins import registry

    return {key: registry.build(key) for key in registry.BUILDERS}


@pytest.fixture
def cpu_runtime():
    from genhelpers.platform.runtime import detect

    return detect(threads=2)


@pytest.fixture
def kaggle_input(tmp_path, monkeypatch):
    root = tmp_path / "kaggle-input"
    root.mkdir()
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(root))
    return root
