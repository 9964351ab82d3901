"""MVDiffusion's correspondence-aware attention (CAA): the paper's idea, as blocks hooked onto a stock UNet.

Eight views of one panorama are denoised together. After each block of the UNet (and once inside its middle
block) a CAA block lets every feature cell of view i look at what its two neighbours, views i−1 and i+1, show
in the same direction: the cell's pixel is carried into the neighbour by the homography of the two cameras
(they turn about one point, so no depth is needed), and a 3×3 patch of the neighbour's features around that
point is read there (bilinear). Those 18 samples, each tagged with a sin/cos code of where it lies relative to
the cell, are the keys and values of one attention; a feed-forward layer follows. Neighbours that attend to each
other's pixels paint the same things where they overlap: the panorama joins.

Published behaviour we follow (facts in tests/reference/mvdiffusion/reference_behaviour.json, read from
Tangshitao/MVDiffusion at 4cd4e51; no code copied): ``correspondence`` (query pixel p = (s·cx + s//2, s·cy +
s//2) at a level of stride s; the neighbour's feature point g = q/s − ½; dx outer, dy inner; ``grid_sample``
bilinear, zero padding, ``align_corners=True``; strict validity 0 < q′ < size; the offset code of the sample
carried back into view i), ``positional_encoding`` (C/4 frequencies; [sin dx·f, sin dy·f, cos dx·f, cos dy·f];
the query gets the code of offset 0), ``caa_block`` (an invalid sample becomes a zero token that stays in the
softmax, no attention mask; one LayerNorm for query and keys; heads of 32; the residual adds to the features
without their code; GEGLU ×4 with the value half first), ``placement_in_unet`` (the hook points below). The
parameter names are the authors' (``cp_blocks_encoder.0.transformer.attn1.to_q.weight``…), so their checkpoint
converts key for key.

Where we differ on purpose: correspondences are computed only for the two neighbours and only at each level's
query points (the authors compute every pair of views at full resolution, most of their CPU time); the blocks
loop over views but not over neighbours and samples (two ``grid_sample`` calls per view); the blocks always
compute in float32 (the code multiplies offsets by up to 6·10²³, which float16 cannot hold: NaN), whatever the
UNet's precision — the hooks cast the features in and out.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

HEAD_DIM = 32


def frequencies(channels: int) -> torch.Tensor:
    """The code's N = C/4 frequencies: 2ⁿ up to N = 80, else bⁿ with b = 5000^(1/(N/2.5)) (float32)."""
    n = channels // 4
    if n <= 80:
        return 2.0 ** torch.arange(n, dtype=torch.float32)
    base = 5000 ** (1 / (n / 2.5))
    return base ** torch.linspace(0, n - 1, n, dtype=torch.float32)


def encode_offsets(delta: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """(..., 2) offsets → (..., 4N): [sin dx·f, sin dy·f, cos dx·f, cos dy·f]."""
    angles = delta[..., :, None] * freqs.flatten()  # (..., 2, N)
    return torch.cat([angles.sin(), angles.cos()], dim=-2).flatten(-2)


class PosEncoding(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("freq_bands", frequencies(channels)[None, None])  # (1, 1, N), as published


class Attention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.heads = channels // HEAD_DIM
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels, bias=False) for _ in range(3))
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x, context):  # x (n, 1, C), context (n, 18, C)
        def split(t):
            return t.view(t.shape[0], t.shape[1], self.heads, HEAD_DIM).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax over the 18 samples, scale 32^-0.5
        return self.to_out(out.transpose(1, 2).reshape(x.shape))


class GEGLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.proj = nn.Linear(channels, 8 * channels)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)  # the value half first
        return value * F.gelu(gate)  # exact (erf) GELU


