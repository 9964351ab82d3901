"""Tune-A-Video, written with stock diffusers parts: one-shot tuning of an image model on one clip.

What we follow (Wu et al., "Tune-A-Video: One-Shot Tuning of Image Diffusion Models for Text-to-Video Generation",
ICCV 2023; the authors' code at showlab/Tune-A-Video, ``train_tuneavideo.py`` and ``configs/*.yaml``):

* the Stable Diffusion UNet is *inflated*: its spatial layers run on every frame, and temporal attention layers are
  inserted after them — here through diffusers' ``UNetMotionModel.from_unet2d`` with a fresh ``MotionAdapter``
  (one motion layer per spatial layer, as diffusers requires; no mid-block module), whose output projections we
  set to zero (diffusers initialises them at random), so the inflated UNet begins exactly as the image model;
* the spatial self-attention becomes **sparse-causal**: each frame's queries attend to the keys and values of the
  *first* frame and of the *previous* frame only (frame 0 attends to itself twice; no later frame sees itself),
  which keeps appearance consistent across frames at the cost of two frames' tokens instead of all;
* only the attention **queries** of the spatial layers (self- and cross-attention ``to_q``) and the temporal
  attention (its query, key, value and output projections) are trained, on the one clip and its caption, with the
  usual noise-prediction loss; the temporal layers' normalisations stay frozen at their initial values, as the
  authors' ``norm_temp`` does (their ``trainable_modules`` name only ``attn1.to_q``, ``attn2.to_q``, ``attn_temp``);
* AdamW (weight decay 1e-2), constant learning rate 3e-5 (the notebook's default), gradient norm clipped at 1.0;
* at inference the clip is **DDIM-inverted with the empty prompt**, as the authors' code does
  (``ddim_inversion(..., prompt="")``): the tuned model run backwards from the clean latents to noise. That noise is
  the starting point for edited prompts, which keeps the original motion; sampled forward with the same empty
  prompt and no guidance, it gives the clip back (``invert_clip``).

Deliberate differences:

* the temporal layers are AnimateDiff-style motion modules (two temporal self-attentions + a feed-forward, with
  positional encodings) rather than the paper's single bare temporal attention, because diffusers ships them. We
  train their attention projections and also their ``proj_in``/``proj_out`` linear layers, which the authors'
  layer does not have: ``proj_out`` is the layer we zero so the model starts as the image model, and a zeroed
  output layer must be trained or the temporal path never switches on. Their feed-forward layers stay as
  initialised (the paper's layers have none, and training them too would not fit a T4);
* the authors' layer zeroes only its output weight (its bias keeps a random start), so their inflated model starts
  close to, not exactly at, the image model; ours zeroes weight and bias;
* the clip's latents are the VAE's mean, not a sample from it (deterministic: the same clip gives the same
  latents, so runs and the inversion repeat exactly);
* sizes, for one T4: SD 1.5 instead of the authors' v1-4, 8 frames at 256² instead of 24 at 512², 200 tuning
  steps instead of 500, and edits sampled at guidance 7.5 instead of 12.5 (the notebook's parameters; the paper's
  values are one change away).
"""
from __future__ import annotations

import math
from pathlib import Path

# ----------------------------------------------------------------------------------------------- the clip


