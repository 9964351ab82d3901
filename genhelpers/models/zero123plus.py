"""Zero123++ as a plain diffusers pipeline: loads the published sudo-ai/zero123plus-v1.1 / -v1.2 folders as they
are laid out, with no remote code. Written from the published description (../shared/reference/zero123plus).

One input picture -> one 640×960 image tiling six views (3 rows × 2 columns of 320×320) at fixed cameras.
Two kinds of conditioning:
  * reference attention: the input's VAE latent, noised to the current timestep, goes through the UNet once per
    step in "write" mode, where every self-attention layer records its input; the denoising pass then runs in
    "read" mode, where each self-attention layer attends to its own tokens *and* the recorded ones. That is how
    fine detail of the input reaches all six views. Implemented as a diffusers attention processor.
  * global conditioning: the CLIP image embedding of the input, scaled per token by ``ramping_coefficients``,
    is added to the encoding of the empty prompt.
Classifier-free guidance pairs the conditional branch with an unconditional one whose reference is the latent of
an all-zero image and whose text encoding is the prompt's alone.

Published behaviour we follow (the authors' diffusers pipeline, SUDO-AI-3D/zero123plus, read for behaviour,
not copied): the reference latent is the *raw* VAE latent of the input, sampled from the latent distribution —
no image scale transform, no ``scaling_factor``, no latent scale transform (those three apply to the latents
being denoised only); the unconditional reference is the zero image encoded the same raw way; the depth
ControlNet's image is given in [-1, 1] with a conditioning scale of 0.75; the scheduler always uses trailing
timestep spacing; guidance ≤ 1 runs the conditional branch alone; ``output_type="latent"`` returns the latents
after the latent un-scaling. Where we differ on purpose: every random draw (reference latent sample, the noise
added to it, the starting noise) comes from the caller's generator, so a seed reproduces a result; and
``reference_attention=False`` (not in the authors' pipeline) skips the reference pass, for the lesson's on/off
comparison, while drawing the same random numbers.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from ..outputs.images import flatten_alpha

# Camera of each view, row by row (degrees): azimuth relative to the input view, elevation absolute (the authors'
# README, "Camera Parameters"). v1.1's field of view is not published.
CAMERAS = {
    "v1.1": {"azimuth": [30, 90, 150, 210, 270, 330], "elevation": [30, -20, 30, -20, 30, -20], "fov": None},
    "v1.2": {"azimuth": [30, 90, 150, 210, 270, 330], "elevation": [20, -10, 20, -10, 20, -10], "fov": 30},
}
GREY = 127
MIN_SIZE = 320


# The published scale transforms. At sampling time only the way back is used: the latents the UNet denoises
# live in the scaled space, and the condition latent is raw (see the module docstring).
def unscale_latents(x):
    return x / 0.75 + 0.22


def unscale_image(x):
    return x / 0.5 * 0.8


def prepare_input(image: Image.Image, min_size: int = MIN_SIZE) -> Image.Image:
    """RGBA composited onto grey 127, non-square padded to a square with grey, at least ``min_size`` pixels."""
    if min(image.size) < min_size and max(image.size) < min_size:
        raise ValueError(f"image is {image.width}×{image.height}: Zero123++ needs at least {min_size}×{min_size} "
                         f"(its views are {min_size} px); use a larger picture of the object")
    image = flatten_alpha(image, (GREY, GREY, GREY))
    side = max(image.size)
    if image.width != image.height:
        square = Image.new("RGB", (side, side), (GREY, GREY, GREY))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = square
    return image


def version_of(ref) -> str:
    """Which published version a model reference names (cameras differ); v1.2 unless it says 1.1."""
    return "v1.1" if "1.1" in str(ref) else "v1.2"


def cameras(ref) -> list[dict]:
    """The camera of each of the six views, as data for sidecars."""
    c = CAMERAS[version_of(ref)]
    return [{"view": i, "azimuth_deg": a, "elevation_deg": e, "fov_deg": c["fov"]}
            for i, (a, e) in enumerate(zip(c["azimuth"], c["elevation"], strict=True))]


def load_condition(path=None):
    """The input picture ready for the pipeline (None: a drawn demo picture), or a ParameterError naming
    ``image`` -- before any model loads."""
    from ..errors import ParameterError
    from ..outputs.images import demo_image, open_image

    try:
        return prepare_input(demo_image(MIN_SIZE) if path is None else open_image(path))
    except ValueError as e:
        raise ParameterError("image", str(e) if str(e).startswith("image") else f"image={str(path)!r}: {e}") from None


def demo_depth(width: int = 640, height: int = 960) -> Image.Image:
    """A depth grid for the ControlNet when none is given: in each of the six tiles, a ball (near = bright)."""
    import numpy as np

    tile = MIN_SIZE
    yy, xx = np.mgrid[0:tile, 0:tile] / tile - 0.5
    ball = np.clip(1 - (xx**2 + yy**2) / 0.12, 0, 1) ** 0.5
    grid = np.tile(ball, (height // tile, width // tile))
    return Image.fromarray((grid * 255).astype("uint8")).convert("RGB")


def split_views(grid: Image.Image, rows: int = 3, cols: int = 2) -> list[Image.Image]:
    """The six views of the tiled output, row by row."""
    w, h = grid.width // cols, grid.height // rows
    return [grid.crop((c * w, r * h, (c + 1) * w, (r + 1) * h)) for r in range(rows) for c in range(cols)]


class ReferenceStore:
    """Shared by the processors of one UNet: the mode of the current pass and the recorded tokens."""

    def __init__(self):
        self.mode: str | None = None  # None (plain attention) | "write" | "read"
        self.bank: dict[str, torch.Tensor] = {}


class ReferenceAttnProcessor:
    """Self-attention that records its input ("write") or also attends to the recorded input ("read").
    Cross-attention and the plain mode are PyTorch's scaled-dot-product attention, unchanged."""

    def __init__(self, name: str, store: ReferenceStore):
        self.name, self.store = name, store
        self.inner = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        context = encoder_hidden_states
        if encoder_hidden_states is None and self.store.mode == "write":
            self.store.bank[self.name] = hidden_states
        elif encoder_hidden_states is None and self.store.mode == "read":
            context = torch.cat([hidden_states, self.store.bank[self.name]], dim=1)
        return self.inner(attn, hidden_states, context, attention_mask, temb)


