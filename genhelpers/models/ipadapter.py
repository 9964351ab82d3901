"""IP-Adapter on Stable Diffusion 1.5, and InstantStyle's per-block scales checked before anything loads.

IP-Adapter (Ye et al., 2023) lets a picture steer a text-to-image UNet without touching the UNet: a small
projection turns the picture's CLIP image embedding into 4 extra tokens, and every cross-attention layer gets a
second key/value pair for those tokens. Each layer's output becomes ``text attention + scale × image attention``.
InstantStyle (Wang et al., 2024) observed that the ``scale`` need not be the same everywhere: on SDXL one
attention of the first up block carries the *style* of the picture and one of the third down block its
*layout*; giving the picture only the style layers copies its look and not its content. For SD 1.5 the
authors' experimental choice is the whole second up block (``up_blocks.1``).

diffusers 0.42 does the work (``pipe.load_ip_adapter``, ``pipe.set_ip_adapter_scale``). This module adds what
diffusers does not check:

* ``check_blocks`` / ``check_scale``: diffusers silently ignores a block it does not know. SDXL's style
  dictionary ``{"up": {"block_0": [0, 1, 0]}}`` turns the adapter **off everywhere** on SD 1.5 (its first up
  block has no attention), and so do ``block_9``, ``down.block_3`` or a typo such as ``b1``. These checks refuse
  them with the fix, before a model loads.
* ``layer_scales``: the scale each of SD 1.5's 16 cross-attention layers gets from a setting (what the
  notebook's figure draws, and what the tests compare with the scales diffusers really set).
* ``cross_attention_widths``: the layer widths the published file's ``ip_adapter.<k>`` entries follow (the
  weight file itself, as a module, is ``ipadapter_weights.IPAdapterWeights``).

Imports nothing heavy: the checks run in a notebook's inputs cell, before torch is imported.

Published behaviour we follow: the key layout and the projection maths of tencent-ailab/IP-Adapter
(``ImageProjModel``: tokens = LayerNorm(reshape(Linear(image_embeds), 4 × cross_attention_dim))), read for
behaviour, not copied; the SD 1.5 block choice of InstantStyle's ``infer_style_sd15.py``; the facts are in
tests/reference/stylecrafter/facts.json. Where we differ on purpose: scales are limited to 0–2 (diffusers takes
any number), and a setting that gives the picture no layer at all is refused rather than run.
"""
from __future__ import annotations

import numbers

from ..errors import ParameterError

# SD 1.5's UNet: the blocks whose layers have cross-attention, and how many each has (layers_per_block = 2;
# an up block has one more). Down block 3 and up block 0 have none. The same for every SD 1.5 fine-tune and for
# the AnimateDiff UNet built on it (the motion modules are not cross-attention).
SD15_BLOCKS = {"down": {"block_0": 2, "block_1": 2, "block_2": 2}, "mid": 1,
               "up": {"block_1": 3, "block_2": 3, "block_3": 3}}
# InstantStyle's SD 1.5 settings in diffusers' syntax (``infer_style_sd15.py``: "experimental" for SD 1.5)
STYLE = {"up": {"block_1": 1.0}}
STYLE_AND_LAYOUT = {"down": {"block_2": 1.0}, "mid": 1.0, "up": {"block_1": 1.0}}
MAX_SCALE = 2.0
WHY_NOT = {  # blocks people reach for that SD 1.5 does not have, and why
    ("up", "block_0"): "its first up block only upsamples. {'up': {'block_0': [0, 1, 0]}} is InstantStyle's SDXL "
                       "style block (up_blocks.0.attentions.1 there), which on SD 1.5 gives the picture no layer at "
                       "all; SD 1.5's style block is {'up': {'block_1': 1.0}}",
    ("down", "block_3"): "its last down block only downsamples",
}


WEIGHT_NAME = "ip-adapter_sd15.safetensors"  # under models/, beside models/image_encoder/ (h94/IP-Adapter)
LAYOUT = (f"models/{WEIGHT_NAME}", "models/image_encoder/config.json")


def check_adapter(name: str, v) -> None:
    """``v`` must be an SD 1.5 IP-Adapter: a catalog IP-Adapter (``ip-adapter-sd15``, its twin, ``h94/IP-Adapter``)
    or a folder in h94/IP-Adapter's layout. Another hub id is left to the download to judge."""
    from pathlib import Path

    from ..hub import catalog

    entry = catalog.find(str(v))
    if entry is not None:
        if entry.cls != "IPAdapterWeights":
            raise ParameterError(name, f"{name}={v!r} is {entry.title}, not an IP-Adapter: use 'ip-adapter-sd15' "
                                       f"(h94/IP-Adapter's models/{WEIGHT_NAME}) or 'tiny:ip-adapter-sd15'")
        return
    folder = Path(str(v)).expanduser()
    if folder.is_dir():
        missing = [p for p in LAYOUT if not (folder / p).is_file()]
        if missing:
            raise ParameterError(name, f"{name}={str(v)!r} is not a folder in h94/IP-Adapter's layout: it lacks "
                                       f"{', '.join(missing)} (download the repository's models/{WEIGHT_NAME} and "
                                       f"models/image_encoder/ and keep their paths)")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_scale(name: str, v) -> None:
    """One IP-Adapter scale for every layer: a number from 0 (the picture is ignored) to 2."""
    if not _is_number(v) or not 0 <= v <= MAX_SCALE:
        raise ParameterError(name, f"{name}={v!r} must be a number from 0 to {MAX_SCALE:g}: the weight of the "
                                   f"picture's attention beside the text's (0 ignores the picture; 1.0 is "
                                   f"IP-Adapter's and InstantStyle's setting)")


