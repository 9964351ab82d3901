"""Is the Python stack one that works? Used by every notebook's install cell, before torch/diffusers import.

Kaggle and Colab images ship their own torch/diffusers/transformers. Upgrading one library alone breaks the
others: on Kaggle's 2026 image, diffusers 0.42 pulls huggingface-hub 2.x and the image's transformers 5.0 then
refuses to import, while pip exits 0. So when anything is missing or too old, ``ensure()`` installs the whole
**tested set** together (diffusers, transformers, huggingface-hub, accelerate at the versions of
``tested-versions.txt``, with whatever they need, plus the media packages), never touching torch, and proves the
result by importing diffusers and transformers in a fresh process. Silent when nothing is needed.

Where a dataset built by ``genhelpers kaggle build`` is attached, the install comes from its ``wheelhouse/``
with ``pip --no-index`` (internet off works): the wheelhouse holds the tested libraries **and their dependency
closure as resolved against the image's package set** (``closure()``), for the image's Python and platform.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# diffusers 0.42 API (dtype=, VAE switches on the VAE); transformers 4.x conflicts with its hub version.
# The media packages are checked too: the notebooks install genhelpers' wheel without its dependencies, and a
# Kaggle image may lack trimesh (meshes) or imageio-ffmpeg (MP4).
MINIMUM = {"diffusers": "0.42.1", "transformers": "5.0", "huggingface-hub": "1.0", "accelerate": "1.0",
           "imageio": "2.31", "imageio-ffmpeg": "0.4.9", "trimesh": "4.0"}
# never installed, upgraded or downloaded by us: the image's GPU build of torch is the one that works there
NEVER = ("torch", "torchvision", "torchaudio", "triton")
NEVER_PREFIX = ("nvidia-",)
# Kaggle's (and Colab's) platform for the wheelhouse: CPython 3.12, manylinux x86_64
KAGGLE_TARGET = {"python_version": "3.12", "abi": "cp312",
                 "platforms": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                               "manylinux_2_5_x86_64", "manylinux1_x86_64", "linux_x86_64"]}
IMPORT_CHECK = ("import diffusers, transformers, huggingface_hub, accelerate; "
                "from transformers import CLIPTextModel; from diffusers import DiffusionPipeline; "
                "print(diffusers.__version__, transformers.__version__, huggingface_hub.__version__)")

TESTED_FILE = Path(__file__).resolve().parent.parent / "tested-versions.txt"
IMAGE_FILE = Path(__file__).resolve().parent.parent / "kaggle-image-packages.txt"


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def never(name: str) -> bool:
    name = canonical(name)
    return name in NEVER or name.startswith(NEVER_PREFIX)


def tested(path: str | Path = TESTED_FILE) -> dict[str, str]:
    """{package: version} the collection is tested with (``name==version`` lines)."""
    return read_pins(path)


def read_pins(path: str | Path) -> dict[str, str]:
    """``name==version`` lines of a file (pip-freeze form; comments and other lines ignored)."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line and " @ " not in line:
            name, v = line.split("==", 1)
            pins[canonical(name.strip())] = v.strip()
    return pins


def image_packages(path: str | Path = IMAGE_FILE) -> dict[str, str]:
    """Kaggle's image package set as recorded in the repository (source and date in the file's header)."""
    return read_pins(path)


def find_wheelhouse(root: str | Path | None = None) -> Path | None:
    """The ``wheelhouse/`` of the genhelpers dataset the user attached and named (``folders.named_dataset``:
    GENHELPERS_DATASET, by default the one dataset called genhelpers-wheel), in either mount layout; None when
    there is none. Another dataset's wheelhouse is never used."""
    from .folders import named_dataset

    dataset = named_dataset(Path(root) if root else None)
    return dataset / "wheelhouse" if dataset is not None and (dataset / "wheelhouse").is_dir() else None


def verify_wheelhouse(house: Path) -> int:
    """Check every wheel in ``house`` against the SHA-256 its dataset recorded (UntrustedInput otherwise), before
    pip sees any of them; returns how many were checked."""
    from .folders import verified

    return len(verified(house.parent, sorted(house.glob("*.whl"))))


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _parse(v: str):
    from packaging.version import Version

    return Version(v)


def outdated(minimum: dict[str, str] = MINIMUM, installed=None) -> dict[str, str | None]:
    """{package: installed version or None} for each package below its minimum."""
    installed = installed or _installed
    out = {}
    for name, low in minimum.items():
        v = installed(name)
        if v is None or _parse(v) < _parse(low):
            out[name] = v
    return out


