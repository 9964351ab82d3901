"""Is the Python stack new enough? Used by every notebook's install cell, before torch/diffusers import.

Kaggle and Colab images ship their own torch/diffusers/transformers. We keep theirs when it is new enough and
upgrade only what is older than the supported minimum; silent when nothing needs doing.
"""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

# diffusers 0.42 API (dtype=, VAE switches on the VAE); transformers 4.x conflicts with its hub version.
# The media packages are checked too: the notebooks install genhelpers' wheel without its dependencies, and a
# Kaggle image may lack trimesh (meshes) or imageio-ffmpeg (MP4).
MINIMUM = {"diffusers": "0.42.1", "transformers": "5.0", "huggingface-hub": "1.0", "accelerate": "1.0",
           "imageio": "2.31", "imageio-ffmpeg": "0.4.9", "trimesh": "4.0"}


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
    silent when all is new enough; raises RuntimeError explaining the fix when it cannot."""
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