def demo_clip(frames: int = 8, size: int = 256):
    """The project's training clip, drawn: a red ball bouncing left to right across a lawn under a blue sky
    (one bounce over the clip), so the motion is unmistakable and the caption is true."""
    from PIL import Image, ImageDraw

    out = []
    r = size // 8
    for i in range(frames):
        x = r + (size - 2 * r) * i / max(frames - 1, 1)
        ground = size * 3 // 4
        y = ground - r - (ground - 2 * r - size // 8) * abs(math.sin(math.pi * i / max(frames - 1, 1)))
        img = Image.new("RGB", (size, size), (120, 170, 235))
        d = ImageDraw.Draw(img)
        d.rectangle([0, ground, size, size], fill=(70, 150, 60))
        d.ellipse([x - r * 1.1, ground - r * 0.25, x + r * 1.1, ground + r * 0.25], fill=(50, 110, 45))  # shadow
        d.ellipse([x - r, y - r, x + r, y + r], fill=(210, 40, 35))
        d.ellipse([x - r * 0.5, y - r * 0.6, x - r * 0.1, y - r * 0.2], fill=(240, 130, 120))  # highlight
        out.append(img)
    return out


def load_clip(path, frames: int, size: int):
    """``frames`` frames spread evenly over a video file (MP4, GIF…) or a folder of images, centre-cropped to a
    square and resized to ``size``."""
    import imageio.v3 as iio
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        pictures = [Image.open(p).convert("RGB") for p in files]
    else:
        pictures = [Image.fromarray(f).convert("RGB") for f in iio.imiter(path)]
    if len(pictures) < frames:
        raise ValueError(f"clip={str(path)!r} has {len(pictures)} frame(s), fewer than frames={frames}: use a longer "
                         f"clip or fewer frames")
    picked = [pictures[round(i * (len(pictures) - 1) / max(frames - 1, 1))] for i in range(frames)]
    out = []
    for p in picked:
        side = min(p.size)
        left, top = (p.width - side) // 2, (p.height - side) // 2
        out.append(p.crop((left, top, left + side, top + side)).resize((size, size)))
    return out


MAX_FRAMES = 32  # the temporal layers' positional encodings (AnimateDiff's motion modules)


def check_frames(frames: int) -> None:
    from ..errors import ParameterError

    if frames > MAX_FRAMES:
        raise ParameterError("frames", f"frames={frames} is more than the temporal layers have positions for "
                                       f"({MAX_FRAMES}): use frames ≤ {MAX_FRAMES} (8 is what fits a T4 well)")


# ----------------------------------------------------------------------------------------------- the model
class FrameCount:
    """Shared by the sparse-causal processors of one UNet: the number of frames of the current call."""

    def __init__(self):
        self.frames = 1


class SparseCausalAttnProcessor:
    """Spatial self-attention where frame *i*'s queries see the tokens of frame 0 and frame *i-1*.

    ``UNetMotionModel`` runs its spatial layers on (batch × frames) images; the processor regroups them by clip
    using the frame count the UNet's forward hook stored."""

    def __init__(self, count: FrameCount):
        self.count = count

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        import torch
        import torch.nn.functional as F

        frames = self.count.frames
        total, tokens, channels = hidden_states.shape
        clips = total // frames
        query = attn.to_q(hidden_states)
        per_clip = hidden_states.view(clips, frames, tokens, channels)
        previous = [max(i - 1, 0) for i in range(frames)]
        context = torch.cat([per_clip[:, [0] * frames], per_clip[:, previous]], dim=2)  # first + previous frame
        context = context.reshape(total, 2 * tokens, channels)
        key, value = attn.to_k(context), attn.to_v(context)
        heads = attn.heads
        q, k, v = (x.view(total, -1, heads, x.shape[-1] // heads).transpose(1, 2) for x in (query, key, value))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(total, tokens, -1)
        out = attn.to_out[0](out.to(query.dtype))
        return attn.to_out[1](out)


def inflate(unet):
    """The image UNet turned into a video UNet: diffusers' ``UNetMotionModel`` with fresh temporal layers (which
    start as the identity) and sparse-causal spatial self-attention. Returns the new UNet."""
    from diffusers import MotionAdapter, UNetMotionModel

    widths = tuple(unet.config.block_out_channels)
    heads = 8 if min(widths) >= 320 else 2  # published width: 8 heads as AnimateDiff; twins: 2
    adapter = MotionAdapter(block_out_channels=widths, motion_layers_per_block=unet.config.layers_per_block,
                            use_motion_mid_block=False,
                            motion_num_attention_heads=heads, motion_norm_num_groups=unet.config.norm_num_groups,
                            motion_max_seq_length=MAX_FRAMES).to(unet.dtype)
    video = UNetMotionModel.from_unet2d(unet, adapter).to(device=unet.device, dtype=unet.dtype)
    # diffusers initialises a fresh motion module's output projection at random (it expects trained weights);
    # the paper (and AnimateDiff) start temporal layers at zero, so the inflated UNet is exactly the image model
    # until training moves them (tests/test_tuneavideo.py checks it on a still clip)
    import torch

    with torch.no_grad():
        for name, module in video.named_modules():
            if "motion_modules" in name and name.endswith("proj_out"):
                module.weight.zero_()
                module.bias.zero_()
    count = FrameCount()
    processors = {}
    for name, proc in video.attn_processors.items():
        spatial_self = name.endswith("attn1.processor") and "motion_modules" not in name
        processors[name] = SparseCausalAttnProcessor(count) if spatial_self else proc
    video.set_attn_processor(processors)
    video.register_forward_pre_hook(lambda module, args, kwargs: _count(count, args, kwargs), with_kwargs=True)
    video.frame_count = count
    return video


def _count(count: FrameCount, args, kwargs):
    sample = args[0] if args else kwargs["sample"]
    count.frames = sample.shape[2]


# what Tune-A-Video trains inside a motion module: the temporal attentions' projections (the authors' attn_temp)
# and our proj_in/proj_out (see the docstring); never its norms (the authors' norm_temp stays frozen) or feed-forward
TEMPORAL_TRAINED = (".attn1.", ".attn2.", ".proj_in.", ".proj_out.")


def is_trained(name: str) -> bool:
    """Does Tune-A-Video train the parameter called ``name`` (a name of the inflated UNet or of the adapter)?"""
    if "motion_modules" in name:
        return any(part in name for part in TEMPORAL_TRAINED)
    return ".attn1.to_q." in name or ".attn2.to_q." in name


def trainable(unet) -> list:
    """Mark what Tune-A-Video trains (spatial attention queries; the temporal attention and the motion modules'
    in/out projections, not their norms or feed-forward) and freeze the rest; returns the trainable parameters."""
    out = []
    for name, p in unet.named_parameters():
        train = is_trained(name)
        p.requires_grad_(train)
        if train:
            out.append(p)
    return out


def encode_frames(vae, frames, device, dtype):
    """Clip latents (1, 4, F, h, w), scaled as the UNet sees them."""
    import numpy as np
    import torch

    pixels = torch.from_numpy(np.stack([np.asarray(f, dtype=np.float32) / 127.5 - 1 for f in frames]))
    pixels = pixels.permute(0, 3, 1, 2).to(device, dtype)
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    return latents.permute(1, 0, 2, 3).unsqueeze(0)


def per_frame(text, latents):
    """``UNetMotionModel`` runs its spatial layers on every frame as an image, so the caption's embeddings go with
    each frame (AnimateDiff's pipeline does the same)."""
    frames = latents.shape[2]
    return text.repeat_interleave(frames, dim=0) if text.shape[0] == latents.shape[0] else text


MAX_GRAD_NORM = 1.0  # train_tuneavideo.py: accelerator.clip_grad_norm_(unet.parameters(), max_grad_norm=1.0)


def train(unet, latents, text, scheduler, steps: int, learning_rate: float, seed: int = 0, eight_bit: bool = False,
          checkpointing: bool = False, probes: int = 8, progress: bool = True):
    """Noise-prediction training on one clip. Returns (loss per step, probe loss before, probe loss after): the
    probe loss is the mean loss over a fixed set of (timestep, noise) draws, so before and after compare like
    with like (the per-step loss jumps with the random timestep)."""
    import torch
    from tqdm.auto import tqdm

    text, latents = per_frame(text, latents).detach(), latents.detach()
    params = trainable(unet)
    if eight_bit:
        try:
            import bitsandbytes as bnb
        except ImportError as e:
            raise ImportError("use_8bit_adam=True needs bitsandbytes (a CUDA machine: pip install bitsandbytes); "
                              "or set use_8bit_adam=False") from e
        optimizer = bnb.optim.AdamW8bit(params, lr=learning_rate)
    else:
        optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-2)
    cuda = latents.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    g = torch.Generator().manual_seed(seed)
    n = scheduler.config.num_train_timesteps
    fixed = [(torch.randint(0, n, (1,), generator=g), torch.randn(latents.shape, generator=g)) for _ in range(probes)]

    def loss_at(t, noise):
        noise, t = noise.to(latents.device, latents.dtype), t.to(latents.device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            pred = unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=text).sample
        return torch.nn.functional.mse_loss(pred.float(), noise.float())

    def probe():
        unet.eval()
        with torch.no_grad():
            value = sum(loss_at(t, e).item() for t, e in fixed) / len(fixed)
        unet.train()
        return value

    dtype = unet.dtype
    for p in params:  # trained weights in float32 (mixed precision keeps master weights; GradScaler needs them)
        p.data = p.data.float()
    before = probe()
    losses = []
    if checkpointing:  # recompute activations in the backward pass instead of keeping them (measured: see memory)
        unet.enable_gradient_checkpointing()
    unet.train()
    for _ in tqdm(range(steps), desc="tuning", disable=not progress):
        loss = loss_at(torch.randint(0, n, (1,), generator=g), torch.randn(latents.shape, generator=g))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # (a no-op without CUDA) so the clipping sees the true gradients
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)  # the authors' max_grad_norm
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    unet.eval()
    if checkpointing:
        unet.disable_gradient_checkpointing()
    after = probe()
    unet.to(dtype)  # back to one dtype for the pipeline
    for p in params:
        p.requires_grad_(False)
    return losses, before, after


def invert(unet, latents, text, scheduler_config, steps: int, progress: bool = True):
    """DDIM inversion: run the deterministic sampler backwards from the clean clip latents to noise, conditioned on
    ``text`` (no guidance). Sampling forward from that noise with the same conditioning and no guidance gives the
    clip back; with an edited prompt, the same motion with the edit. Pair it with ``sampler(config)`` (the same
    steps, no clipping). ``invert_clip`` chooses the conditioning as the authors do (the empty prompt)."""
    import torch
    from diffusers import DDIMInverseScheduler
    from tqdm.auto import tqdm

    text = per_frame(text, latents)
    # no clipping of the predicted clean latents (DDIM's default clips them to [-1, 1], which latents exceed; SD's
    # samplers run without it): with clipping the inversion is not the sampler run backwards
    inverse = DDIMInverseScheduler.from_config(scheduler_config, clip_sample=False)
    inverse.set_timesteps(steps, device=latents.device)
    x = latents.clone()
    with torch.no_grad():
        for t in tqdm(inverse.timesteps, desc="DDIM inversion", disable=not progress):
            x = inverse.step(unet(x, t, encoder_hidden_states=text).sample, t, x).prev_sample
    return x


INVERSION_PROMPT = ""  # the authors invert with the empty prompt (train_tuneavideo.py, tuneavideo/util.py)


def encode_prompt(pipe, prompt: str):
    """The text encoder's per-token embedding of ``prompt`` (padded to the tokenizer's 77), as the UNet reads it."""
    import torch

    device = pipe.text_encoder.device
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def invert_clip(pipe, unet, latents, scheduler_config, steps: int, prompt: str = INVERSION_PROMPT,
                progress: bool = True):
    """The clip's starting noise as the authors compute it: DDIM inversion conditioned on the empty prompt. The
    exact way back is the sampler with the same (empty) prompt at guidance 1 (one pass, no guidance)."""
    text = encode_prompt(pipe, prompt).to(latents.device, unet.dtype)
    return invert(unet, latents, text, scheduler_config, steps, progress=progress)


def sampler(scheduler_config):
    """The forward DDIM sampler that matches ``invert``: same schedule, no clipping of the clean-latent prediction."""
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(scheduler_config, clip_sample=False)


# ----------------------------------------------------------------------------------------------- memory
def counts(key: str = "sd15") -> dict:
    """Parameters of the inflated published UNet (meta device, no memory): the base's parts, the fresh temporal
    layers, and what Tune-A-Video trains."""
    import torch
    from diffusers import MotionAdapter

    from ..hub import catalog, published

    config = published.configs(key)["unet"]
    widths = tuple(config["block_out_channels"])
    with torch.device("meta"):
        adapter = MotionAdapter(block_out_channels=widths, motion_layers_per_block=config["layers_per_block"],
                                use_motion_mid_block=False, motion_num_attention_heads=8,
                                motion_norm_num_groups=config["norm_num_groups"], motion_max_seq_length=32)
        unet = published.meta_model(key, "unet")
    temporal = sum(p.numel() for n, p in adapter.named_parameters() if is_trained(n))
    queries = sum(m.to_q.weight.numel() for n, m in unet.named_modules() if n.endswith(("attn1", "attn2")))
    base = sum(catalog.ENTRIES[key].params.values())
    return {"base": base, "temporal_layers": sum(p.numel() for p in adapter.parameters()),
            "trained": temporal + queries}


def training_bytes(frozen: int, trained: int, frames: int, height: int, width: int, eight_bit: bool,
                   checkpointing: bool) -> dict:
    """What tuning needs on the GPU: frozen weights in float16 (2 bytes), trained weights kept in float32 with their
    gradients and AdamW's two moments (4 + 4 + 8 bytes; 8-bit Adam: 4 + 4 + 2), and the activations kept for the
    backward pass, a rate per frame-megapixel measured on a GPU (benchmarks/gpu_full_size.json, tune-a-video)."""
    gib = 2**30
    per_trained = 4 + 4 + (2 if eight_bit else 8)
    rate = TRAIN_ACTIVATIONS_GIB_PER_MP["checkpointing" if checkpointing else "plain"]
    act = rate * frames * height * width / 1e6 * gib
    return {"weights": 2 * frozen, "trained": per_trained * trained, "activations": int(act)}


# activation memory of one training step per frame-megapixel (batch 1, float16 autocast), measured on a GPU with
# the full-size SD 1.5 at 8 × 256² (benchmarks/gpu_full_size.json, tune-a-video: peaks 8.2 GiB with gradient
# checkpointing, 9.9 GiB without; less the weights and the trained parameters' optimizer state)
TRAIN_ACTIVATIONS_GIB_PER_MP = {"checkpointing": 4.8, "plain": 7.4}