def wanted(wheelhouse: Path | None = None, installed=_installed, minimum: dict[str, str] = MINIMUM) -> list[str]:
    """What to install, as pip requirements ([] when nothing is needed): the whole tested set together as soon
    as anything is missing or too old (or, with a wheelhouse attached, when the tested versions differ from
    the image's), plus the other packages below their minimum. The pins are always the installed genhelpers'
    own (tested-versions.txt), never an attached dataset's."""
    pins = tested()
    below = outdated(minimum, installed)
    differs = wheelhouse is not None and any(installed(n) != v for n, v in pins.items())
    if not below and not differs:
        return []
    return [f"{n}=={v}" for n, v in pins.items()] + [f"{n}>={minimum[n]}" for n in below if canonical(n) not in pins]


def keep_torch(installed=_installed) -> list[str]:
    """Constraints that hold the image's torch (and friends) where they are."""
    return [f"{n}=={v}" for n in NEVER if (v := installed(n))]


def verify(python: str = sys.executable) -> str | None:
    """Import diffusers and transformers in a fresh process (the running one may hold old modules); None when
    they import, else the last line of the error."""
    result = subprocess.run([python, "-c", IMPORT_CHECK], capture_output=True, text=True)
    if result.returncode == 0:
        return None
    return ((result.stderr or result.stdout).strip().splitlines() or ["no message"])[-1]


def _last_line(result) -> str:
    return ((result.stderr or result.stdout or "").strip().splitlines() or ["no message"])[-1]


