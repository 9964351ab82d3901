"""Twins of CatVTON's three repositories (the virtual_tryon notebook), in their published layouts:

* ``sd15-inpainting``: stable-diffusion-v1-5/stable-diffusion-inpainting — the whole inpainting pipeline folder
  (9-channel UNet, VAE, text encoder, tokenizer, safety checker, DDIM scheduler), its weights **only** as
  ``*.fp16.safetensors``, as published (the repository has no full-precision safetensors: a float32 run loads the
  fp16 files and upcasts them). The UNet keeps the published four levels and two layers per block, so its 16
  self-attention blocks enumerate exactly as the real UNet's (mid block last, at index 120).
* ``sd-vae-ft-mse``: stabilityai/sd-vae-ft-mse — one AutoencoderKL at the top of the folder.
* ``catvton``: zhengchong/CatVTON — ``{mix-48k-1024,vitonhd-16k-512,dresscode-16k-512}/attention/model.safetensors``
  with random, non-zero self-attention weights (a version each) keyed as the authors' list enumerates them,
  metadata ``format=pt``; mix and vitonhd deduplicated as ``safetensors.torch.save_model`` writes them, dresscode
  with the other aliases (``1.weight``, ``5.bias``, …), so the loader meets both; and the repository's empty
  ``config.json``. Written directly (not by save_pretrained), so it is a writer, not a builder.
"""
from __future__ import annotations

from pathlib import Path

from .common import SEED, checker_config, clip_tokenizer, seeded, text_encoder, vae

INPAINTING_CHANNELS = (32, 32, 64, 64)  # four levels as published; 8 groups of ≥ 4 channels
ATTENTION_SUBFOLDERS = {"mix-48k-1024": 31, "vitonhd-16k-512": 32, "dresscode-16k-512": 33}  # folder -> seed
LEAF_ALIASES = ("dresscode-16k-512",)  # written with the projections' own aliases instead of save_model's


def inpainting_unet(seed: int = SEED + 30):
    """The SD 1.5 inpainting UNet at toy width: 9 input channels (noisy latent 4, mask 1, masked image 4), the
    published block types, two layers per block, cross-attention (so attn2 and norm2 exist)."""
    from diffusers import UNet2DConditionModel

    seeded(seed)
    return UNet2DConditionModel(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                                block_out_channels=INPAINTING_CHANNELS, norm_num_groups=8, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32).eval()


class FP16Only:
    """A pipeline whose published folder keeps its weights only as ``*.fp16.safetensors``: the registry saves the
    configs and the fp16 files (``_write_fp16``); the full-precision weight files are left out."""

    def __init__(self, pipe):
        self.pipe = pipe

    def to(self, *args, **kwargs):
        self.pipe.to(*args, **kwargs)
        return self

    def save_pretrained(self, folder, safe_serialization: bool = True, variant: str | None = None):
        self.pipe.save_pretrained(folder, safe_serialization=safe_serialization, variant=variant)
        if variant is None:
            for f in Path(folder).glob("*/*.safetensors"):
                f.unlink()


def sd15_inpainting():
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    seeded(SEED + 35)
    checker = StableDiffusionSafetyChecker(checker_config()).eval()
    # the published scheduler config names DDIM (CatVTON samples with DDIM whatever it names)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000)
    return FP16Only(StableDiffusionInpaintPipeline(
        vae=vae(SEED + 36, scaling_factor=0.18215, sample_size=512), text_encoder=text_encoder(seed=SEED + 37),
        tokenizer=clip_tokenizer(), unet=inpainting_unet(), scheduler=scheduler, safety_checker=checker,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224), requires_safety_checker=True))


def sd_vae_ft_mse():
    """The fine-tuned SD VAE CatVTON hard-codes: same architecture as SD 1.5's, other weights."""
    return vae(SEED + 38, scaling_factor=0.18215, sample_size=256)


def attention_list(unet):
    """The authors' container, rebuilt: for each attn1 block (named_modules order: down, up, mid) its 8 modules —
    the Attention, to_q, to_k, to_v, to_out, to_out.0, to_out.1 and a parameter-free processor module."""
    import torch

    blocks = [m for n, m in unet.named_modules() if n.endswith("attn1")]
    return torch.nn.ModuleList([m for b in blocks for m in (b, b.to_q, b.to_k, b.to_v, b.to_out, b.to_out[0],
                                                            b.to_out[1], torch.nn.Identity())])


def write_catvton(folder: Path) -> None:
    """Write the attention repository's twin into ``folder``."""
    import torch
    from safetensors.torch import save_file, save_model

    (folder / "config.json").write_text("")  # published empty (0 bytes)
    for sub, seed in ATTENTION_SUBFOLDERS.items():
        unet = inpainting_unet()
        listing = attention_list(unet)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # non-zero, and other than the base's, so that loading them changes the output
            for p in listing.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        target = folder / sub / "attention" / "model.safetensors"
        target.parent.mkdir(parents=True)
        if sub in LEAF_ALIASES:
            blocks = [m for n, m in unet.named_modules() if n.endswith("attn1")]
            tensors = {}
            for i, b in enumerate(blocks):
                for slot, name, t in ((1, "weight", b.to_q.weight), (2, "weight", b.to_k.weight),
                                      (3, "weight", b.to_v.weight), (5, "weight", b.to_out[0].weight),
                                      (5, "bias", b.to_out[0].bias)):
                    tensors[f"{8 * i + slot}.{name}"] = t.detach().clone().contiguous()
            save_file(tensors, target, metadata={"format": "pt"})
        else:
            save_model(listing, str(target), metadata={"format": "pt"})


BUILDERS = {"sd15-inpainting": sd15_inpainting, "sd-vae-ft-mse": sd_vae_ft_mse}
WRITERS = {"catvton": write_catvton}
