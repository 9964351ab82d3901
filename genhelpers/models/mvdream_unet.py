"""MVDream's multi-view UNet (and ImageDream's, with its image tokens), written from the published description:
module and attribute names follow the published checkpoint (LDM naming), so its state_dict loads strictly.

In every transformer block the self-attention runs over the tokens of all F views together (one long sequence),
so each view sees the others; the cross-attention to the prompt stays per view; each view's camera (a flattened
4×4 camera-to-world matrix) goes through a small MLP added to the timestep embedding. The pipeline that samples
with it is ``genhelpers.models.mvdream``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

# Module and attribute names follow the published checkpoint (LDM naming), so its state_dict loads strictly.


class Attention(nn.Module):
    """Multi-head attention with PyTorch's fused kernel. As self-attention (no context) it can run jointly over
    the ``num_frames`` views of each object; as cross-attention it may carry ImageDream's extra key/value
    projections for the image tokens that follow the text tokens."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None = None, ip_dim: int = 0):
        super().__init__()
        inner, context_dim = heads * dim_head, context_dim or dim
        self.heads, self.ip_dim = heads, ip_dim
        if ip_dim:  # registered first: the published state_dict lists them before to_q
            self.to_k_ip = nn.Linear(context_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner, bias=False)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))
        self.ip_weight = 1.0

    def _attend(self, q, k, v):
        b, h = q.shape[0], self.heads
        q, k, v = (t.reshape(b, t.shape[1], h, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, -1, h * out.shape[-1])

    def forward(self, x, context=None, num_frames: int = 1):
        if context is None:  # self-attention over all views of one object: (b f) n c -> b (f n) c
            bf, n, c = x.shape
            joint = x.reshape(bf // num_frames, num_frames * n, c)
            out = self._attend(self.to_q(joint), self.to_k(joint), self.to_v(joint)).reshape(bf, n, -1)
            return self.to_out(out)
        q = self.to_q(x)
        if self.ip_dim:
            text, image = context[:, : -self.ip_dim], context[:, -self.ip_dim:]
            out = self._attend(q, self.to_k(text), self.to_v(text))
            out = out + self.ip_weight * self._attend(q, self.to_k_ip(image), self.to_v_ip(image))
        else:
            out = self._attend(q, self.to_k(context), self.to_v(context))
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class MultiViewTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, ip_dim: int = 0):
        super().__init__()
        self.attn1 = Attention(dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, heads, dim_head, context_dim, ip_dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context, num_frames: int):
        x = x + self.attn1(self.norm1(x), num_frames=num_frames)
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int, ip_dim: int = 0):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            MultiViewTransformerBlock(inner, heads, dim_head, context_dim, ip_dim) for _ in range(depth))
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x, context, num_frames: int):
        b, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c))
        for block in self.transformer_blocks:
            tokens = block(tokens, context, num_frames)
        return x + self.proj_out(tokens).reshape(b, h, w, c).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, out_channels), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb).to(x.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Sequence(nn.ModuleList):
    """A list of layers run in order, each given what it needs (embedding, context, number of views)."""

    def forward(self, x, emb, context, num_frames):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, num_frames)
            else:
                x = layer(x)
        return x


class PerceiverAttention(nn.Module):
    """Learned queries attend to the image features and to themselves (ImageDream's image-prompt resampler)."""

    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads, inner = heads, dim_head * heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, features, latents):
        features, latents = self.norm1(features), self.norm2(latents)
        b, h = latents.shape[0], self.heads
        k, v = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], h, -1).transpose(1, 2) for t in (self.to_q(latents), k, v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, latents.shape[1], -1)
        return self.to_out(out)


class Resampler(nn.Module):
    """Turns a CLIP image encoder's hidden states ([b, 257, 1280] for ViT-H/14) into ``num_queries`` tokens of
    the text width, appended to the text context of every cross-attention."""

    def __init__(self, dim: int = 1024, depth: int = 4, dim_head: int = 64, heads: int = 12, num_queries: int = 16,
                 embedding_dim: int = 1280, output_dim: int = 1024, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads),
                           nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * ff_mult, bias=False), nn.GELU(),
                                         nn.Linear(dim * ff_mult, dim, bias=False))])
            for _ in range(depth))

    def forward(self, features):
        latents = self.latents.repeat(features.shape[0], 1, 1).to(features.dtype)
        features = self.proj_in(features)
        for attn, ff in self.layers:
            latents = latents + attn(features, latents)
            latents = latents + ff(latents)
        return self.norm_out(self.proj_out(latents))


