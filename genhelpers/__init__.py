"""genhelpers: the plumbing behind the GenAI notebooks.

A notebook reads top to bottom: parameters -> ``runtime()`` -> ``check(...)`` -> ``load(...)`` -> the diffusers
call itself -> ``save(...)`` / ``show(...)``. Importing this package is cheap (torch and diffusers load on first
use), so a notebook's install cell can call ``ensure_stack()`` before anything heavy is imported.
"""
from __future__ import annotations

__version__ = "0.1.0"

import logging as _logging


class _NoTorchvisionNotice(_logging.Filter):
    """transformers warns when torchvision is missing and it falls back to its PIL image processors. That is
    the normal state of CPU machines (PyPI's torchvision does not import beside the CPU torch) and irrelevant to
    the notebooks, so that one notice is dropped; every other warning passes."""

    def filter(self, record):
        return "requires torchvision (not installed)" not in record.getMessage()


_logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionNotice())

from .params import ParameterError, check  # noqa: E402  (light: no torch)
from .stack import ensure as ensure_stack  # noqa: E402

__all__ = ["ParameterError", "check", "ensure_stack", "generators", "load", "load_image", "panel", "plan", "runtime",
           "save", "save_mesh", "save_video", "show"]


def runtime(dtype: str = "auto", threads: int | None = None):
    """Detect the machine, print its one-line summary, return the Runtime."""
    from .runtime import detect

    rt = detect(dtype=dtype, threads=threads)
    print(rt.summary())
    return rt


def load(ref, rt=None, **kwargs):
    """Resolve weights and return a ready pipeline (see genhelpers.loader.load)."""
    from .loader import load as _load

    return _load(ref, rt, **kwargs)


def plan(rt, memory="auto", models=(), height=1024, width=1024, batch=1):
    """One memory plan for a job that loads several models (see genhelpers.loader.plan)."""
    from .loader import plan as _plan

    return _plan(rt, memory, models, height, width, batch)


def generators(seed: int, n: int = 1):
    """One CPU torch.Generator per image, seeded seed, seed+1, …: each image can be re-made alone, and the
    noise is the same on every device. Returns (generators, seeds)."""
    import torch

    seeds = [seed + i for i in range(n)]
    return [torch.Generator("cpu").manual_seed(s) for s in seeds], seeds


def save(images, output_dir, notebook: str, params: dict, rt=None, pipe=None, seeds=None, timings=None,
         stem: str | None = None):
    """Save images (+ grid) with a sidecar JSON each; returns the paths written."""
    from .media import record, save_images

    meta = record(notebook, params, rt, pipe, timings)
    return save_images(images, output_dir, stem or notebook, meta, seeds=seeds)


def save_video(frames, output_dir, notebook: str, params: dict, fps: float, stem: str, rt=None, pipe=None,
               seed=None, timings=None):
    """Save a clip as MP4 + GIF + frame strip, each with a sidecar; returns the paths written."""
    from .media import record
    from .media import save_video as _save_video

    meta = {**record(notebook, params, rt, pipe, timings), "seed": seed}
    return _save_video(frames, output_dir, stem, meta, fps=fps)


def save_mesh(mesh, output_dir, notebook: str, params: dict, stem: str, rt=None, pipe=None, seed=None,
              timings=None):
    """Save a mesh as PLY + OBJ + GLB (vertex colours kept) + a preview PNG, each with a sidecar holding the
    mesh facts; returns the paths written."""
    from .media import record
    from .media import save_mesh as _save_mesh

    meta = {**record(notebook, params, rt, pipe, timings), "seed": seed}
    return _save_mesh(mesh, output_dir, stem, meta)


def load_image(path=None, name: str = "image"):
    """The image at ``path`` (RGB, or RGBA as given), or a demo picture genhelpers draws when ``path`` is None."""
    from .images import load_image as _load_image

    return _load_image(path, name)


def panel(make, **values):
    """ipywidgets controls + a Generate button calling make(**values) (see genhelpers.widgets)."""
    from .widgets import panel as _panel

    return _panel(make, **values)


def show(paths, width: int = 512):
    from .media import show as _show

    _show(paths, width)
