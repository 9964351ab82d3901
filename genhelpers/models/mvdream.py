"""MVDream (and the ImageDream UNet) written here: a multi-view UNet and a text-to-4-views pipeline that load
the published ``ashawkey/mvdream-sd2.1-diffusers`` folder as it is, and a converter from the original
``sd-v2.1-base-4view`` checkpoint. Written from the published description (../shared/reference/mvdream): the
parameter names and shapes, configs, scheduler and camera numbers; no upstream code and no remote code.

The idea in one paragraph: a Stable Diffusion 2.1 UNet is fine-tuned to denoise F pictures of one object at once.
In every transformer block the self-attention runs over the tokens of *all F views together* (one long
sequence), so each view sees the others and they agree about the object; the cross-attention to the prompt stays
per view; and each view gets its camera (a 4×4 camera-to-world matrix, flattened) through a small MLP whose
output is added to the timestep embedding.

Sampling follows the diffusers port the weights are published in (ashawkey/mvdream_diffusers by Jiaxiang Tang, not
one of the MVDream authors; read for behaviour, not copied): DDIM,
classifier-free guidance over [negative prompt × views, prompt × views] with the cameras repeated for both
halves; ImageDream adds the CLIP image tokens (zeros in the unconditional half) and the input's VAE latent as one
more frame with an all-zero camera (zeros in the unconditional half). Where we differ on purpose:
  * every random draw comes from the caller's generator (the port samples the image latent from the global RNG),
    so the same seed gives the same views;
  * a cut-out RGBA input is composited onto white before both encoders, as the port does (the original
    ImageDream code uses grey); dropping the alpha channel would show the model whatever colour is stored under
    the transparency;
  * the input is resized to the output size with antialiased bicubic filtering (the port: bilinear without
    antialiasing, to 256 px), which is closer to the original ImageDream preprocessing.
The port's scripts sample with guidance 5, 30 steps, elevation 0 and an empty negative prompt, and the notebook uses
those; the authors' own script (bytedance/MVDream scripts/t2i.py) samples at elevation 15, first camera at azimuth
90, 50 steps, guidance 10, and ImageDream's original at elevation 5. ``joint_attention=False`` (in no published
pipeline) lets every view attend only to itself, for the lesson's on/off comparison.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from .mvdream_unet import MultiViewUNetModel

# ------------------------------------------------------------------------------------------------- cameras


def cameras(num_frames: int = 4, elevation: float = 15.0, azimuth_start: float = 0.0, azimuth_span: float = 360.0,
            blender_coord: bool = True, extra_view: bool = False) -> torch.Tensor:
    """The camera of each view as a camera-to-world 4×4 matrix flattened row by row ([views, 16], float32).

    Views sit on the unit sphere around the object, evenly spaced in azimuth from ``azimuth_start`` over
    ``azimuth_span`` degrees, all at ``elevation`` degrees above the horizon, each looking at the centre.
    In Blender's z-up world (the published convention): right = (cos a, sin a, 0), up = (-sin e sin a,
    sin e cos a, cos e), back = (cos e sin a, -cos e cos a, sin e), and the position is ``back`` (radius 1), so
    azimuth 0 looks from -y and 90 from +x. With ``blender_coord=False`` the same cameras are written in the
    y-up (OpenGL) world. ``extra_view`` appends ImageDream's all-zero row for its reference frame."""
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames={num_frames!r} must be a whole number of views ≥ 1 (MVDream was trained on 4)")
    rows = []
    for k in range(num_frames):
        a = math.radians(azimuth_start + k * azimuth_span / num_frames)
        e = math.radians(elevation)
        right = (math.cos(a), math.sin(a), 0.0)
        up = (-math.sin(e) * math.sin(a), math.sin(e) * math.cos(a), math.cos(e))
        back = (math.cos(e) * math.sin(a), -math.cos(e) * math.cos(a), math.sin(e))
        m = [[right[i], up[i], back[i], back[i]] for i in range(3)] + [[0.0, 0.0, 0.0, 1.0]]
        if not blender_coord:  # Blender (x, y, z) = OpenGL (x, -z, y): back to OpenGL rows (x, z, -y)
            m = [m[0], m[2], [-v for v in m[1]], m[3]]
        rows.append([v for row in m for v in row])
    if extra_view:
        rows.append([0.0] * 16)
    return torch.tensor(rows, dtype=torch.float64).float()


