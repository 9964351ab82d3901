"""Save what a notebook made, with a JSON sidecar per file, and show it inline.

Every write is atomic: the bytes go to a hidden temporary file in the same folder, which is renamed into place
only when complete, so an error never leaves a half-written image or sidecar behind.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PACKAGES = ("torch", "diffusers", "transformers", "huggingface-hub", "accelerate", "genhelpers")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return Path(path)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .runtime import python_version

    out = {"python": python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def peak_memory() -> dict:
    """Peak resident memory of this process and peak GPU memory allocated by torch, in MiB."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"host_peak_mib": round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024))}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu_peak_mib"] = [round(torch.cuda.max_memory_allocated(i) / 2**20)
                                   for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return out


def _png_writer(image, meta: dict) -> Callable[[Path], None]:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", json.dumps(meta.get("parameters", {}), default=str))
    return lambda tmp: image.save(tmp, format="PNG", pnginfo=info)


def save_file(path: Path, writer: Callable[[Path], None], meta: dict) -> Path:
    """Write one output atomically with ``writer(tmp_path)`` and its sidecar ``<name>.json`` beside it.
    The output is only renamed into place once its sidecar is complete."""
    sidecar = path.with_suffix(".json")
    with atomic_path(path) as tmp:
        writer(tmp)
        write_json(sidecar, {**meta, "file": path.name})
    return path


def save_images(images: Iterable, output_dir, stem: str, meta: dict, seeds: list[int] | None = None,
                grid: bool = True) -> list[Path]:
    """Save PIL images as ``<stem>_000.png`` … (+ sidecars), and a ``<stem>_grid.png`` when there are several.
    Returns the paths written, grid last."""
    images = list(images)
    output_dir = Path(output_dir)
    paths = []
    for i, image in enumerate(images):
        m = {**meta, "index": i, "width": image.width, "height": image.height}
        if seeds is not None:
            m["seed"] = seeds[i]
        paths.append(save_file(output_dir / f"{stem}_{i:03d}.png", _png_writer(image, m), m))
    if grid and len(images) > 1:
        from diffusers.utils import make_image_grid

        cols = min(len(images), 4)
        rows = -(-len(images) // cols)
        blank = images[0].copy()
        blank.paste((0, 0, 0), (0, 0, *blank.size))
        sheet = make_image_grid(images + [blank] * (rows * cols - len(images)), rows, cols)
        m = {**meta, "grid": {"rows": rows, "cols": cols, "of": [p.name for p in paths]}, "width": sheet.width,
             "height": sheet.height}
        paths.append(save_file(output_dir / f"{stem}_grid.png", _png_writer(sheet, m), m))
    return paths


def record(notebook: str, params: dict, runtime=None, pipe=None, timings: dict | None = None) -> dict:
    """The metadata every sidecar carries."""
    return {
        "notebook": notebook,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "versions": versions(),
        "runtime": runtime.as_dict() if runtime is not None else None,
        "models": [getattr(p, "genhelpers_info", None) for p in (pipe if isinstance(pipe, (list, tuple)) else [pipe])
                   if p is not None],
        "timings": dict(timings or {}),
        "memory": peak_memory(),
    }


def show(paths: Iterable, width: int = 512) -> None:
    """Display images inline in a notebook (the grid alone when there is one); print paths elsewhere."""
    paths = [Path(p) for p in paths]
    grids = [p for p in paths if p.stem.endswith("_grid")]
    shown = grids or paths
    try:
        from IPython import get_ipython
        from IPython.display import Image, display

        if get_ipython() is None:
            raise ImportError
    except ImportError:
        for p in shown:
            print(p)
        return
    for p in shown:
        display(Image(filename=str(p), width=width))
