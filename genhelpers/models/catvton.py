"""CatVTON (Chong et al., 2024, arXiv 2407.15886) as a plain diffusers pipeline: virtual try-on with the Stable
Diffusion 1.5 inpainting UNet, no text encoder, and only its self-attention weights fine-tuned.

The idea in three lines: the person and the garment are put on **one canvas twice as tall** (person on top,
garment below, concatenated along the latent's height); the inpainting UNet repaints the masked part of the
person while its self-attention, which spans the whole canvas, looks at the garment; the output is the top half.
There is no prompt: every cross-attention layer is *skipped*, and skipping means the transformer block still adds
``norm2(h)`` to ``h`` (the processor returns its input, which the block adds to the residual), exactly as the
weights were trained.

Published behaviour we follow (Zheng-Chong/CatVTON at 3b79536, read for behaviour, not copied; the facts are in
tests/reference/virtual_tryon/reference_behaviour.json): DDIM from the base's scheduler config, eta 1 with the
caller's generator; inputs ``[noisy latent 4, mask latent 1, condition latent 4]``; mask latent = the nearest
resize of the binarised mask, zeros for the garment half; condition = ``[VAE(person · (mask < 0.5)), VAE(garment)]``
scaled by the VAE factor; classifier-free guidance (when the scale is > 1) batches ``[unconditional, conditional]``
where the unconditional branch has the garment latent replaced by zeros; the result is the top half, decoded.
The attention file's keys are indices into the authors' list of every UNet module whose name contains ``attn1``
(8 per block, mid block last): ``attention_keys`` rebuilds that enumeration and resolves every alias to the UNet
parameter it names.

Where we differ on purpose: the two VAE samples (masked person, then garment) are drawn from the caller's
generator, before the starting noise, instead of from torch's global generator, so a seed reproduces a result
(``vae_sample="mode"`` uses the distributions' means instead); the repaint step (``outputs.tryon.repaint``) is
offered by the notebook as the authors' inference script offers it; no safety checker runs (the authors' default
runs one; their inference script skips it). On a GPU the UNet runs with PyTorch's fused attention and its plain
"math" kernel forbidden: at 1024×768 the canvas has 24,576 tokens and the math kernel would hold a 24,576² float32
attention matrix per head (CatVTON issue #133: 36 GiB on a T4).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput
from diffusers.models.attention_processor import AttnProcessor2_0

REPO = "zhengchong/CatVTON"  # the attention weights; licence CC BY-NC-SA 4.0 (non-commercial)
LICENCE = "CC BY-NC-SA 4.0 (non-commercial, share-alike)"
LICENCE_URL = "https://github.com/Zheng-Chong/CatVTON/blob/main/LICENSE"
VERSIONS = {"mix": "mix-48k-1024", "vitonhd": "vitonhd-16k-512", "dresscode": "dresscode-16k-512"}
NATIVE_SIZE = {"mix": (1024, 768), "vitonhd": (512, 384), "dresscode": (512, 384)}  # (height, width) trained at
# one attn1 block of the authors' list: the Attention module, its projections, the output list and its two
# entries, and the authors' processor (an nn.Module without parameters): 8 entries, in named_modules() order
SLOTS = ("", "to_q", "to_k", "to_v", "to_out", "to_out.0", "to_out.1", "processor")
TRAINED = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias")


# ------------------------------------------------------------------------------------------ attention processors
class SkipCrossAttention:
    """attn2 without a text encoder: return the (normalised) input. The transformer block adds it to its
    residual, so the block computes ``h + norm2(h)``, as CatVTON was trained. Removing attn2, or returning zeros,
    would be another model."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        return hidden_states


def install_processors(unet) -> None:
    """Self-attention: PyTorch's scaled-dot-product attention; cross-attention: skipped."""
    unet.set_attn_processor({name: SkipCrossAttention() if name.endswith("attn2.processor") else AttnProcessor2_0()
                             for name in unet.attn_processors})