def camera_records(num_frames: int = 4, elevation: float = 0.0, azimuth_start: float = 0.0) -> list[dict]:
    """The cameras of a run as data for sidecars: angles and the 16 numbers the UNet saw."""
    matrix = cameras(num_frames, elevation, azimuth_start)
    return [{"view": k, "azimuth_deg": round((azimuth_start + k * 360 / num_frames) % 360, 4),
             "elevation_deg": elevation, "camera_to_world": [round(v, 6) + 0.0 for v in matrix[k].tolist()]}
            for k in range(num_frames)]


# ----------------------------------------------------------------------------------------------- pipeline

PUBLISHED_INDEX = {  # the unet entry of the published model_index.json names the port's module
    "unet": ["mv_unet", "MultiViewUNetModel"],
}
COMPONENTS = {  # folder -> (library, class) we load it with: always our own or a library's class, never hub code
    "vae": ("diffusers", "AutoencoderKL"),
    "text_encoder": ("transformers", "CLIPTextModel"),
    "tokenizer": ("transformers", "CLIPTokenizer"),
    "unet": (__name__, "MultiViewUNetModel"),
    "scheduler": ("diffusers", "DDIMScheduler"),
}


OPTIONAL = {"feature_extractor": "CLIPImageProcessor", "image_encoder": "CLIPVisionModel"}  # ImageDream


