"""Animate Anyone (Hu et al., 2023) as a diffusers pipeline, for Moore-AnimateAnyone's published weights.

One picture of a character and a sequence of pose pictures → a clip of that character moving through the poses.
Three ways the character and the poses reach the denoiser, the paper's idea:

* **ReferenceNet**: a second copy of the Stable Diffusion UNet reads the character picture's latent once. In each
  of its 16 spatial transformer blocks the self-attention input is recorded (*write*); the denoising UNet's
  matching blocks then attend to their own tokens *and* the recorded ones (*read*): keys and values are the
  concatenation, along the token axis, of the frame's tokens and the reference's. Detail of the picture (face,
  clothes, colours) flows into every frame this way, at every resolution.
* **Pose guider**: a small convolutional network turns each pose picture into a feature map of the UNet's first
  width, added to the output of the denoiser's first convolution, frame by frame.
* **Temporal layers**: AnimateDiff-style motion modules (attention across frames at every block) keep the frames
  coherent. The CLIP image embedding of the picture replaces the text prompt in cross-attention: there is no text.

The official release has no code and no weights; we follow MooreThreads/Moore-AnimateAnyone (a914ef3, Apache-2.0),
whose weights are ``patrolli/AnimateAnyone``. The maths is assembled from stock diffusers parts: two
``UNet2DConditionModel``s and a ``MotionAdapter`` (as ``UNetMotionModel``), two attention processors, a hook
after ``conv_in``, and the GroupNorm patch below. Facts, and the recorded forward of the authors' own classes on
tiny weights that pins this module, are in ``tests/reference/animate_anyone/``. Published behaviour we follow
(read for behaviour, never copied): the reference picture is squashed to 224×224 for CLIP (no crop) and its one
projected embedding is the only cross-attention token; the unconditional branch uses a zero embedding *and no
reference* (its self-attention stays plain), while the pose features go to both branches; the reference latent is
the VAE posterior's mean × the scaling factor; the ReferenceNet runs once per clip at timestep 0; each motion
module's GroupNorm normalises each frame on its own (diffusers' ``AnimateDiffTransformer3D`` normalises over all
frames at once; ``PerFrameGroupNorm`` restores the authors' behaviour: 0.41 apart on the tiny fixture without it);
DDIM with v-prediction, zero terminal SNR and trailing spacing; frames decoded one at a time.

Where we differ on purpose: Moore rounds the recorded reference features to float16 even in a float32 run (1.3e-4
on the tiny fixture); we keep them in the computing dtype (identical in float16). The ReferenceNet runs on the
conditional embedding alone (batch 1): the unconditional branch never reads it (2.5e-6 from the authors'
two-row pass). Clips are one window of at most ``MAX_FRAMES`` frames; Moore's longer clips (overlapping windows of
24, averaged) are not implemented. The published reference UNet has no output head (it is never used); the
converted folder stores it as zeros.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from PIL import Image

MAX_FRAMES = 24  # Moore's context window: one window holds the whole clip up to here
CLIP_SIDE = 224


class PoseGuider(ModelMixin, ConfigMixin):
    """Pose pictures (B, 3, F, H, W) in [0, 1] → features (B, C, F, H/8, W/8) added after the denoiser's
    ``conv_in``: a 3×3 convolution, then for each width a 3×3 convolution and a strided one (each followed by
    SiLU), then a 3×3 convolution to the UNet's first width (zero-initialised in training). Frames are independent
    (the convolutions are 2-D). Moore's layout; the paper describes 4×4 kernels added to the noise latent."""

    @register_to_config
    def __init__(self, conditioning_embedding_channels: int = 320, conditioning_channels: int = 3,
                 block_out_channels: tuple = (16, 32, 96, 256)):
        super().__init__()
        c = list(block_out_channels)
        self.conv_in = torch.nn.Conv2d(conditioning_channels, c[0], 3, padding=1)
        self.blocks = torch.nn.ModuleList()
        for cin, cout in zip(c[:-1], c[1:], strict=True):
            self.blocks.append(torch.nn.Conv2d(cin, cin, 3, padding=1))
            self.blocks.append(torch.nn.Conv2d(cin, cout, 3, padding=1, stride=2))
        self.conv_out = torch.nn.Conv2d(c[-1], conditioning_embedding_channels, 3, padding=1)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = poses.shape
        x = poses.permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)
        return x.reshape(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)