class Transformer(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn1 = Attention(channels)
        self.ff = nn.Module()
        self.ff.net = nn.Sequential(GEGLU(channels), nn.Dropout(0.0), nn.Linear(4 * channels, channels))

    def forward(self, x, tokens, query_code):
        a = self.attn1(self.norm1(x + query_code), self.norm1(tokens))  # one LayerNorm for query and keys
        x = x + a  # the residual carries the features without their code
        return x + self.ff.net(self.norm2(x))


class CAABlock(nn.Module):
    """One correspondence-aware attention block of width C."""

    def __init__(self, channels: int):
        super().__init__()
        if channels % HEAD_DIM or channels % 4:
            raise ValueError(f"a CAA block needs a width divisible by {HEAD_DIM} (heads of 32), got {channels}")
        self.transformer = Transformer(channels)
        self.pe = PosEncoding(channels)

    chunk_bytes = 256 * 2**20  # views are processed in groups whose gathered keys stay under this size

    def forward(self, features, table: dict, views: int):
        """features (B·views, C, h, w), views of one sample consecutive → the same shape."""
        n, c, h, w = features.shape
        x = features.view(n // views, views, c, h, w)
        b = x.shape[0]
        freqs = self.pe.freq_bands
        zero = encode_offsets(torch.zeros(2, device=x.device, dtype=x.dtype), freqs)
        step = max(1, min(views, self.chunk_bytes // (b * h * w * 18 * c * 4)))  # 1 view at a time at 512 px
        out = []
        for start in range(0, views, step):
            ids = torch.arange(start, min(start + step, views), device=x.device)
            k = len(ids)
            samples = []
            for slot, neighbour in enumerate(((ids - 1) % views, (ids + 1) % views)):  # the left neighbour first
                grid = table["grid"][ids, slot].expand(b, -1, -1, -1, -1).reshape(b * k, 9 * h, w, 2)
                got = F.grid_sample(x[:, neighbour].reshape(b * k, c, h, w), grid, mode="bilinear",
                                    padding_mode="zeros", align_corners=True)
                samples.append(got.view(b, k, c, 9, h, w))
            tokens = torch.cat(samples, dim=3).permute(0, 1, 4, 5, 3, 2).reshape(b, k * h * w, 18, c)
            code = encode_offsets(table["delta"][ids], freqs).permute(0, 2, 3, 1, 4).reshape(1, k * h * w, 18, c)
            valid = table["valid"][ids].permute(0, 2, 3, 1).reshape(1, k * h * w, 18, 1).to(x.dtype)
            tokens = ((tokens + code) * valid).reshape(b * k * h * w, 18, c)  # an invalid sample: zero, not dropped
            query = x[:, ids].permute(0, 1, 3, 4, 2).reshape(b * k * h * w, 1, c)
            y = self.transformer(query, tokens, zero)
            out.append(y.reshape(b, k, h, w, c).permute(0, 1, 4, 2, 3))
        return torch.cat(out, dim=1).reshape(n, c, h, w)


class MVDiffusionCAA(ModelMixin, ConfigMixin):
    """The CAA blocks of one UNet: one after each down block, one in the middle block, one after each up block
    (SD 2: widths 320, 640, 1280, 1280 | 1280 | 1280, 1280, 640, 320; 147,572,480 parameters)."""

    _keep_in_fp32_modules = ["cp_blocks_encoder", "cp_blocks_mid", "cp_blocks_decoder"]  # float16 breaks the code

    @register_to_config
    def __init__(self, encoder_widths=(320, 640, 1280, 1280), mid_width: int = 1280,
                 decoder_widths=(1280, 1280, 640, 320)):
        super().__init__()
        self.cp_blocks_encoder = nn.ModuleList(CAABlock(c) for c in encoder_widths)
        self.cp_blocks_mid = CAABlock(mid_width)
        self.cp_blocks_decoder = nn.ModuleList(CAABlock(c) for c in decoder_widths)

    @staticmethod
    def widths_of(unet_config) -> dict:
        """The widths a UNet's blocks end with: the config that fits ``unet``."""
        out = list(unet_config["block_out_channels"])
        return {"encoder_widths": out, "mid_width": out[-1], "decoder_widths": out[::-1]}


# ----------------------------------------------------------------------------------------------- geometry
def _dehom(H, p):
    """Pixels (..., 2) through the 3×3 homography H (float32)."""
    ones = torch.ones_like(p[..., :1])
    q = (H @ torch.cat([p, ones], -1).reshape(-1, 3).T).T.reshape(*p.shape[:-1], 3)
    return q[..., :2] / q[..., 2:]


class Correspondences:
    """Where each feature cell of each view falls in its two neighbours, per UNet level (computed once per
    feature size, on the CPU in float32 as the model was trained, then kept on ``device``)."""

    def __init__(self, K, R, size: int, device="cpu"):
        self.K, self.R = torch.as_tensor(K, dtype=torch.float32), torch.as_tensor(R, dtype=torch.float32)
        self.size, self.device, self.views = size, torch.device(device), len(self.K)
        self._tables: dict = {}

    def homography(self, i: int, j: int):
        K, R = self.K, self.R
        return K[j] @ torch.inverse(R[j]) @ R[i] @ torch.inverse(K[i])

    def table(self, h: int, w: int) -> dict:
        if (h, w) in self._tables:
            return self._tables[h, w]
        if h < 2 or w < 2 or self.size % h:
            raise ValueError(f"a {self.size}-px view gives a {h}×{w} feature map at some UNet level: CAA needs at "
                             f"least 2×2 cells at every level (use a larger size; the released weights know 512)")
        s, m = self.size // h, self.views
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        p = torch.stack([xs * s + s // 2, ys * s + s // 2], -1).float()  # the pixel a cell stands for
        steps = torch.tensor([[dx, dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1)], dtype=torch.float32)
        grid = torch.empty(m, 2, 9 * h, w, 2)
        valid = torch.empty(m, 18, h, w, dtype=torch.bool)
        delta = torch.empty(m, 18, h, w, 2)
        for i in range(m):
            for slot, j in enumerate(((i - 1) % m, (i + 1) % m)):
                g = _dehom(self.homography(i, j), p) / s - 0.5  # feature coordinates in view j
                g = g[None] + steps[:, None, None]  # (9, h, w, 2): the 3×3 patch, dx outer, dy inner
                norm = torch.stack([g[..., 0] / (w - 1) * 2 - 1, g[..., 1] / (h - 1) * 2 - 1], -1)
                grid[i, slot] = norm.reshape(9 * h, w, 2)
                q = (g + 0.5) * s  # the samples in pixels of view j
                inside = (q[..., 0] > 0) & (q[..., 0] < self.size) & (q[..., 1] > 0) & (q[..., 1] < self.size)
                valid[i, 9 * slot:9 * slot + 9] = inside
                delta[i, 9 * slot:9 * slot + 9] = (_dehom(self.homography(j, i), q) - p) / s
        out = {"grid": grid.to(self.device), "valid": valid.to(self.device), "delta": delta.to(self.device)}
        self._tables[h, w] = out
        return out


# ----------------------------------------------------------------------------------------------- hooks
@contextlib.contextmanager
def hooked(unet, caa: MVDiffusionCAA, geometry: Correspondences):
    """Attach the CAA blocks to a stock diffusers ``UNet2DConditionModel`` for the duration of the block; outside
    it the UNet is plain SD (the 'CAA off' baseline). Hook points (``placement_in_unet``): before each down
    block's downsampler (its skip connections are already stored, without CAA), on the last down block's
    output (its skips kept), before the middle block's attention, before each up block's upsampler, on the last
    up block's output."""
    if geometry.views < 2:  # the authors skip the blocks for a single view
        yield
        return

    def run(block, hidden):
        table = geometry.table(*hidden.shape[-2:])
        return block(hidden.float(), table, geometry.views).to(hidden.dtype)  # the blocks stay in float32

    def before(block):
        return lambda module, args: (run(block, args[0]), *args[1:])

    handles = []
    try:
        last = len(unet.down_blocks) - 1
        for k, down in enumerate(unet.down_blocks):
            block = caa.cp_blocks_encoder[k]
            if k < last:
                handles.append(down.downsamplers[0].register_forward_pre_hook(before(block)))
            else:
                handles.append(down.register_forward_hook(
                    lambda module, args, out, b=block: (run(b, out[0]), out[1])))
        handles.append(unet.mid_block.attentions[0].register_forward_pre_hook(before(caa.cp_blocks_mid)))
        last = len(unet.up_blocks) - 1
        for k, up in enumerate(unet.up_blocks):
            block = caa.cp_blocks_decoder[k]
            if k < last:
                handles.append(up.upsamplers[0].register_forward_pre_hook(before(block)))
            else:
                handles.append(up.register_forward_hook(lambda module, args, out, b=block: run(b, out)))
        yield
    finally:
        for h in handles:
            h.remove()


def count_parameters(config: dict | None = None) -> int:
    """Parameters of the CAA blocks (the published SD 2 widths by default), built on the meta device."""
    with torch.device("meta"):
        model = MVDiffusionCAA(**(config or {}))
    return sum(p.numel() for p in model.parameters())

