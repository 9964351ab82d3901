"""Full-size configurations of the published components, as JSON files, and their exact size.

``genhelpers/hub/configs/<catalog key>/<component>.json`` holds each component's ``config.json`` as the published
repository has it (diffusers configs with ``_class_name``, transformers configs with ``architectures``).
Building a model from one under ``torch.device("meta")`` allocates no memory, so a CPU machine counts the
parameters and bytes of every component exactly; tests check the counts against the published figures in
``../shared/reference/published_counts.md``, and the memory planner plans with them.

Where the configs come from (no hub access here: recorded by hand from the published repositories):
SDXL base/refiner and the fp16-fix VAE, SD1.5 (the stable-diffusion-v1-5 mirror), the AnimateDiff motion
adapter v1-5-2 and SparseCtrl, SVD/SVD-XT, Shap-E, CLIP ViT-L/14; MVDream's from ../shared/reference/mvdream;
DeepFloyd IF's stages and the x4 upscaler from the copies named in tests/reference/deepfloyd_if/README.md.
Counts not in the reference file are marked ``params_exact=False`` in the catalog.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from .memory import DTYPE_BYTES

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def keys() -> list[str]:
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())


def configs(key: str) -> dict[str, dict]:
    """{component: config dict} for a catalog key (``tiny:<key>`` names the same model)."""
    folder = CONFIG_DIR / key.removeprefix("tiny:")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _class(config: dict):
    import diffusers
    import transformers

    name = config.get("_class_name") or config["architectures"][0]
    if name == "ShapERenderer":
        from diffusers.pipelines.shap_e import ShapERenderer

        return ShapERenderer
    from . import classes, loader

    frozen = [getattr(m, name, None) for m in loader.frozen_pipeline_modules().values()]  # Karlo's text_proj
    return (classes.own(name) or getattr(diffusers, name, None) or next(filter(None, frozen), None)
            or getattr(transformers, name))


def meta_model(key: str, component: str):
    """The full-size component built on the meta device (no memory, no weights)."""
    import torch
    import transformers

    config = configs(key)[component]
    cls = _class(config)
    with torch.device("meta"):
        if issubclass(cls, transformers.PreTrainedModel):
            fields = {k: v for k, v in config.items() if k != "architectures"}
            return cls(cls.config_class.from_dict(fields))
        return cls.from_config(config)


@cache
def count(key: str, component: str) -> int:
    return sum(p.numel() for p in meta_model(key, component).parameters())


def size_bytes(key: str, component: str, dtype: str) -> int:
    """Bytes of the component's weights at ``dtype`` (buffers are negligible and not counted)."""
    return count(key, component) * DTYPE_BYTES[dtype]