def install_reference_attention(unet) -> ReferenceStore:
    """Give every self-attention layer (``attn1``) of ``unet`` a reference processor; returns their store."""
    store = ReferenceStore()
    unet.set_attn_processor({name: ReferenceAttnProcessor(name, store) if name.endswith("attn1.processor")
                             else AttnProcessor2_0() for name in unet.attn_processors})
    return store


class Zero123PlusPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "vision_encoder->text_encoder->unet->vae"
    _optional_components = ["controlnet"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, vision_encoder, feature_extractor_clip,
                 feature_extractor_vae, controlnet=None, ramping_coefficients: list[float] | None = None):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, vision_encoder=vision_encoder,
                              feature_extractor_clip=feature_extractor_clip,
                              feature_extractor_vae=feature_extractor_vae, controlnet=controlnet)
        self.register_to_config(ramping_coefficients=ramping_coefficients)
        self.reference = install_reference_attention(unet)
        if scheduler is not None and scheduler.config.get("timestep_spacing") != "trailing":
            # the authors' entry points always sample with trailing spacing, whatever the saved config says
            self.scheduler = type(scheduler).from_config(scheduler.config, timestep_spacing="trailing")

    def _encode_condition(self, image, batch, device, dtype, generator):
        """(CLIP image embeddings of the input, raw reference latents for [zero image, input])."""
        pixels = self.feature_extractor_vae(images=image, return_tensors="pt").pixel_values.to(device, dtype)
        pixels = torch.cat([torch.zeros_like(pixels), pixels])  # [unconditional, conditional]
        latents = self.vae.encode(pixels).latent_dist.sample(generator=generator)  # raw: no scale transforms
        clip_pixels = self.feature_extractor_clip(images=image, return_tensors="pt").pixel_values.to(device, dtype)
        embeds = self.vision_encoder(clip_pixels).image_embeds
        return embeds.repeat_interleave(batch, 0), latents.repeat_interleave(batch, 0)

    def _encode_prompt(self, prompt, device, dtype):
        tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids.to(device)
        return self.text_encoder(tokens)[0].to(dtype)

    @torch.no_grad()
    def __call__(self, image: Image.Image, num_inference_steps: int = 28, guidance_scale: float = 4.0,
                 height: int = 960, width: int = 640, num_images_per_prompt: int = 1, generator=None,
                 depth_image: Image.Image | None = None, controlnet_conditioning_scale: float = 0.75,
                 reference_attention: bool = True, output_type: str = "pil", prompt: str = ""):
        device, dtype = self._execution_device, self.unet.dtype
        batch = num_images_per_prompt
        image = prepare_input(image)
        embeds, ref_latents = self._encode_condition(image, batch, device, dtype, generator)
        # unconditional: the empty prompt alone; conditional: the prompt plus the ramped image embedding
        empty = self._encode_prompt("", device, dtype).expand(batch, -1, -1)
        said = empty if prompt == "" else self._encode_prompt(prompt, device, dtype).expand(batch, -1, -1)
        ramp = torch.tensor(self.config.ramping_coefficients, device=device, dtype=dtype)[None, :, None]
        conditional = said + ramp * embeds[:, None, :]  # the image embedding steers the conditional branch only
        cfg = guidance_scale > 1  # at guidance ≤ 1 the conditional branch runs alone
        text = torch.cat([empty, conditional]) if cfg else conditional  # [unconditional, conditional]
        if not cfg:
            ref_latents = ref_latents[batch:]
        branches = 2 if cfg else 1

        control = None
        if depth_image is not None:
            if self.controlnet is None:
                raise ValueError("depth_image needs the depth ControlNet: load the pipeline with controlnet=...")
            depth = flatten_alpha(depth_image, (GREY, GREY, GREY)).resize((width, height), Image.BICUBIC)
            control = torch.from_numpy(np.asarray(depth, dtype="float32") / 127.5 - 1.0)  # [-1, 1] as published
            control = control.permute(2, 0, 1)[None].to(device, dtype).repeat(branches * batch, 1, 1, 1)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (batch, self.unet.config.in_channels, height // 8, width // 8)
        latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
        latents = latents * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            model_in = self.scheduler.scale_model_input(torch.cat([latents] * branches), t)
            # drawn even with reference attention off, so the switch changes nothing else (same random stream)
            noise = torch.randn(ref_latents.shape, generator=generator, dtype=torch.float32).to(device, dtype)
            if reference_attention:  # record the noised reference at this timestep
                ref_in = self.scheduler.scale_model_input(
                    self.scheduler.add_noise(ref_latents, noise, t.reshape(1)), t)
                self.reference.mode = "write"
                self.unet(ref_in, t, encoder_hidden_states=text)
                self.reference.mode = "read"
            residuals = {}
            if control is not None:
                down, mid = self.controlnet(model_in, t, encoder_hidden_states=text, controlnet_cond=control,
                                            conditioning_scale=controlnet_conditioning_scale, return_dict=False)
                residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
            try:
                noise_pred = self.unet(model_in, t, encoder_hidden_states=text, **residuals).sample
            finally:
                self.reference.mode, self.reference.bank = None, {}
            if cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise_pred, t, latents, generator=generator).prev_sample
        latents = unscale_latents(latents)
        if output_type == "latent":
            return latents
        decoded = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        images = (unscale_image(decoded).clamp(-1, 1) + 1) / 2
        images = images.permute(0, 2, 3, 1).float().cpu().numpy()
        return images if output_type == "np" else self.numpy_to_pil(images)