class MVDreamPipeline(DiffusionPipeline):
    """Text -> ``num_frames`` views of one object (4 by default, 256×256) around a circle of cameras. Loaded
    from an ImageDream folder (a UNet with ``ip_dim`` and a CLIP image encoder) it also takes ``image``: the
    views then show the pictured object, the prompt is optional."""

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["feature_extractor", "image_encoder"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, feature_extractor=None, image_encoder=None,
                 requires_safety_checker: bool = False):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, feature_extractor=feature_extractor, image_encoder=image_encoder)
        self.register_to_config(requires_safety_checker=requires_safety_checker)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    @classmethod
    def from_pretrained(cls, path, dtype=None, variant=None, use_safetensors: bool = True, device_map=None,
                        max_memory=None, torch_dtype=None, **components):
        """Load the published folder component by component with known classes. The published index names the
        port's own module for the UNet (and may name its pipeline file); diffusers would try remote code for
        those, so we read the folder ourselves. Components passed by keyword replace the folder's."""
        import diffusers
        import transformers

        if device_map is not None:
            raise ValueError("MVDreamPipeline does not spread over several GPUs (it fits one: ~2.6 GB in fp16); "
                             "use memory='gpu' or an offload plan")
        path, dtype = Path(path), dtype or torch_dtype
        index = json.loads((path / "model_index.json").read_text())
        libraries = {"diffusers": diffusers, "transformers": transformers}
        loaded = {}
        for name, (lib, cls_name) in COMPONENTS.items():
            if components.get(name) is not None:
                loaded[name] = components[name]
                continue
            if name not in index or not (path / name).is_dir():
                raise FileNotFoundError(f"{path} has no {name}/ folder: an MVDream folder holds "
                                        f"{', '.join(COMPONENTS)} (see ashawkey/mvdream-sd2.1-diffusers)")
            klass = MultiViewUNetModel if lib == __name__ else getattr(libraries[lib], cls_name)
            kwargs = {}
            if name in ("vae", "unet"):
                kwargs = dict(torch_dtype=dtype, variant=variant, use_safetensors=use_safetensors)
            elif name == "text_encoder":
                kwargs = dict(dtype=dtype, variant=variant, use_safetensors=use_safetensors)
            loaded[name] = klass.from_pretrained(path, subfolder=name, **kwargs)
        for name, cls_name in OPTIONAL.items():  # ImageDream's image prompt encoder, when the index lists it
            if components.get(name) is not None or not (index.get(name) or [None])[0]:
                loaded[name] = components.get(name)
                continue
            klass = getattr(transformers, cls_name)
            kwargs = dict(dtype=dtype, use_safetensors=use_safetensors) if name == "image_encoder" else {}
            loaded[name] = klass.from_pretrained(path, subfolder=name, **kwargs)
        return cls(**loaded, requires_safety_checker=bool(index.get("requires_safety_checker", False)))

    def save_pretrained(self, save_directory, **kwargs):
        """diffusers' save, then the published index: the UNet entry names the port's module, as on the hub."""
        super().save_pretrained(save_directory, **kwargs)
        index_path = Path(save_directory) / "model_index.json"
        index = json.loads(index_path.read_text())
        index.update(PUBLISHED_INDEX)
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    @torch.no_grad()
    def encode_prompt(self, prompt: str, device, dtype):
        ids = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(device))[0].to(dtype)

    def check_inputs(self, prompt, height, width, num_frames, camera, image=None):
        if image is not None and (self.image_encoder is None or not self.unet.config.ip_dim):
            raise ValueError("image= needs an ImageDream model (ashawkey/imagedream-ipmv-diffusers): this MVDream "
                             "model has no image encoder; describe the object in the prompt instead")
        if self.unet.config.ip_dim and image is None:
            raise ValueError("this is an ImageDream model: pass image= (a PIL picture of one object)")
        if image is not None and prompt == "":
            pass  # ImageDream may run on the picture alone
        elif not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt={prompt!r} is empty: describe one object, e.g. 'a wooden toy robot, 3d asset'")
        for name, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v <= 0 or v % 8:
                raise ValueError(f"{name}={v!r} must be a positive multiple of 8 (the VAE shrinks images 8×); "
                                 f"MVDream was trained at 256")
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"num_frames={num_frames!r} must be a whole number of views ≥ 1 (4 is what MVDream "
                             f"was trained on)")
        if camera is not None and tuple(camera.shape) != (num_frames, 16):
            raise ValueError(f"camera has shape {tuple(camera.shape)} but num_frames={num_frames}: give one "
                             f"flattened 4×4 matrix per view, shape ({num_frames}, 16), e.g. cameras({num_frames})")

    @torch.no_grad()
    def __call__(self, prompt: str, negative_prompt: str = "", num_inference_steps: int = 50,
                 guidance_scale: float = 7.0, elevation: float = 0.0, azimuth_start: float = 0.0,
                 num_frames: int = 4, height: int = 256, width: int = 256, camera: torch.Tensor | None = None,
                 eta: float = 0.0, generator=None, latents=None, output_type: str = "pil", image=None,
                 joint_attention: bool = True):
        """Returns a list of ``num_frames`` views (PIL images, or a numpy array [views, h, w, 3] in [0, 1] with
        ``output_type="np"``). ``camera`` overrides the circle of cameras given by elevation/azimuth_start.
        ``image`` (ImageDream): the object to show; it rides along as one more frame with an all-zero camera.
        ``joint_attention=False``: each view's self-attention sees only its own tokens (the cameras stay), the
        model's one change to SD's attention switched off — a setting it never saw in training."""
        self.check_inputs(prompt, height, width, num_frames, camera, image)
        if not joint_attention and image is not None:
            raise ValueError("joint_attention=False is for text → views: ImageDream's picture reaches the views only "
                             "through the joint attention (it rides along as one more view)")
        device, dtype = self._execution_device, self.unet.dtype
        camera = cameras(num_frames, elevation, azimuth_start) if camera is None else camera
        frames = num_frames + (image is not None)
        if image is not None:
            camera = torch.cat([camera, torch.zeros(1, 16)])
        guided = guidance_scale > 1.0
        text = self.encode_prompt(prompt, device, dtype).repeat(frames, 1, 1)
        camera = camera.to(device, dtype)
        extra = {}
        if image is not None:
            ip, ip_img = self.encode_image(image, height, width, device, dtype, generator)
            extra = {"ip": ip.repeat(frames, 1, 1), "ip_img": ip_img}
        if guided:
            negative = self.encode_prompt(negative_prompt or "", device, dtype).repeat(frames, 1, 1)
            text, camera = torch.cat([negative, text]), torch.cat([camera, camera])
            if extra:  # the unconditional branch sees no picture: zeros, as ImageDream was trained
                extra = {k: torch.cat([torch.zeros_like(v), v]) for k, v in extra.items()}

        shape = (frames, self.unet.config.in_channels, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        if latents is None:
            from diffusers.utils.torch_utils import randn_tensor

            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.to(device, dtype) * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        step_kwargs = self.prepare_extra_step_kwargs(generator, eta)
        for t in self.progress_bar(self.scheduler.timesteps):
            x = torch.cat([latents, latents]) if guided else latents
            x = self.scheduler.scale_model_input(x, t)
            # the UNet groups num_frames consecutive pictures into one object for its self-attention: 1 = each alone
            noise = self.unet(x, t, text, camera=camera, num_frames=frames if joint_attention else 1, **extra)
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise, t, latents, **step_kwargs).prev_sample

        latents = latents[:num_frames]  # ImageDream's reference frame is the input, not a view
        images = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        images = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        self.maybe_free_model_hooks()
        return images if output_type == "np" else self.numpy_to_pil(images)

    @torch.no_grad()
    def encode_image(self, image, height, width, device, dtype, generator=None):
        """ImageDream's two views of the input picture: the CLIP vision tower's second-to-last hidden states
        ([1, 257, 1280] for ViT-H/14), and its VAE latent at the output size (written into the reference frame)."""
        import numpy as np
        from PIL import Image

        from ..outputs.images import flatten_alpha

        image = flatten_alpha(image, (255, 255, 255))  # a cut-out object on white, as the port composites it
        pixels = self.feature_extractor(images=image, return_tensors="pt").pixel_values
        hidden = self.image_encoder(pixels.to(device, self.image_encoder.dtype), output_hidden_states=True)
        ip = hidden.hidden_states[-2].to(dtype)
        # antialiased bicubic resize (the port: bilinear without antialiasing; ours is closer to the original)
        small = np.asarray(image.resize((width, height), Image.BICUBIC), dtype=np.float32) / 127.5 - 1
        x = torch.from_numpy(small).permute(2, 0, 1)[None].to(device, self.vae.dtype)
        posterior = self.vae.encode(x).latent_dist
        ip_img = posterior.sample(generator) * self.vae.config.scaling_factor
        return ip, ip_img.to(dtype)

    def prepare_extra_step_kwargs(self, generator, eta):
        import inspect

        accepted = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in accepted}


