"""The deterministic weight rule the authors' tiny fixtures were made with (tests/reference/*/…fixture.json
describe it): every tensor drawn from a generator seeded with crc32("<tag>:<key>"), norm scales near 1, other
vectors small, matrices scaled by their fan-in. Written once from that description, for every differential test."""
import math
import zlib

import torch


def rule_weights(shapes: dict, tag: str, skip_suffixes: tuple[str, ...] = ()) -> dict:
    """{key: tensor} for {key: shape}; keys ending in ``skip_suffixes`` (buffers the authors' code computes, such
    as AnimateDiff's sinusoidal ``pos_encoder.pe``) are left out."""
    out = {}
    for key, shape in shapes.items():
        if key.endswith(skip_suffixes):
            continue
        g = torch.Generator().manual_seed(zlib.crc32(f"{tag}:{key}".encode()))
        x = torch.randn(tuple(shape), generator=g, dtype=torch.float32)
        owner = key.rsplit(".", 2)[-2]
        if len(shape) == 1 and "norm" in owner and key.endswith(".weight"):
            x = 1 + 0.1 * x
        elif len(shape) == 1:
            x = 0.1 * x
        else:
            x = x / math.sqrt(math.prod(shape[1:]))
        out[key] = x
    return out
