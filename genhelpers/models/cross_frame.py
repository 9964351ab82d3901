"""GPT4Motion's cross-frame attention, as a diffusers attention processor, and the measure of what it buys.

The rule we follow (tests/reference/gpt4motion/facts.json, ``cross_frame_attention``; read in the authors'
repository, which has no licence, and re-expressed here): in every self-attention layer of the UNet (the 70
``attn1`` layers of SDXL; text cross-attention and the ControlNets stay as they are), frame 0 attends to itself as
usual; every later frame i attends to its own tokens **and** frame 0's, at the same denoising step, with its own
keys scaled by α (0.9): keys ``[α·K_i ; K_0]``, values ``[V_i ; V_0]``. α < 1 shrinks a frame's attention to itself
and so leans it towards frame 0's appearance; the values are never scaled.

Where we differ on purpose: the authors generate frame 0 first, keep its keys and values of every layer and step in
memory (≈ 42 GB at 1024² for 50 steps, est.), then make the other frames one at a time. We put frame 0 **in the same
batch** as the frames it anchors, so nothing is cached: with DDIM at η = 0 and one shared starting noise, frame 0
comes out the same in every batch, so a clip can be made in chunks that each start with frame 0 (``chunks``). The
state lives on the processor (``alpha``, ``frames``, ``enabled``) because diffusers 0.42 drops unknown
``cross_attention_kwargs`` (the authors' processor breaks there). diffusers' own ``CrossFrameAttnProcessor`` is a
different rule (every frame takes frame 0's keys and values *instead of* its own: Text2Video-Zero) and lives in a
deprecated module; we do not use it.

The batch the processor sees is laid out as diffusers' pipelines lay it out under classifier-free guidance:
``[uncond f0 … fN-1, cond f0 … fN-1]``; each half attends within itself.
"""
from __future__ import annotations

import numbers

from ..errors import ParameterError

# The authors' sampler (facts.json, video_generation.scheduler): DDIM on SDXL's noise schedule, η = 0 (no fresh noise
# per step, so a frame's result depends only on its starting noise, maps and prompt: what makes chunks exact).
AUTHORS_DDIM = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "clip_sample": False,
                "set_alpha_to_one": True, "steps_offset": 1}


class CrossFrameAttention:
    """The processor of one ``attn1`` layer. ``frames`` (the frames per guidance half in the current call) is set
    by whoever calls the pipeline; ``enabled=False`` makes it plain self-attention."""

    def __init__(self, alpha: float = 0.9, frames: int = 1, enabled: bool = True):
        self.alpha, self.frames, self.enabled = alpha, frames, enabled

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        import torch
        import torch.nn.functional as F

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        ndim = hidden_states.ndim
        if ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch, tokens, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        heads, dim = attn.heads, k.shape[-1] // attn.heads
        q, k, v = (x.view(batch, -1, heads, dim).transpose(1, 2) for x in (q, k, v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        n = self.frames
        cross = self.enabled and encoder_hidden_states is None and attention_mask is None and n > 1
        if cross and batch % n:
            raise ValueError(f"cross-frame attention got a batch of {batch}, not a multiple of frames={n}: set "
                             f"frames to the number of frames in this call")
        if not cross:
            mask = None
            if attention_mask is not None:
                mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
                mask = mask.view(batch, heads, -1, mask.shape[-1])
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scale)
        else:
            groups = batch // n  # 2 under classifier-free guidance: [uncond frames, cond frames]
            q, k, v = (x.reshape(groups, n, heads, -1, dim) for x in (q, k, v))
            k0, v0 = k[:, :1], v[:, :1]  # frame 0 of each half, at this step
            first = F.scaled_dot_product_attention(q[:, :1], k0, v0, scale=attn.scale)  # frame 0: plain
            keys = torch.cat([self.alpha * k[:, 1:], k0.expand(-1, n - 1, -1, -1, -1)], dim=-2)
            values = torch.cat([v[:, 1:], v0.expand(-1, n - 1, -1, -1, -1)], dim=-2)
            rest = F.scaled_dot_product_attention(q[:, 1:], keys, values, scale=attn.scale)
            out = torch.cat([first, rest], dim=1).reshape(batch, heads, tokens, dim)
        out = out.transpose(1, 2).reshape(batch, -1, heads * dim).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if ndim == 4:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install(unet, alpha: float = 0.9) -> CrossFrameAttention:
    """Give every self-attention (``attn1``) layer of ``unet`` one shared cross-frame processor; the others keep
    theirs. Returns the processor: set ``.frames`` before each call, ``.enabled`` to compare with plain attention."""
    cfa = CrossFrameAttention(alpha)
    unet.set_attn_processor({name: cfa if name.endswith("attn1.processor") else proc
                             for name, proc in unet.attn_processors.items()})
    return cfa


def chunks(frames: int, size: int) -> list[list[int]]:
    """Frame indices per pipeline call: frame 0 first in every call (the anchor), then up to ``size`` others."""
    rest = list(range(1, frames))
    return [[0] + rest[i:i + size] for i in range(0, len(rest), size)] or [[0]]


def background_change(frames, background) -> list[float]:
    """Temporal steadiness: for each pair of neighbouring frames, the mean absolute change of the pixel values
    (0-1) over the pixels that are background (floor or sky) in both; lower is steadier. ``frames``: (F, H, W, 3)
    floats in [0, 1]; ``background``: (F, H, W) booleans at the same size."""
    import numpy as np

    frames, background = np.asarray(frames, dtype=np.float64), np.asarray(background, bool)
    out = []
    for t in range(1, len(frames)):
        both = background[t] & background[t - 1]
        diff = np.abs(frames[t] - frames[t - 1]).mean(axis=-1)
        out.append(round(float(diff[both].mean()) if both.any() else float("nan"), 5))
    return out


# ------------------------------------------------------------------------------------------------ the notebook's inputs
def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def scale_pair(name, v):
    """Two ControlNet scales, depth then edges: diffusers zips a wrong-length list with the nets without a word."""
    if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(_number(x) and 0 <= x <= 2 for x in v):
        raise ParameterError(name, f"{name}={v!r} must be two numbers from 0 to 2, [depth, edges], e.g. {name}=[0.8, "
                                   f"0.6] (GPT4Motion used [1.0, 1.0]; the ControlNets' cards suggest 0.5)")


def cross_frame_alpha(name, v):
    if not _number(v) or not 0 < v <= 1:
        raise ParameterError(name, f"{name}={v!r} must be a number above 0 and at most 1: how much a frame attends to "
                                   f"itself next to frame 0 (GPT4Motion: 0.9; 1 = its own keys unscaled)")


def compared_frames(name, v):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v == 1 or v < 0:
        raise ParameterError(name, f"{name}={v!r} must be 0 (no comparison) or a whole number ≥ 2 of frames made again "
                                   f"without cross-frame attention, e.g. {name}=5")


def compared_within_clip(p):
    if p["compare_frames"] > p["frames"]:
        raise ParameterError("compare_frames", f"compare_frames={p['compare_frames']} is more than the clip's "
                                               f"frames={p['frames']}: compare at most {p['frames']} (or 0 to skip)")
