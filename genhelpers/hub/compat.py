"""Do these models fit together? Read from their config files before any weights load.

AnimateDiff's motion modules and SparseCtrl plug into the blocks of a Stable Diffusion 1.5 UNet: their widths
must equal the UNet's, and the base must be of the family they were trained with (SD 1.5: text features of
width 768; SD 2.x has 1024, SDXL 2048). A motion module also has a longest clip it knows positions for.
"""
from __future__ import annotations

import json

from ..errors import ParameterError
from . import published, weights


def _config(ref, subfolder: str | None = None) -> dict:
    res = weights.resolve(ref, only={subfolder} if subfolder else None)
    path = res.path / subfolder / "config.json" if subfolder else res.path / "config.json"
    return json.loads(path.read_text())


def sd15_reference_unet(twin: bool) -> dict:
    """The UNet config motion modules were built for: the published SD1.5 one, or its twin's for a twin."""
    if twin:
        return _config("tiny:sd15", "unet")
    return published.configs("sd15")["unet"]


def check_motion(base_model, adapter, frames: int, sparsectrl_model=None) -> None:
    """Raise ParameterError (naming the parameter) when the adapter or SparseCtrl cannot drive ``base_model``
    or ``frames`` exceeds what the motion module knows."""
    unet = _config(base_model, "unet")
    motion = _config(adapter)
    want = sd15_reference_unet(str(adapter).startswith("tiny:"))
    if list(unet["block_out_channels"]) != list(motion["block_out_channels"]):
        raise ParameterError("base_model", f"base_model={base_model!r} has UNet blocks of width "
                                           f"{unet['block_out_channels']}, but the motion module {adapter!r} plugs "
                                           f"into blocks of width {motion['block_out_channels']}: use a Stable "
                                           f"Diffusion 1.5 model (or an SD1.5 fine-tune) as base_model")
    if unet.get("cross_attention_dim") != want.get("cross_attention_dim"):
        raise ParameterError("base_model", f"base_model={base_model!r} reads text features of width "
                                           f"{unet.get('cross_attention_dim')}, not {want.get('cross_attention_dim')}"
                                           f" like Stable Diffusion 1.5: it is another family (SD 2.x uses 1024, "
                                           f"SDXL 2048), and the v1.5 motion module only works with SD1.5 models")
    longest = motion.get("motion_max_seq_length", 32)
    if frames > longest:
        raise ParameterError("frames", f"frames={frames} is more than the motion module knows: it was trained with "
                                       f"positions for at most {longest} frames; use frames ≤ {longest} (16 is what "
                                       f"it saw most)")
    if sparsectrl_model is not None:
        control = _config(sparsectrl_model)
        if list(control["block_out_channels"]) != list(unet["block_out_channels"]):
            raise ParameterError("sparsectrl_model", f"sparsectrl_model={sparsectrl_model!r} has block widths "
                                                     f"{control['block_out_channels']}, the base UNet "
                                                     f"{unet['block_out_channels']}: use a SparseCtrl model made for "
                                                     f"SD1.5")
        if frames > control.get("motion_max_seq_length", 32):
            raise ParameterError("frames", f"frames={frames} is more than SparseCtrl's "
                                           f"{control.get('motion_max_seq_length', 32)}-frame limit")


def check_text_to_video(model, frames: int, height: int, width: int) -> None:
    """Raise ParameterError when the clip's shape does not suit the model family (known from the catalog; other
    models are left to diffusers). CogVideoX's 3D VAE keeps the first frame and compresses the rest 4× in time
    (49 frames → 13 latent frames); its decoder doubles time twice and keeps the first frame apart only for an odd
    number of latent frames (measured with diffusers 0.42: 13 frames asked → 16 returned), so frames = 8k + 1
    (9, 17, …, 49, the length it was trained on); its transformer cuts latents into 2×2 patches: sides multiples
    of 16. ModelScope-style UNet3D models: sides multiples of 8 (checked by the size rules)."""
    from . import catalog

    entry = catalog.find(str(model))
    if entry is None or not entry.cls.startswith("CogVideoX"):
        return
    if (frames - 1) % 8 or not 1 <= frames <= 49:
        lo = max(1, (frames - 1) // 8 * 8 + 1)
        raise ParameterError("frames", f"frames={frames} does not suit CogVideoX: its VAE packs 4 frames into one "
                                       f"after the first and decodes back exactly for 8k + 1 frames up to 49 "
                                       f"(e.g. {min(lo, 49)} or {min(lo + 8, 49)})")
    for name, side in (("height", height), ("width", width)):
        if side % 16:
            raise ParameterError(name, f"{name}={side} must be a multiple of 16 for CogVideoX (8× VAE, 2×2 "
                                       f"patches): try {side - side % 16 or 16} or {side - side % 16 + 16}")