class PerFrameGroupNorm(torch.nn.GroupNorm):
    """GroupNorm on (B, C, F, H, W) with statistics per frame, as the original AnimateDiff and Moore's motion
    modules compute them (same parameters, so the state-dict keys do not change)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        y = super().forward(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def per_frame_motion_norms(unet) -> int:
    """Make every motion module's input GroupNorm of ``unet`` (a UNetMotionModel) normalise frame by frame;
    returns how many were patched."""
    n = 0
    for name, m in unet.named_modules():
        if "motion_modules" in name and name.endswith(".norm") and type(m) is torch.nn.GroupNorm:
            m.__class__ = PerFrameGroupNorm
            n += 1
    return n


# ------------------------------------------------------------------------------------- reference attention
class ReferenceBank:
    """What the ReferenceNet recorded, shared by the processors of both UNets. ``mode``: None (plain attention),
    "write" (the ReferenceNet records) or "read" (the denoiser attends to the record); ``plain_rows``: how many
    leading rows of the denoiser's batch (the unconditional branch, frame by frame) attend without it."""

    def __init__(self):
        self.mode: str | None = None
        self.features: dict[str, torch.Tensor] = {}
        self.frames = 1
        self.plain_rows = 0


class ReferenceWriter(AttnProcessor2_0):
    """Self-attention of a ReferenceNet block: records its input (the block's ``norm1(h)``), then attends as usual."""

    def __init__(self, name: str, bank: ReferenceBank):
        super().__init__()
        self.name, self.bank = name, bank

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        if self.bank.mode == "write":
            self.bank.features[self.name] = hidden_states
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class ReferenceReader(AttnProcessor2_0):
    """Self-attention of a denoiser block: in "read" mode each frame's tokens attend to themselves and to the
    reference's recorded tokens (keys and values concatenated along the token axis); the unconditional rows
    attend to themselves only."""

    def __init__(self, name: str, bank: ReferenceBank):
        super().__init__()
        self.name, self.bank = name, bank

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        bank = self.bank
        if bank.mode != "read" or self.name not in bank.features:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        ref = bank.features[self.name].to(hidden_states.dtype).repeat_interleave(bank.frames, dim=0)
        k = bank.plain_rows
        read = hidden_states[k:]
        out = super().__call__(attn, read, torch.cat([read, ref], dim=1), attention_mask)
        if k == 0:
            return out
        plain = super().__call__(attn, hidden_states[:k], None, attention_mask)
        return torch.cat([plain, out])


def spatial_self_attention(unet) -> list[str]:
    """The processor names of a UNet's spatial self-attention layers (not the motion modules')."""
    return [n for n in unet.attn_processors if n.endswith("attn1.processor") and "motion_modules" not in n]


def install_reference_attention(reference_unet, unet, bank: ReferenceBank) -> None:
    """Writers on the ReferenceNet's spatial self-attention, readers on the denoiser's, paired by layer name
    (both UNets share the SD1.5 layout); every other processor is kept."""
    for model, cls in ((reference_unet, ReferenceWriter), (unet, ReferenceReader)):
        mine = set(spatial_self_attention(model))
        model.set_attn_processor({n: cls(n.removesuffix(".processor"), bank) if n in mine else p
                                  for n, p in model.attn_processors.items()})


# ------------------------------------------------------------------------------------- inputs
def clip_pixels(image: Image.Image, processor) -> torch.Tensor:
    """The reference as Moore's CLIP sees it: squashed to 224×224 (no crop), then CLIP's normalisation."""
    return processor(images=image.convert("RGB").resize((CLIP_SIDE, CLIP_SIDE)), return_tensors="pt").pixel_values