def attention_blocks(unet) -> list[str]:
    """The self-attention modules in the authors' order: named_modules() order, i.e. down blocks, up blocks, then
    the mid block (UNet2DConditionModel registers it last)."""
    return [name for name, _ in unet.named_modules() if name.endswith("attn1")]


def attention_keys(unet) -> dict[str, str]:
    """Every key the authors' saver may write -> the UNet parameter it names. Block i starts at index 8·i; a
    parameter has one alias per slot that contains it (``8.to_k.weight`` and ``10.weight`` are the same tensor)."""
    keys = {}
    for i, block in enumerate(attention_blocks(unet)):
        for s, slot in enumerate(SLOTS):
            for p in TRAINED:
                if not slot:
                    keys[f"{8 * i + s}.{p}"] = f"{block}.{p}"
                elif p.startswith(slot + "."):
                    keys[f"{8 * i + s}.{p[len(slot) + 1:]}"] = f"{block}.{p}"
    return keys


def read_header(file) -> dict:
    """The safetensors header (a JSON block at the start of the file): names, dtypes, shapes, metadata. No
    tensor is read and no pickle is involved."""
    import json
    import struct

    size = Path(file).stat().st_size
    with open(file, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8).ljust(8, b"\0"))
        text = f.read(length) if 2 <= length <= size - 8 else b""
    if not text.startswith(b"{"):
        raise ValueError(f"{file} is not a safetensors file (its first bytes are no header length and JSON): a "
                         f"pickle or an incomplete download? It is not opened; fetch the .safetensors file again")
    return json.loads(text)


def read_attention(unet, file) -> tuple[dict, dict]:
    """({UNet parameter name: tensor}, report) from a CatVTON attention file, every key resolved and checked:
    each of the UNet's attn1 tensors set exactly once, with its shape. Raises ValueError naming the problem."""
    from safetensors import safe_open

    header = read_header(file)
    meta = header.get("__metadata__", {})  # save_model also records there which aliases it dropped
    names = [k for k in header if k != "__metadata__"]
    keys = attention_keys(unet)
    params = dict(unet.named_parameters())
    found, landed = {}, {}
    with safe_open(str(file), framework="pt") as f:
        for key in sorted(names, key=lambda k: (int(k.split(".")[0]) if k.split(".")[0].isdigit() else -1, k)):
            if key not in keys:
                raise ValueError(f"{file}: key {key!r} names no self-attention weight of this UNet (CatVTON's keys "
                                 f"are '<index>.<name>' with index 8·block + slot over "
                                 f"{len(attention_blocks(unet))} attn1 blocks, mid block last): is this a CatVTON "
                                 f"attention file, for the SD 1.5 inpainting UNet?")
            target = keys[key]
            if target in found:
                raise ValueError(f"{file}: {key!r} and {landed[target]!r} both set {target}: a file must hold each "
                                 f"tensor once")
            shape = tuple(header[key]["shape"])
            if shape != tuple(params[target].shape):
                raise ValueError(f"{file}: {key!r} has shape {shape} but {target} is {tuple(params[target].shape)}: "
                                 f"the file was made for another UNet (CatVTON needs the SD 1.5 inpainting one)")
            found[target], landed[target] = f.get_tensor(key), key
    missing = [n for n in dict.fromkeys(keys.values()) if n not in found]
    if missing:
        raise ValueError(f"{file}: {len(missing)} of {len(set(keys.values()))} self-attention tensors are missing, "
                         f"the first is {missing[0]}: an incomplete download? Delete the file and fetch it again")
    report = {"file": str(file), "keys": len(names), "tensors": len(found),
              "parameters": sum(t.numel() for t in found.values()),
              "metadata": {"format": meta.get("format"), "other_entries": len(meta) - ("format" in meta)},
              "dtypes": sorted({header[k]["dtype"] for k in names}), "first_keys": names[:10],
              "blocks": [{"block": b, "keys": [landed[f"{b}.{p}"] for p in TRAINED]}
                         for b in attention_blocks(unet)]}
    return found, report