def ensure(upgrade: bool = True, minimum: dict[str, str] = MINIMUM, run=subprocess.run, installed=_installed,
           check=verify) -> list[str]:
    """Make the stack one that works (see the module docstring). Returns the requirements it installed ([]:
    nothing was needed, and nothing was printed). Raises RuntimeError saying exactly what to run when it cannot."""
    wheelhouse = find_wheelhouse()
    specs = wanted(wheelhouse, installed, minimum)
    if not specs:
        return []
    checked = verify_wheelhouse(wheelhouse) if wheelhouse else 0
    if installed("torch") is None:
        raise RuntimeError("torch is not installed: install the build for your machine first "
                           "(https://pytorch.org/get-started/locally/), then re-run this cell")
    where = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    how = " ".join([sys.executable, "-m", "pip", "install", *where, *(f"'{s}'" for s in specs)])
    if not upgrade:
        raise RuntimeError(f"The Python stack needs the tested versions ({', '.join(specs)}). Run: {how}")
    names = [s.split("=")[0].split(">")[0] for s in specs]
    before = {n: installed(n) for n in names}
    loaded = [n for n in names if n.replace("-", "_") in sys.modules]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(keep_torch(installed)) + "\n")
    try:
        result = run([sys.executable, "-m", "pip", "install", "-q", *where, "-c", f.name, *specs],
                     capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if result.returncode != 0:
        fix = ("the attached wheelhouse does not hold what this image needs: rebuild the dataset with "
               "`genhelpers kaggle build` for this image, or turn the internet on" if wheelhouse else
               "on Kaggle turn the internet on (Settings → Internet), or attach the dataset made by "
               "`genhelpers kaggle build` (it carries the wheels)")
        raise RuntimeError(f"pip could not install the tested versions ({_last_line(result)}): {fix}; then run: {how}")
    problem = check()
    if problem:
        raise RuntimeError(f"the tested versions were installed but diffusers/transformers do not import ({problem}). "
                           f"Run: {how} --force-reinstall, then restart the kernel")
    changed = [f"{n} {before[n] or 'missing'} → {installed(n)}" for n in names if before[n] != installed(n)]
    print("installed the tested versions"
          + (f" from the attached wheelhouse {wheelhouse} ({checked} wheels, SHA-256 as recorded)" if wheelhouse
             else " from the package index") + ": "
          + (", ".join(changed) or "no change")
          + (" — restart the kernel (Run → Restart) so the new versions load" if loaded else ""))
    return specs


# --------------------------------------------------------------------------------------- the wheelhouse
def _target_args(target: dict | None) -> list[str]:
    if not target:
        return []
    args = ["--only-binary=:all:", "--python-version", target["python_version"], "--implementation", "cp"]
    if target.get("abi"):
        args += ["--abi", target["abi"], "--abi", "abi3", "--abi", "none"]
    for p in target["platforms"]:
        args += ["--platform", p]
    return args


def _marker_env(target: dict | None) -> dict:
    import platform

    py = target["python_version"] if target else f"{sys.version_info.major}.{sys.version_info.minor}"
    return {"python_version": py, "python_full_version": py + ".0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64" if target else platform.machine(),
            "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "extra": ""}


def _pick(specs: list[str], target: dict | None, run) -> dict[str, tuple[str, list[str]]]:
    """pip's choice for each requirement alone (no dependencies): {name: (version, requires_dist)}."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--no-deps", "--ignore-installed",
               "--report", str(report), *_target_args(target), *(["--target", str(Path(tmp) / "t")] if target else []),
               *specs]
        result = run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pip could not resolve {' '.join(specs)}: {_last_line(result)}")
        items = json.loads(report.read_text())["install"]
    return {canonical(i["metadata"]["name"]): (i["metadata"]["version"], i["metadata"].get("requires_dist") or [])
            for i in items}


def closure(specs: list[str], image: dict[str, str], target: dict | None = KAGGLE_TARGET,
            run=subprocess.run) -> dict[str, str]:
    """The packages to ship so that ``specs`` install on a machine holding ``image`` ({name: version}):
    every requirement in the dependency closure that the image does not already satisfy, at the version pip
    picks for ``target`` (None: this interpreter). The image's version is kept wherever it satisfies every
    requirement on it; torch, its CUDA packages and triton are never included."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    env = _marker_env(target)
    need: dict[str, SpecifierSet] = {}

    def add(text: str) -> None:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            return
        name = canonical(req.name)
        need[name] = need.get(name, SpecifierSet()) & req.specifier

    for s in specs:
        add(s)
    chosen: dict[str, str] = {}
    for _ in range(20):  # rounds of the walk; a closure of ~30 packages settles in 4-6
        todo = [n for n, spec in need.items() if not never(n)
                and not (n in image and spec.contains(image[n], prereleases=True))
                and not (n in chosen and spec.contains(chosen[n], prereleases=True))]
        if not todo:
            return dict(sorted(chosen.items()))
        for name, (v, requires) in _pick([f"{n}{need[n]}" for n in todo], target, run).items():
            chosen[name] = v
            for r in requires:
                add(r)
    raise RuntimeError(f"the dependency walk of {specs} did not settle")


# packages a notebook installs itself, without their dependencies (genhelpers.models.dvae: DALL·E's package declares
# torchvision, mypy and pytest, none of which its dVAE classes use); the wheelhouse carries them for offline runs
NO_DEPS = {"DALL-E": "0.1"}


# ---- packages one notebook needs that Kaggle's image lacks, installed by that notebook on first use (with their
# dependencies: never torch), not by every install cell; the wheelhouse carries them and their closure for offline runs.
# gpt4motion: MuJoCo for the physics (cp311 and cp312 manylinux wheels; pybullet has none for 3.12; 4.x is a
# meta-wheel that pulls mujoco-core and mujoco-studio instead)
NOTEBOOK_PACKAGES = {"mujoco": "3.3.7"}


def ensure_package(name: str, module: str | None = None, run=subprocess.run) -> None:
    """Import-ready ``name`` (one of NOTEBOOK_PACKAGES): installed at its pinned version if it is missing, from an
    attached genhelpers dataset's wheelhouse when there is one (internet off works), else from the index."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(module or name) is not None:
        return
    spec = f"{name}=={NOTEBOOK_PACKAGES[name]}"
    house = find_wheelhouse()
    where = ["--no-index", "--find-links", str(house)] if house and any(house.glob(f"{name}-*.whl")) else []
    print(f"installing {spec}" + (" from the attached wheelhouse" if where else ""))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(keep_torch()) + "\n")
    try:
        result = run([sys.executable, "-m", "pip", "install", "-q", *where, "-c", f.name, spec],
                     capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install {spec} ({_last_line(result)}): on Kaggle turn the internet on, or "
                           f"attach the dataset made by `genhelpers kaggle build` (its wheelhouse carries it)")
    importlib.invalidate_caches()


def build_wheelhouse(folder: Path, image: dict[str, str] | None = None, target: dict | None = KAGGLE_TARGET,
                     run=subprocess.run) -> dict[str, str]:
    """Download into ``folder`` the wheels of the tested set, the media packages, the NOTEBOOK_PACKAGES and their
    closure against ``image`` (default: Kaggle's recorded image) for ``target``; writes tested-versions.txt and
    wheelhouse.json (what is in it and why). Returns {name: version} downloaded."""
    image = image_packages() if image is None else image
    specs = [f"{n}=={v}" for n, v in tested().items()] + [f"{n}>={MINIMUM[n]}" for n in ("imageio", "imageio-ffmpeg",
                                                                                          "trimesh")]
    specs += [f"{n}=={v}" for n, v in NOTEBOOK_PACKAGES.items()]  # gpt4motion's mujoco
    packages = closure(specs, image, target, run)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *_target_args(target), "-d", str(folder),
           *(f"{n}=={v}" for n, v in packages.items())]
    result = run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip download failed: {_last_line(result)}")
    alone = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *_target_args(target), "-d", str(folder),
             *(f"{n}=={v}" for n, v in NO_DEPS.items())]
    result = run(alone, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip download failed: {_last_line(result)}")
    (folder / "tested-versions.txt").write_text(TESTED_FILE.read_text())
    (folder / "wheelhouse.json").write_text(json.dumps(
        {"target": target or "this interpreter", "requested": specs, "packages": packages, "no_deps": NO_DEPS,
         "note": "every other requirement is satisfied by the image's own packages; no_deps: installed without "
                 "their declared dependencies by the notebook that uses them"}, indent=1) + "\n")
    return packages
