"""Is the Python stack new enough? Used by every notebook's install cell, before torch/diffusers import.

Kaggle and Colab images ship their own torch/diffusers/transformers. We keep theirs when it is new enough and
upgrade only what is older than the supported minimum; silent when nothing needs doing.
"""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# diffusers 0.42 API (dtype=, VAE switches on the VAE); transformers 4.x conflicts with its hub version.
# The media packages are checked too: the notebooks install genhelpers' wheel without its dependencies, and a
# Kaggle image may lack trimesh (meshes) or imageio-ffmpeg (MP4).
MINIMUM = {"diffusers": "0.42.1", "transformers": "5.0", "huggingface-hub": "1.0", "accelerate": "1.0",
           "imageio": "2.31", "imageio-ffmpeg": "0.4.9", "trimesh": "4.0"}


TESTED_FILE = Path(__file__).resolve().parent / "tested-versions.txt"


def tested(path: str | Path = TESTED_FILE) -> dict[str, str]:
    """{package: version} the collection is tested with (``name==version`` lines)."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, v = line.split("==", 1)
            pins[name.strip()] = v.strip()
    return pins


def find_wheelhouse(root: str | Path | None = None) -> Path | None:
    """A ``wheelhouse/`` folder (with its tested-versions.txt) in an attached Kaggle dataset, if any."""
    from .weights import kaggle_input_root

    root = Path(root) if root else kaggle_input_root()
    if not root.is_dir():
        return None
    hits = sorted([*root.glob("*/wheelhouse/tested-versions.txt"), *root.glob("*/*/wheelhouse/tested-versions.txt")])
    return hits[0].parent if hits else None


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def install_tested(wheelhouse: Path, run=subprocess.run, installed=_installed) -> list[str]:
    """Install the tested versions from an attached wheelhouse, offline, where the image has others.
    Returns what it installed ([] when nothing differed); prints a warning and keeps the image's on failure."""
    pins = tested(wheelhouse / "tested-versions.txt")
    specs = [f"{n}=={v}" for n, v in pins.items() if installed(n) != v]
    if not specs:
        return []
    result = run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse), *specs],
                 capture_output=True, text=True)
    if result.returncode != 0:
        print(f"⚠ could not install the tested versions from {wheelhouse} "
              f"({(result.stderr or '').strip().splitlines()[-1:] or ['no message']}); keeping the image's")
        return []
    print(f"installed the tested versions from the attached wheelhouse: {', '.join(specs)}")
    return specs


def _parse(v: str):
    from packaging.version import Version

    return Version(v)


def outdated(minimum: dict[str, str] = MINIMUM, installed=None) -> dict[str, str | None]:
    """{package: installed version or None} for each package below its minimum."""
    def have(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    installed = installed or have
    out = {}
    for name, low in minimum.items():
        v = installed(name)
        if v is None or _parse(v) < _parse(low):
            out[name] = v
    return out


def requirement_specs(missing: dict[str, str | None], minimum: dict[str, str] = MINIMUM) -> list[str]:
    return [f"{name}>={minimum[name]}" for name in missing]


def ensure(upgrade: bool = True, minimum: dict[str, str] = MINIMUM, run=subprocess.run) -> None:
    """Upgrade packages older than ``minimum`` with pip (needs the internet on Kaggle), printing what it did;
    silent when all is new enough; raises RuntimeError explaining the fix when it cannot. When a Kaggle dataset
    built by ``genhelpers kaggle build`` is attached, the tested versions come from its wheelhouse first
    (offline), so a run with the internet off uses them rather than the image's."""
    wheelhouse = find_wheelhouse()
    if wheelhouse is not None:
        install_tested(wheelhouse, run=run)
    missing = outdated(minimum)
    if not missing:
        return
    specs = requirement_specs(missing, minimum)
    have = ", ".join(f"{n} {v or 'missing'}" for n, v in missing.items())
    how = f"{sys.executable} -m pip install -U " + " ".join(f"'{s}'" for s in specs)
    if not upgrade:
        raise RuntimeError(f"These packages are older than genhelpers supports: {have}. Run: {how}")
    loaded = [n for n in missing if n.replace("-", "_") in sys.modules]
    result = run([sys.executable, "-m", "pip", "install", "-q", "-U", *specs], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"These packages are older than genhelpers supports: {have}, and pip could not upgrade them "
            f"({(result.stderr or '').strip().splitlines()[-1:] or ['no message']}). On Kaggle turn the internet "
            f"on (Settings → Internet) or attach a dataset with the wheels, then run: {how}")
    print(f"upgraded {', '.join(specs)}" + (" — restart the kernel (Run → Restart) so the new versions load"
                                            if loaded else ""))