def load_catvton_attention(unet, file) -> dict:
    """Read a CatVTON attention file into ``unet``'s self-attention weights (in the UNet's dtype); returns the
    report of where each key landed."""
    tensors, report = read_attention(unet, file)
    swap_attention(unet, tensors)
    return report


def attention_state(unet) -> dict:
    """A copy of the UNet's self-attention weights (to compare with and without CatVTON's)."""
    params = dict(unet.named_parameters())
    return {name: params[name].detach().clone() for name in dict.fromkeys(attention_keys(unet).values())}


def swap_attention(unet, tensors: dict) -> dict:
    """Put ``tensors`` into the UNet's self-attention weights; returns the weights they replaced."""
    params = dict(unet.named_parameters())
    old = {}
    with torch.no_grad():
        for name, value in tensors.items():
            old[name] = params[name].detach().clone()
            params[name].copy_(value.to(params[name].dtype))
    return old


@contextlib.contextmanager
def attention_swapped(unet, tensors: dict):
    """Run with other self-attention weights (e.g. the base's own), then put the previous ones back."""
    old = swap_attention(unet, tensors)
    try:
        yield
    finally:
        swap_attention(unet, old)


# ------------------------------------------------------------------------------------------ the weights file
def attention_file(ref: str, version: str) -> Path:
    """The attention file of ``version`` ('mix', 'vitonhd', 'dresscode'): from a twin (``tiny:catvton``), a local
    copy of the repository, an attached Kaggle dataset named after it, or the hub — only that one file (the
    repository also holds pickled DensePose/SCHP weights, which are never fetched)."""
    from ..hub import weights

    inside = f"{VERSIONS[version]}/attention/model.safetensors"
    kind = weights.kind_of(ref)
    folder = None
    if kind in ("tiny", "path", "kaggle"):
        folder = weights.resolve(ref).path
    elif (mounted := weights.from_kaggle_input(ref)) is not None:
        folder = mounted
    if folder is not None:
        for candidate in (folder / inside, folder / "attention" / "model.safetensors", folder / "model.safetensors"):
            if candidate.is_file():
                return candidate
        raise weights.WeightsNotFound(f"{folder} holds no {inside}: attach or copy the repository {REPO} with its "
                                      f"folder {VERSIONS[version]}/attention/")
    return _from_hub(ref, inside)


def _from_hub(repo: str, inside: str) -> Path:
    from huggingface_hub import hf_hub_download

    from ..hub import weights

    try:
        return Path(hf_hub_download(repo, inside, token=weights.hub_token(), local_files_only=weights.offline()))
    except Exception as e:
        why = "HF_HUB_OFFLINE=1 and it is not in the hub cache" if weights.offline() else f"{type(e).__name__}: {e}"
        raise weights.WeightsNotFound(
            f"could not get {repo}/{inside} ({why.splitlines()[0]}). Turn the internet on (Kaggle: Settings → "
            f"Internet on), or attach a copy of {repo} as a dataset named '{repo.split('/')[-1]}', or give "
            f"attention_model='/path/to/a/copy'; for a CPU smoke run use attention_model='tiny:catvton'") from e


def sha256(file) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ the pipeline
def to_tensor(image, device, dtype):
    """RGB picture -> (1, 3, H, W) in [-1, 1]."""
    import numpy as np

    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
    return (x / 127.5 - 1).to(device, dtype)


def mask_tensor(mask, device, dtype):
    """L picture -> (1, 1, H, W) of 0 and 1 (binarised at 0.5: 1 marks where the garment goes)."""
    import numpy as np

    m = torch.from_numpy(np.asarray(mask.convert("L"), dtype=np.float32))[None, None] / 255
    return (m >= 0.5).to(device, dtype)


class CatVTONPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "unet->vae"

    def __init__(self, vae, unet, scheduler):
        super().__init__()
        if unet is not None and unet.config.in_channels != 9:
            raise ValueError(f"CatVTON needs an inpainting UNet (9 input channels: noisy latent 4, mask 1, condition "
                             f"4); this one has {unet.config.in_channels}: use base_model="
                             f"'stable-diffusion-v1-5/stable-diffusion-inpainting'")
        if not isinstance(scheduler, DDIMScheduler):  # the authors sample with DDIM, whatever the config names
            scheduler = DDIMScheduler.from_config(scheduler.config)
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)
        install_processors(unet)

    def set_attention_slice(self, slice_size):
        """Sliced attention for the memory plans that ask for it, on self-attention only: attn2 stays skipped."""
        super().set_attention_slice(slice_size)
        self.unet.set_attn_processor({name: SkipCrossAttention() if name.endswith("attn2.processor") else proc
                                      for name, proc in self.unet.attn_processors.items()})

    def _encode(self, x, generator, vae_sample):
        dist = self.vae.encode(x).latent_dist
        z = dist.mode() if vae_sample == "mode" else dist.sample(generator=generator)
        return z * self.vae.config.scaling_factor

    def _unet(self, x, t):
        if x.device.type != "cuda":
            return self.unet(x, t, encoder_hidden_states=None, return_dict=False)[0]
        from torch.nn.attention import SDPBackend, sdpa_kernel

        fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
        with sdpa_kernel(fused):  # never the math kernel: it would materialise the attention matrices
            return self.unet(x, t, encoder_hidden_states=None, return_dict=False)[0]

    @torch.no_grad()
    def __call__(self, person, garment, mask, num_inference_steps: int = 50, guidance_scale: float = 2.5,
                 eta: float = 1.0, generator=None, vae_sample: str = "generator", output_type: str = "pil"):
        """``person``, ``garment``, ``mask``: pictures of one size (prepared with ``outputs.tryon.inputs``);
        returns the try-on picture of that size (``output_type="latent"``: the top half's latents)."""
        device, dtype = self._execution_device, self.unet.dtype
        if not (person.size == garment.size == mask.size):
            raise ValueError(f"person {person.size}, garment {garment.size} and mask {mask.size} must have one size "
                             f"(prepare them with genhelpers.outputs.tryon.inputs)")
        m = mask_tensor(mask, device, dtype)
        masked_person = to_tensor(person, device, dtype) * (m < 0.5)  # the region to repaint becomes mid-grey
        person_latent = self._encode(masked_person, generator, vae_sample)  # first the masked person,
        garment_latent = self._encode(to_tensor(garment, device, dtype), generator, vae_sample)  # then the garment
        h = person_latent.shape[-2]
        mask_latent = torch.nn.functional.interpolate(m, size=person_latent.shape[-2:], mode="nearest")
        # one canvas twice as tall: person on top, garment below (dim -2 is the height)
        condition = torch.cat([person_latent, garment_latent], dim=-2)
        mask_canvas = torch.cat([mask_latent, torch.zeros_like(mask_latent)], dim=-2)
        cfg = guidance_scale > 1
        if cfg:  # [unconditional, conditional]: the unconditional branch sees no garment
            unconditional = torch.cat([person_latent, torch.zeros_like(garment_latent)], dim=-2)
            condition = torch.cat([unconditional, condition])
            mask_canvas = torch.cat([mask_canvas] * 2)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = torch.randn(condition[-1:].shape, generator=generator, dtype=torch.float32).to(device, dtype)
        latents = latents * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            noisy = self.scheduler.scale_model_input(torch.cat([latents] * (2 if cfg else 1)), t)
            noise = self._unet(torch.cat([noisy, mask_canvas, condition], dim=1), t)
            if cfg:
                unconditional_noise, conditional_noise = noise.chunk(2)
                noise = unconditional_noise + guidance_scale * (conditional_noise - unconditional_noise)
            latents = self.scheduler.step(noise, t, latents, eta=eta, generator=generator).prev_sample
        top = latents[..., :h, :]  # the person half; the garment half is discarded
        if output_type == "latent":
            return top
        decoded = self.vae.decode(top / self.vae.config.scaling_factor).sample
        images = (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return ImagePipelineOutput(images=images if output_type == "np" else self.numpy_to_pil(images))