# ------------------------------------------------------------------------------------------------ convert

ORIGINAL_PREFIX = "model.diffusion_model."
PUBLISHED_UNET_CONFIG = dict(image_size=32, in_channels=4, model_channels=320, out_channels=4, num_res_blocks=2,
                             attention_resolutions=[4, 2, 1], channel_mult=[1, 2, 4, 4], num_head_channels=64,
                             transformer_depth=1, context_dim=1024, camera_dim=16, use_checkpoint=False)


def published_scheduler():
    """The published DDIM setup (SD2.1-base's schedule, epsilon prediction)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                         steps_offset=1, clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")


def unet_from_original(state_dict: dict, config: dict | None = None) -> MultiViewUNetModel:
    """The UNet of an original MVDream/ImageDream checkpoint (keys under ``model.diffusion_model.``), loaded
    strictly into our class at the published config (ImageDream's when the image keys are present)."""
    unet_sd = {k[len(ORIGINAL_PREFIX):]: v for k, v in state_dict.items() if k.startswith(ORIGINAL_PREFIX)}
    if not unet_sd:
        raise ValueError(f"no keys start with {ORIGINAL_PREFIX!r}: this is not an original MVDream checkpoint "
                         f"(the diffusers folder loads directly with genhelpers.load)")
    config = dict(config or PUBLISHED_UNET_CONFIG)
    if "image_embed.latents" in unet_sd and not config.get("ip_dim"):
        config["ip_dim"] = unet_sd["image_embed.latents"].shape[1]
    with torch.device("meta"):
        unet = MultiViewUNetModel(**config)
    unet.load_state_dict(unet_sd, strict=True, assign=True)
    return unet.eval()


def read_checkpoint(path) -> dict:
    """A single-file checkpoint as a flat state dict: ``.safetensors`` directly; ``.pt``/``.ckpt`` with pickle
    restricted to tensors (``weights_only=True``), so opening it runs no code."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return sd.get("state_dict", sd) if isinstance(sd, dict) else sd


def convert_original(checkpoint, base, out, half: bool = True, unet_config: dict | None = None) -> Path:
    """Write the published diffusers layout from the original single-file checkpoint.

    The UNet comes from ``checkpoint``. MVDream fine-tunes only the UNet of Stable Diffusion 2.1-base; the VAE,
    text encoder and tokenizer are SD2.1-base's unchanged, so they are taken from ``base`` (a loaded MVDream or
    SD2.1 pipeline, e.g. ``genhelpers.load("stabilityai/stable-diffusion-2-1-base", memory=None)``). The
    scheduler is the published DDIM setup. ``unet_config``: the published one unless given. Written atomically:
    ``out`` appears complete or not at all."""
    from ..outputs.media import atomic_dir

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"out={str(out)!r} exists: choose a new folder (nothing is overwritten)")
    unet = unet_from_original(read_checkpoint(checkpoint), unet_config)
    scheduler = published_scheduler()
    dtype = torch.float16 if half else torch.float32
    pipe = MVDreamPipeline(vae=base.vae.to(dtype), text_encoder=base.text_encoder.to(dtype), tokenizer=base.tokenizer,
                           unet=unet.to(dtype), scheduler=scheduler)
    with atomic_dir(out) as work:
        pipe.save_pretrained(work, safe_serialization=True)
    return out