class MultiViewUNetModel(ModelMixin, ConfigMixin):
    """MVDream's multi-view UNet (SD2.1 layout + camera embedding); with ``ip_dim`` > 0, ImageDream's.

    ``forward(x, timesteps, context, camera, num_frames)``: ``x`` holds the views of each object one after the
    other ([objects × num_frames, 4, h, w]); ``timesteps`` one value (or one per row); ``context`` the text
    encoding of each row ([rows, 77, context_dim]); ``camera`` [rows, camera_dim] or None. ImageDream adds
    ``ip`` (CLIP image hidden states, [rows, 257, 1280]) and ``ip_img`` (the input picture's latent, written
    into the last view of each object)."""

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(self, image_size: int = 32, in_channels: int = 4, model_channels: int = 320, out_channels: int = 4,
                 num_res_blocks: int = 2, attention_resolutions=(4, 2, 1), channel_mult=(1, 2, 4, 4),
                 num_head_channels: int = 64, transformer_depth: int = 1, context_dim: int = 1024,
                 camera_dim: int | None = 16, ip_dim: int = 0, use_checkpoint: bool = False):
        super().__init__()
        mc, emb_dim = model_channels, model_channels * 4
        self.model_channels = mc
        if ip_dim:  # registered first, like the published ImageDream state_dict
            self.image_embed = Resampler(dim=context_dim, num_queries=ip_dim, output_dim=context_dim)
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if camera_dim:
            self.camera_embed = nn.Sequential(nn.Linear(camera_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def transformer(ch):
            heads = ch // num_head_channels
            return SpatialTransformer(ch, heads, num_head_channels, transformer_depth, context_dim, ip_dim)

        self.input_blocks = nn.ModuleList([Sequence([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        skips, ch, ds = [mc], mc, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, emb_dim, mult * mc)]
                ch = mult * mc
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                self.input_blocks.append(Sequence(layers))
                skips.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Sequence([Downsample(ch)]))
                skips.append(ch)
                ds *= 2
        self.middle_block = Sequence([ResBlock(ch, emb_dim, ch), transformer(ch), ResBlock(ch, emb_dim, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), emb_dim, mc * mult)]
                ch = mc * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Sequence(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(mc, out_channels, 3, padding=1))

    def save_pretrained(self, save_directory, **kwargs):
        """As published: MVDream's config.json has no ``ip_dim`` (only ImageDream's does)."""
        super().save_pretrained(save_directory, **kwargs)
        path = Path(save_directory) / "config.json"
        config = json.loads(path.read_text())
        if not config.get("ip_dim"):
            config.pop("ip_dim", None)
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def forward(self, x, timesteps, context, camera=None, num_frames: int = 1, ip=None, ip_img=None):
        if x.shape[0] % num_frames:
            raise ValueError(f"the batch of {x.shape[0]} pictures is not a whole number of objects of "
                             f"num_frames={num_frames} views")
        timesteps = torch.as_tensor(timesteps, device=x.device).reshape(-1).expand(x.shape[0])
        t = get_timestep_embedding(timesteps, self.model_channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        emb = self.time_embed(t.to(x.dtype))
        if camera is not None:
            if camera.shape[0] != x.shape[0]:
                raise ValueError(f"camera has {camera.shape[0]} rows for {x.shape[0]} pictures: give one camera per "
                                 f"view (cameras(num_frames) repeated for each object and guidance branch)")
            emb = emb + self.camera_embed(camera.to(x.dtype))
        if self.config.ip_dim and ip is None:
            raise ValueError("this is an ImageDream UNet: pass ip= (CLIP image hidden states; zeros for the "
                             "unconditional branch)")
        if self.config.ip_dim:
            context = torch.cat([context, self.image_embed(ip.to(x.dtype))], dim=1)
        if ip_img is not None:  # ImageDream: the input picture's latent is the last view of every object
            x = x.clone()
            x[num_frames - 1 :: num_frames] = ip_img.to(x.dtype)
        h, skips = x, []
        for block in self.input_blocks:
            h = block(h, emb, context, num_frames)
            skips.append(h)
        h = self.middle_block(h, emb, context, num_frames)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb, context, num_frames)
        return self.out(h)