def to_tensor(images, width: int, height: int, signed: bool) -> torch.Tensor:
    """PIL pictures → (N, 3, H, W), resized to width × height; in [-1, 1] when ``signed`` (VAE input), else [0, 1]."""
    arr = np.stack([np.asarray(im.convert("RGB").resize((width, height), Image.BICUBIC), dtype=np.float32) / 255
                    for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    return x * 2 - 1 if signed else x


class AnimateAnyonePipeline(DiffusionPipeline):
    """``pipe(reference_image, pose_images)`` → ``.frames`` (a list of PIL frames, or (F, H, W, 3) with
    ``output_type="np"``). Components as converted from Moore's files (``animate_anyone_weights.convert``)."""

    model_cpu_offload_seq = "image_encoder->reference_unet->pose_guider->unet->vae"
    COMPONENTS = {  # folder -> (library, class) it is loaded with: a library's class or ours, never hub code
        "vae": ("diffusers", "AutoencoderKL"),
        "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
        "feature_extractor": ("transformers", "CLIPImageProcessor"),
        "reference_unet": ("diffusers", "UNet2DConditionModel"),
        "unet": ("diffusers", "UNetMotionModel"),
        "pose_guider": ("genhelpers", "PoseGuider"),
        "scheduler": ("diffusers", "DDIMScheduler"),
    }

    def __init__(self, vae, image_encoder, feature_extractor, reference_unet, unet, pose_guider, scheduler):
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor,
                              reference_unet=reference_unet, unet=unet, pose_guider=pose_guider, scheduler=scheduler)
        self.bank = ReferenceBank()
        if unet is not None:
            per_frame_motion_norms(unet)
        if reference_unet is not None and unet is not None:
            install_reference_attention(reference_unet, unet, self.bank)

    @classmethod
    def from_pretrained(cls, path, dtype=None, variant=None, use_safetensors: bool = True, device_map=None,
                        max_memory=None, torch_dtype=None, **components):
        """Load a converted folder (``animate_anyone_weights.convert``) component by component with the classes
        in ``COMPONENTS``; components passed by keyword replace the folder's."""
        import diffusers
        import transformers

        if device_map is not None:
            raise ValueError("AnimateAnyonePipeline does not spread over several GPUs (~5 GB in float16 fits one "
                             "T4); use memory='gpu' or an offload plan")
        path, dtype = Path(path), dtype or torch_dtype
        libraries = {"diffusers": diffusers, "transformers": transformers}
        loaded = {}
        for name, (lib, cls_name) in cls.COMPONENTS.items():
            if components.get(name) is not None:
                loaded[name] = components[name]
                continue
            if not (path / name).is_dir():
                raise FileNotFoundError(f"{path} has no {name}/ folder: a converted Animate Anyone folder holds "
                                        f"{', '.join(cls.COMPONENTS)} (made by animate_anyone_weights.convert)")
            klass = PoseGuider if lib == "genhelpers" else getattr(libraries[lib], cls_name)
            if name == "feature_extractor":
                loaded[name] = klass.from_pretrained(path / name)
            elif name == "scheduler":
                loaded[name] = klass.from_pretrained(path, subfolder=name)
            elif lib == "transformers":
                loaded[name] = klass.from_pretrained(path / name, dtype=dtype, use_safetensors=use_safetensors)
            else:
                loaded[name] = klass.from_pretrained(path, subfolder=name, torch_dtype=dtype, variant=variant,
                                                     use_safetensors=use_safetensors)
        return cls(**loaded)

    def enable_attention_slicing(self, slice_size="auto"):
        """Slices the attention of every layer except the reference ones, which keep PyTorch's fused attention
        (their processors carry the recorded features)."""
        super().enable_attention_slicing(slice_size)
        install_reference_attention(self.reference_unet, self.unet, self.bank)

    # the steps of a call, each usable alone (the differential test runs one denoiser forward with them)
    def encode_character(self, image: Image.Image, width: int, height: int):
        """(CLIP embedding as one cross-attention token (1, 1, D), the picture's latent for the ReferenceNet)."""
        device = self._execution_device
        pixels = clip_pixels(image, self.feature_extractor).to(device, self.image_encoder.dtype)
        embeds = self.image_encoder(pixels).image_embeds.unsqueeze(1).to(self.unet.dtype)
        picture = to_tensor([image], width, height, signed=True).to(device, self.vae.dtype)
        latent = self.vae.encode(picture).latent_dist.mean * self.vae.config.scaling_factor
        return embeds, latent

    def encode_poses(self, pose_images: list, width: int, height: int) -> torch.Tensor:
        """Pose features (1, C, F, H/8, W/8) from the pose pictures (resized, in [0, 1])."""
        poses = to_tensor(pose_images, width, height, signed=False).to(self._execution_device, self.pose_guider.dtype)
        return self.pose_guider(poses.permute(1, 0, 2, 3)[None]).to(self.unet.dtype)

    def record_reference(self, latent: torch.Tensor, embeds: torch.Tensor) -> None:
        """Run the ReferenceNet once on the character's latent at timestep 0, recording its features."""
        self.bank.mode, self.bank.features = "write", {}
        try:
            self.reference_unet(latent.to(self.reference_unet.dtype), torch.zeros((), device=latent.device),
                                encoder_hidden_states=embeds.to(self.reference_unet.dtype))
        finally:
            self.bank.mode = None

    def predict_noise(self, latents: torch.Tensor, t, embeds: torch.Tensor, pose_features: torch.Tensor,
                      guided: bool, reference: bool) -> torch.Tensor:
        """One denoiser forward for ``latents`` (B, 4, F, h, w): with ``guided``, the batch is [unconditional
        (zero embedding, no reference), conditional] and the result's two rows are the two predictions."""
        frames = latents.shape[2]
        branches = 2 if guided else 1
        context = torch.cat([torch.zeros_like(embeds), embeds]) if guided else embeds
        added = pose_features.permute(0, 2, 1, 3, 4).flatten(0, 1).repeat(branches, 1, 1, 1)  # (b f) order
        bank = self.bank
        bank.mode = "read" if reference and bank.features else None
        bank.frames, bank.plain_rows = frames, frames if guided else 0
        hook = self.unet.conv_in.register_forward_hook(lambda module, args, out: out + added)
        try:
            x = torch.cat([latents] * branches)
            # UNetMotionModel wants one context row per frame (the AnimateDiff pipelines repeat it, too)
            return self.unet(x, t, encoder_hidden_states=context.repeat_interleave(frames, dim=0)).sample
        finally:
            hook.remove()
            bank.mode = None

    @torch.no_grad()
    def __call__(self, reference_image: Image.Image, pose_images: list, num_inference_steps: int = 25,
                 guidance_scale: float = 3.5, height: int | None = None, width: int | None = None,
                 generator=None, latents: torch.Tensor | None = None, reference_attention: bool = True,
                 output_type: str = "pil", return_dict: bool = True):
        frames = len(pose_images)
        if not 1 <= frames <= MAX_FRAMES:
            raise ValueError(f"{frames} pose pictures: this pipeline makes 1 to {MAX_FRAMES} frames in one window")
        height = height or self.unet.config.sample_size * 8
        width = width or self.unet.config.sample_size * 8
        device, dtype = self._execution_device, self.unet.dtype
        guided = guidance_scale > 1

        embeds, ref_latent = self.encode_character(reference_image, width, height)
        pose_features = self.encode_poses(pose_images, width, height)
        shape = (1, self.unet.config.in_channels, frames, height // 8, width // 8)
        if latents is None:
            latents = torch.randn(shape, generator=generator, dtype=torch.float32)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = latents.to(device, dtype) * self.scheduler.init_noise_sigma
        self.bank.features = {}
        if reference_attention:
            self.record_reference(ref_latent, embeds)
        try:
            for t in self.progress_bar(self.scheduler.timesteps):
                model_in = self.scheduler.scale_model_input(latents, t)
                noise = self.predict_noise(model_in, t, embeds, pose_features, guided, reference_attention)
                if guided:
                    uncond, cond = noise.chunk(2)
                    noise = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(noise, t, latents, generator=generator).prev_sample
        finally:
            self.bank.features = {}

        if output_type == "latent":
            return latents
        video = []
        for i in range(frames):  # one frame at a time through the VAE, as published
            x = self.vae.decode(latents[:, :, i].to(self.vae.dtype) / self.vae.config.scaling_factor).sample
            video.append((x / 2 + 0.5).clamp(0, 1))
        video = torch.cat(video).permute(0, 2, 3, 1).float().cpu().numpy()
        out = video if output_type == "np" else self.numpy_to_pil(video)
        return AnimateAnyoneOutput(frames=out) if return_dict else (out,)


@dataclass
class AnimateAnyoneOutput(BaseOutput):
    frames: list | np.ndarray
