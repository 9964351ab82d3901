"""genhelpers: the plumbing behind the GenAI notebooks.

A notebook reads top to bottom: parameters -> ``runtime()`` -> ``check(...)`` -> ``load(...)`` -> the diffusers
call itself -> ``save(...)`` / ``show(...)``. Importing this package is cheap (torch and diffusers load on first
use), so a notebook's install cell can call ``ensure_stack()`` before anything heavy is imported.
"""
from __future__ import annotations

__version__ = "0.1.0"

import logging as _logging


class _DropNotice(_logging.Filter):
    """Drop one known-irrelevant library notice; every other record passes."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record):
        return self.text not in record.getMessage()


# transformers: torchvision missing, PIL image processors used instead -- the normal state of CPU machines
# (PyPI's torchvision does not import beside the CPU torch) and irrelevant to the notebooks.
_logging.getLogger("transformers.utils.import_utils").addFilter(_DropNotice("requires torchvision (not installed)"))
# diffusers: moving a model with .to() while *no* module needs to stay in float32 (an empty list) is harmless.
_logging.getLogger("diffusers.models.modeling_utils").addFilter(_DropNotice("should be kept in float32: []."))

from . import models as _models  # noqa: E402,F401  (tells the hub where our own classes live; imports no torch)
from . import twins as _twins  # noqa: E402,F401  (registers how tiny: references resolve; imports only the stdlib)
from .errors import ParameterError  # noqa: E402  (none of these import torch or diffusers at import time)
from .hub.compat import check_motion  # noqa: E402
from .hub.loader import load, plan, retry_on_oom  # noqa: E402
from .hub.memory import apply as place  # noqa: E402
from .outputs.images import key_frames, load_image  # noqa: E402
from .outputs.media import show  # noqa: E402
from .outputs.widgets import panel  # noqa: E402
from .params import check  # noqa: E402
from .platform.stack import ensure as ensure_stack  # noqa: E402

__all__ = ["ParameterError", "check", "check_motion", "ensure_stack", "generators", "key_frames", "load", "load_image",
           "locate", "panel", "place", "plan", "retry_on_oom", "runtime", "save", "save_mesh", "save_video", "show"]


def locate(ref, **kwargs):
    """The local folder holding ``ref``'s files (found or downloaded as ``load`` would), without loading."""
    from .hub.weights import resolve

    return resolve(ref, **kwargs).path


def runtime(dtype: str = "auto", threads: int | None = None):
    """Detect the machine, print its one-line summary, return the Runtime."""
    from .platform.runtime import detect

    rt = detect(dtype=dtype, threads=threads)
    print(rt.summary())
    return rt


def generators(seed: int, n: int = 1):
    """One CPU torch.Generator per image, seeded seed, seed+1, …: each image can be re-made alone, and the
    noise is the same on every device. Returns (generators, seeds)."""
    import torch

    seeds = [seed + i for i in range(n)]
    return [torch.Generator("cpu").manual_seed(s) for s in seeds], seeds


def save(images, output_dir, notebook: str, params: dict, rt=None, pipe=None, seeds=None, timings=None,
         stem: str | None = None, extra: dict | None = None, grid: bool | int = True):
    """Save images (+ a grid when there are several and ``grid``) with a sidecar JSON each (parameters,
    versions, machine, models, timings, and ``extra``: facts of the generation such as measured quality)."""
    from .outputs.media import record, save_images

    meta = {**record(notebook, params, rt, pipe, timings), "generation": dict(extra or {})}
    return save_images(images, output_dir, stem or notebook, meta, seeds=seeds, grid=grid)


def save_video(frames, output_dir, notebook: str, params: dict, fps: float, stem: str, rt=None, pipe=None,
               seed=None, timings=None, extra: dict | None = None):
    """Save a clip as MP4 + GIF + frame strip, each with a sidecar; returns the paths written. ``extra``:
    facts of the generation worth keeping (e.g. the decode chunk size used)."""
    from .outputs.media import record
    from .outputs.media import save_video as _save_video

    meta = {**record(notebook, params, rt, pipe, timings), "seed": seed, "generation": dict(extra or {})}
    return _save_video(frames, output_dir, stem, meta, fps=fps)


def save_mesh(mesh, output_dir, notebook: str, params: dict, stem: str, rt=None, pipe=None, seed=None,
              timings=None):
    """Save a mesh as PLY + OBJ + GLB (vertex colours kept) + a preview PNG, each with a sidecar holding the
    mesh facts; returns the paths written."""
    from .outputs.media import record
    from .outputs.media import save_mesh as _save_mesh

    meta = {**record(notebook, params, rt, pipe, timings), "seed": seed}
    return _save_mesh(mesh, output_dir, stem, meta)
