"""The twin of DALL·E's discrete VAE: the ``dall_e`` package's own Encoder/Decoder at the smallest width they
accept, seeded random weights made to see the picture (see ``liven``), pickled whole as OpenAI published
them (``encoder.pkl``, ``decoder.pkl``), so the real opt-in, check and conversion path runs on it."""
from __future__ import annotations

from pathlib import Path

# the smallest the classes accept (n_hid ≥ 64, vocab ≥ 512): same blocks, 4 groups, 3 poolings → 8×8-px tokens
TWIN_SIZE = {"encoder": {"n_hid": 64, "n_blk_per_group": 1, "input_channels": 3, "vocab_size": 512},
             "decoder": {"n_init": 32, "n_hid": 64, "n_blk_per_group": 1, "output_channels": 3,
                         "vocab_size": 512}}


def write(folder: Path) -> None:
    """Write the twin's two pickles into ``folder`` (the registry builds it once, in a private folder)."""
    import torch

    from ..models.dvae import PARTS, build

    for i, part in enumerate(PARTS):
        torch.manual_seed(70 + i)
        module = liven(build(part, TWIN_SIZE[part]), part)
        torch.save(module, folder / f"{part}.pkl")  # a whole pickled module, as published


def liven(module, part: str):
    """A fresh dVAE is nearly blind: every position's features share one large component (the grey level of
    the picture through the first convolution, then the ReLUs' mean), so the encoder's arg-max is the same token
    everywhere, for any picture (a dead path), and the decoder's pixels all sit near grey. The twin's first
    filters are made to sum to zero (they see differences, not the grey level), its output layer's bias is
    centred once on seeded smooth colour fields, and its decoder's output layer is scaled up: tokens then follow
    the picture, and pixels follow the tokens. Still random weights, still the published classes."""
    import torch

    out = module.blocks.output.conv
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        if part == "encoder":
            first = module.blocks.input.w
            first.sub_(first.mean(dim=(1, 2, 3), keepdim=True))
            blobs = torch.nn.functional.interpolate(torch.rand(16, 3, 4, 4, generator=g), size=64, mode="bilinear")
            mean = torch.relu(module.blocks[:-1](blobs * 0.8 + 0.1)).mean(dim=(0, 2, 3))
            out.b.copy_(-(out.w[:, :, 0, 0] @ mean))
        else:
            out.w.mul_(30.0)
    return module