def _one(name: str, where: str, v) -> None:
    if not _is_number(v) or not 0 <= v <= MAX_SCALE:
        raise ParameterError(name, f"{name}: the scale of {where} is {v!r}; every scale must be a number from 0 to "
                                   f"{MAX_SCALE:g} (1.0 is InstantStyle's setting)")


def _block(name: str, side: str, block, v) -> None:
    known = SD15_BLOCKS[side]
    if block not in known:
        why = WHY_NOT.get((side, block))
        digits = "".join(c for c in str(block) if c.isdigit())
        if why is None and digits and not str(block).startswith("block_"):
            why = f"{block!r} is not a block name: write 'block_{digits}'"
        raise ParameterError(name, f"{name}: Stable Diffusion 1.5 has no {side} block {block!r} with attention"
                                   + (f": {why}" if why else "") + f". Its {side} blocks with attention are "
                                   + ", ".join(repr(b) for b in known) + " (diffusers silently skips a block it "
                                   "does not know, so the picture would get fewer layers than you meant, or none)")
    if isinstance(v, (list, tuple)):
        if len(v) not in (1, known[block]):
            raise ParameterError(name, f"{name}: {side}.{block} has {known[block]} attention layers in SD 1.5, so "
                                       f"its list needs {known[block]} scales (one per layer) or one, not {len(v)}")
        for i, s in enumerate(v):
            _one(name, f"{side}.{block}[{i}]", s)
    else:
        _one(name, f"{side}.{block}", v)


def check_blocks(name: str, v) -> None:
    """Per-block IP-Adapter scales in diffusers' syntax (``set_ip_adapter_scale``), checked against SD 1.5's
    layout: a number (every layer), or a dict with the keys 'down', 'mid', 'up'; under 'down'/'up' a number (every
    block of that side) or {'block_i': number or one number per layer}. Blocks not named get 0. Refuses what
    diffusers would silently ignore, scales outside 0-2, and a setting that leaves the picture no layer."""
    if _is_number(v):
        check_scale(name, v)
        if v == 0:
            raise ParameterError(name, f"{name}=0 gives the picture no layer: the style would change nothing "
                                       f"(InstantStyle's SD 1.5 setting is {STYLE})")
        return
    if not isinstance(v, dict) or not v:
        raise ParameterError(name, f"{name}={v!r} must be a number or a dict of per-block scales in diffusers' "
                                   f"syntax, e.g. {name}={STYLE} (InstantStyle's style blocks for SD 1.5) or "
                                   f"{STYLE_AND_LAYOUT} (style and layout)")
    for side, part in v.items():
        if side not in SD15_BLOCKS:
            hint = " (diffusers writes 'mid')" if side in ("middle", "mid_block") else ""
            raise ParameterError(name, f"{name}: unknown key {side!r}{hint}; the keys are 'down', 'mid' and 'up'")
        if side == "mid":
            values = part if isinstance(part, (list, tuple)) else [part]
            if len(values) != 1:
                raise ParameterError(name, f"{name}: 'mid' has one attention layer: give one scale, not {len(values)}")
            _one(name, "mid", values[0])
        elif isinstance(part, dict):
            for block, s in part.items():
                _block(name, side, block, s)
        else:
            _one(name, side, part)
    if not any(s > 0 for s in layer_scales(v).values()):
        raise ParameterError(name, f"{name}={v!r} gives the picture no layer (every scale is 0): the style would "
                                   f"change nothing")


def layer_scales(setting) -> dict[str, float]:
    """The scale each SD 1.5 cross-attention layer gets from ``setting`` (a number or a checked dict), by layer
    name as diffusers names the processors' blocks (``up_blocks.1.attentions.0``), in the UNet's order: down
    blocks, up blocks, mid block. Blocks a dict does not name get 0, as in diffusers."""
    out = {}
    for side in ("down", "up", "mid"):
        if side == "mid":
            part = setting if _is_number(setting) else setting.get("mid", 0.0)
            out["mid_block.attentions.0"] = float(part[0] if isinstance(part, (list, tuple)) else part)
            continue
        part = setting if _is_number(setting) else setting.get(side, 0.0)
        for block, n in SD15_BLOCKS[side].items():
            s = part if _is_number(part) else part.get(block, 0.0)
            values = list(s) if isinstance(s, (list, tuple)) else [s]
            values = values * n if len(values) == 1 else values
            for j, x in enumerate(values):
                out[f"{side}_blocks.{block[6:]}.attentions.{j}"] = float(x)
    return out


def processor_scales(unet) -> dict[str, float]:
    """The scale diffusers really set on each IP-Adapter processor of a loaded UNet (2D or AnimateDiff's),
    by the same layer names as ``layer_scales`` (the first adapter's scale when several are loaded)."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0

    return {name.split(".transformer_blocks")[0]: float(p.scale[0]) for name, p in unet.attn_processors.items()
            if isinstance(p, (IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0))}


def cross_attention_widths(unet_config: dict, names) -> list[int]:
    """The width of each cross-attention layer, named as in ``unet.attn_processors`` (the order diffusers
    numbers the published file's ``ip_adapter.<k>`` entries in: k = 1, 3, 5, …)."""
    channels = list(unet_config["block_out_channels"])
    widths = []
    for name in names:
        if name.endswith("attn1.processor") or "motion_modules" in name:
            continue
        if name.startswith("mid_block"):
            widths.append(channels[-1])
        elif name.startswith("up_blocks"):
            widths.append(list(reversed(channels))[int(name.split(".")[1])])
        else:
            widths.append(channels[int(name.split(".")[1])])
    return widths
