"""Twins of the character-animation notebook's models: Moore-AnimateAnyone's four pickles, the CLIP image encoder of
lambdalabs/sd-image-variations-diffusers, the sd-vae-ft-mse VAE, the OpenPose ControlNet, and the SD1.5 IP-Adapter
with its image encoder. Each is written in its published layout: raw files where the repository holds raw files
(``patrolli/AnimateAnyone``'s ``*.pth`` state dicts, ``h94/IP-Adapter``'s ``models/`` folder), so the notebook's
own opt-in, download and conversion path runs on them.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .common import SD15_CHANNELS, SEED, liven, seeded
from .video import MOTION

# the SD1.5 twin's UNet (twins.image.sd15): Moore's UNets are SD1.5 UNets, so the converter reads that twin's config
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=SD15_CHANNELS,
                 norm_num_groups=4, attention_head_dim=8, cross_attention_dim=32,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
POSE_WIDTHS = (4, 8, 8, 16)  # Moore's pose guider (16, 32, 96, 256) at toy width
HEAD = ("conv_norm_out.", "conv_out.")


def moore_motion_key(key: str) -> str:
    """A diffusers MotionAdapter key → the AnimateDiff-v2 name Moore's motion_module.pth uses (the inverse of
    diffusers' convert_animatediff_checkpoint_to_diffusers)."""
    head, sep, rest = re.match(r"(.*?motion_modules\.\d+\.)()(.*)", key).groups()
    rest = re.sub(r"\battn1\.", "attention_blocks.0.", rest)
    rest = re.sub(r"\battn2\.", "attention_blocks.1.", rest)
    rest = rest.replace(".norm1.", ".norms.0.").replace(".norm2.", ".norms.1.").replace(".norm3.", ".ff_norm.")
    return f"{head}temporal_transformer.{rest}"


def _sinusoid(length: int, width: int):
    import torch

    position = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width))
    pe = torch.zeros(1, length, width)
    pe[0, :, 0::2], pe[0, :, 1::2] = torch.sin(position * div), torch.cos(position * div)
    return pe


class MooreFiles:
    """patrolli/AnimateAnyone's layout: four pickled state dicts (float32), with Moore's own key names."""

    def __init__(self, seed: int = SEED + 80):
        import torch
        from diffusers import MotionAdapter, UNet2DConditionModel

        from ..models.animate_anyone import PoseGuider

        seeded(seed)
        reference = UNet2DConditionModel(**SD15_UNET).eval()
        seeded(seed + 1)
        denoiser = UNet2DConditionModel(**SD15_UNET).eval()
        seeded(seed + 2)
        adapter = MotionAdapter(block_out_channels=SD15_CHANNELS, motion_layers_per_block=2, motion_norm_num_groups=4,
                                use_motion_mid_block=True, **MOTION).eval()
        seeded(seed + 3)
        guider = PoseGuider(conditioning_embedding_channels=SD15_CHANNELS[0], block_out_channels=POSE_WIDTHS).eval()
        with torch.no_grad():  # at default scale a fresh guider's features hardly depend on the pose (5e-6): a dead
            for m in guider.modules():  # path. Redrawn wider, two strips differ by about their own size
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.normal_(0, 0.3)
        self.states = {
            "reference_unet.pth": {k: v for k, v in reference.state_dict().items() if not k.startswith(HEAD)},
            "denoising_unet.pth": dict(denoiser.state_dict()),
            "motion_module.pth": self._motion(adapter),
            "pose_guider.pth": dict(guider.state_dict()),
        }

    @staticmethod
    def _motion(adapter) -> dict:
        out = {}
        for k, v in adapter.state_dict().items():
            if k.endswith("pos_embed.pe"):  # Moore keeps one table per attention; the converter drops them
                for i in (0, 1):
                    name = moore_motion_key(k.replace("pos_embed.pe", f"attn{i + 1}.pos_encoder.pe"))
                    out[name] = _sinusoid(v.shape[1], v.shape[2])
            else:
                out[moore_motion_key(k)] = v
        return out

    def save_pretrained(self, folder, **kwargs):
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, state in self.states.items():
            torch.save({k: v.detach().clone().contiguous() for k, v in state.items()}, folder / name)
        (folder / "README.md").write_text("Tiny random-weight twin of patrolli/AnimateAnyone (Moore-AnimateAnyone's "
                                          "weights): the same four state dicts at toy width.\n")


def animate_anyone():
    return MooreFiles()


class EncoderOnly:
    """lambdalabs/sd-image-variations-diffusers as far as Moore uses it: its model_index.json, image_encoder/ and
    feature_extractor/ (the twin leaves out the UNet, VAE and safety checker nothing here reads)."""

    INDEX = {"_class_name": "StableDiffusionImageVariationPipeline", "_diffusers_version": "0.3.0",
             "feature_extractor": ["transformers", "CLIPFeatureExtractor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "scheduler": ["diffusers", "PNDMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}

    def __init__(self, encoder, processor):
        self.encoder, self.processor = encoder, processor

    def save_pretrained(self, folder, safe_serialization: bool = True, **kwargs):
        folder = Path(folder)
        self.encoder.save_pretrained(folder / "image_encoder", safe_serialization=safe_serialization)
        self.processor.save_pretrained(folder / "feature_extractor")
        (folder / "model_index.json").write_text(json.dumps(self.INDEX, indent=2) + "\n")


def _clip_vision(projection: int, seed: int):
    """A CLIP vision tower with projection at toy width; 224-px input (the pipelines always feed 224 px)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    seeded(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=224,
        patch_size=32, projection_dim=projection, hidden_act="quick_gelu")).eval()


def sd_image_variations():
    """Projection 32 = the SD1.5 twin's cross-attention width (768 in the published ViT-L/14)."""
    from transformers import CLIPImageProcessor

    return EncoderOnly(_clip_vision(32, SEED + 84), CLIPImageProcessor(crop_size=224, size=224))


def controlnet_openpose():
    """The SD1.5 ControlNet layout at the SD1.5 twin's widths. A fresh ControlNet ignores its picture (the
    conditioning embedding's last layer and the zero convolutions start at zero, and the first layers at default
    scale barely reach the residuals): the embedding's convolutions are redrawn wider (pose pictures then move the
    clip by ~0.3 of the pixel range) and the zero layers livened."""
    import torch
    from diffusers import ControlNetModel

    seeded(SEED + 86)
    cn = ControlNetModel(block_out_channels=SD15_CHANNELS, layers_per_block=2, norm_num_groups=4,
                         cross_attention_dim=32, attention_head_dim=8,
                         down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                         conditioning_embedding_out_channels=(4, 8, 8, 16)).eval()
    liven(cn)
    with torch.no_grad():
        for m in cn.controlnet_cond_embedding.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 0.5)
    return cn


# (the SD VAE fine-tuned on MSE is virtual_tryon's twin, twins/tryon.py; the SD 1.5 IP-Adapter and its image
# encoder are stylecrafter's, twins/ipadapter.py: one twin per published repository)
BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "animate-anyone": animate_anyone,
    "sd-image-variations": sd_image_variations,
    "controlnet-openpose": controlnet_openpose,
}
