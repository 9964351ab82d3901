"""A stand-in for Kaggle's notebook image, for the rehearsal tests (tests/test_rehearsal.py).

An environment built from the image's recorded package set (``genhelpers/kaggle-image-packages.txt``: the
versions of diffusers 0.37.1, transformers 5.0.0, huggingface-hub 1.16.1, safetensors 0.7.0, tokenizers
0.22.2, accelerate 1.13.0, numpy, pillow, imageio(-ffmpeg), ipykernel… as Kaggle has them; no trimesh).
Differences from the real image, on purpose: this machine's Python (3.11, not 3.12) and the CPU build of torch
2.13.0 (the image has 2.11.0+cu128, which cannot be installed here); only the packages the notebooks and their
libraries touch are installed, not all ~730.

The base environment is built once and cached under ``.cache/rehearsal/<key>/`` (key: the image list, the
tested versions, this Python); each rehearsal works in a hard-linked copy, so the base stays as the image is.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from genhelpers.platform import stack

REPO = Path(__file__).resolve().parent.parent
# what a notebook run touches: the four libraries and their dependencies, genhelpers' own imports (sentencepiece
# for T5 tokenizers), the kernel
SUBSET = ["diffusers", "transformers", "huggingface-hub", "accelerate", "safetensors", "tokenizers", "hf-xet",
          "httpx", "numpy", "pillow", "pyyaml", "tqdm", "psutil", "imageio", "imageio-ffmpeg", "packaging",
          "requests", "filelock", "fsspec", "regex", "ipykernel", "ipython", "nbformat", "ipywidgets",
          "jupyter-client", "typing-extensions", "sentencepiece", "protobuf", "matplotlib", "attrs"]


def cache_root() -> Path:
    return Path(os.environ.get("GENHELPERS_REHEARSAL_CACHE", REPO / ".cache" / "rehearsal"))


def key() -> str:
    h = hashlib.sha256()
    for f in (stack.IMAGE_FILE, stack.TESTED_FILE, Path(__file__)):
        h.update(f.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()[:12]


def pip(python: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args[:3])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def base_env() -> Path:
    """The cached image environment (its folder; python at bin/python)."""
    root = cache_root() / key()
    env = root / "image-env"
    if (env / ".ready").is_file():
        return env
    shutil.rmtree(env, ignore_errors=True)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    py = env / "bin" / "python"
    # the CPU build of torch 2.13.0 this suite runs on stands in for the image's 2.11.0+cu128: hard-linked in with
    # what it needs, not unpacked a second time from its wheel (about 1 GB: a minute on two cores)
    link_installed(["torch"], site_packages(py))
    image = stack.image_packages()
    # torch 2.13's own requirements (sympy, networkx…) are newer than the image's pins for torch 2.11: leave
    # them to pip, and hold the stand-in torch
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement

    torch_deps = {stack.canonical(Requirement(r).name) for r in requires("torch") or []}
    pins = [f"{n}=={v}" for n, v in image.items() if not stack.never(n) and n not in torch_deps]
    pins.append(f"torch=={version('torch')}")
    constraints = root / "image-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    have = [n for n in SUBSET if n in image and n not in torch_deps]
    pip(py, "install", "-q", "-c", str(constraints), *have)
    got = versions(py, have)  # one process for all, not one per package
    wrong = {n: (v, image[n]) for n, v in got.items() if v != image[n]}
    if wrong:
        raise RuntimeError(f"the image environment does not hold the image's versions: {wrong}")
    (env / "image-versions.json").write_text(json.dumps(got, indent=1))
    (env / ".ready").write_text("ok\n")
    return env


def site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def link_installed(names, site: Path) -> list[str]:
    """Install distributions of this interpreter, with their requirements (extras aside), into another
    environment of the same Python by hard-linking the files their RECORD lists into its site-packages (files
    outside site-packages, such as console scripts, are left out). The same files pip would unpack from the same
    wheels, so pip there sees them installed. Returns the distributions linked."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    done, todo = [], list(names)
    while todo:
        name = stack.canonical(todo.pop())
        if name in done:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional requirement this environment does not have: pip decides later
        done.append(name)
        root = Path(dist.locate_file("")).resolve()
        for f in dist.files or []:
            src = Path(dist.locate_file(f)).resolve()
            if root not in src.parents or not src.is_file():
                continue
            dest = site / src.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                try:
                    os.link(src, dest)
                except OSError:  # another file system
                    shutil.copy2(src, dest)
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return done


def versions(python: Path, names) -> dict:
    code = (f"import json, importlib.metadata as m\nout = {{}}\nfor n in {list(names)!r}:\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)


def work_env(dest: Path) -> Path:
    """A private copy of the image environment (hard links: fast, and pip replaces files rather than editing
    them, so the cached base is never changed)."""
    base = base_env()
    subprocess.run(["cp", "-al", str(base), str(dest)], check=True)
    # the copy's scripts and pyvenv.cfg name the base's folder: point them at the copy
    for f in [dest / "pyvenv.cfg", *(dest / "bin").iterdir()]:
        if f.is_file() and not f.is_symlink():
            try:
                text = f.read_text()
            except UnicodeDecodeError:
                continue
            if str(base) in text:
                f.unlink()  # break the hard link before writing
                f.write_text(text.replace(str(base), str(dest)))
                f.chmod(0o755)
    return dest


def wheelhouse() -> Path:
    """The wheelhouse ``genhelpers kaggle build`` makes, but for this machine's Python (3.11) instead of
    Kaggle's 3.12: the tested set + media packages + their closure against the image's package set."""
    folder = cache_root() / key() / "wheelhouse"
    if (folder / "wheelhouse.json").is_file() and "no_deps" in json.loads((folder / "wheelhouse.json").read_text()):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    stack.build_wheelhouse(folder, target=None)
    return folder


def genhelpers_wheel(dest: Path) -> Path:
    """The genhelpers wheel of this working tree in ``dest``, with the dataset's hashes.json recorded as
    `genhelpers kaggle build` records it (call ``folders.record_hashes(dest)`` again after adding files)."""
    from genhelpers.platform.folders import record_hashes

    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest),
                    str(REPO)], check=True, capture_output=True)
    (wheel,) = dest.glob("genhelpers-*.whl")
    record_hashes(dest)
    return wheel


def kernelspec(env: Path, jupyter_dir: Path, name: str = "kaggle-image") -> str:
    """A kernel spec for the environment's Python, for papermill (JUPYTER_PATH=jupyter_dir)."""
    spec = jupyter_dir / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(env / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Kaggle image (rehearsal)", "language": "python"}))
    return name


def offline_pip() -> dict:
    """Environment variables under which pip reaches no index at all (only --find-links folders)."""
    return {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
