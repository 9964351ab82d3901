"""Twins of the IP-Adapter family: ``h94/IP-Adapter``'s layout at toy width, made for the ``tiny:sd15`` UNet.

The published repository is not one diffusers folder: it keeps many adapters side by side under ``models/``
(``ip-adapter_sd15.safetensors``, ``-plus``, ``-light``, …, each with a pickle copy) and the CLIP ViT-H/14 image
encoder they share in ``models/image_encoder/``. The twin writes the two things the SD 1.5 route reads, under
their published names: ``models/ip-adapter_sd15.safetensors`` (float16, as published; every key of the published
file, one K/V pair per cross-attention layer of the sd15 twin's UNet) and ``models/image_encoder/``
(``CLIPVisionModelWithProjection``: 224-px input like the published one, because the pipeline's feature extractor
crops to 224; patch 32 and width 32 to stay tiny; projection width 24, on purpose not the UNet's 32, so a mix-up
of the two widths fails).

Weights are drawn at a larger spread than a fresh model's (projection std 0.2, K/V std 0.5) so the picture's
attention visibly moves a 2-step twin clip: with a fresh model's init every panel of the lesson would look the
same and no test could tell the scales apart.
"""
from __future__ import annotations

from pathlib import Path

from ..models.ipadapter import WEIGHT_NAME
from .common import SEED, seeded

ENCODER = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=224,
               patch_size=32, projection_dim=24)


class Repository:
    """A folder in h94/IP-Adapter's layout (``save_pretrained`` as the twin registry calls it)."""

    def __init__(self, adapter, encoder):
        self.adapter, self.encoder = adapter, encoder

    def save_pretrained(self, folder, **_kwargs):
        import torch
        from safetensors.torch import save_file

        models = Path(folder) / "models"
        models.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in self.adapter.state_dict().items()}
        save_file(state, str(models / WEIGHT_NAME))
        self.encoder.save_pretrained(models / "image_encoder", safe_serialization=True)


def image_encoder():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    seeded(SEED + 60)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**ENCODER)).eval()


def adapter_for(unet, image_embeds_dim: int):
    """IP-Adapter weights in the published layout for ``unet`` (one K/V pair per cross-attention layer)."""
    import torch

    from ..models.ipadapter import cross_attention_widths
    from ..models.ipadapter_weights import IPAdapterWeights

    widths = cross_attention_widths(dict(unet.config), unet.attn_processors.keys())
    seeded(SEED + 61)
    adapter = IPAdapterWeights(image_embeds_dim=image_embeds_dim, cross_attention_dim=unet.config.cross_attention_dim,
                               num_tokens=4, hidden_sizes=tuple(widths)).eval()
    with torch.no_grad():
        adapter.image_proj.proj.weight.normal_(0, 0.2)
        adapter.image_proj.proj.bias.zero_()
        for pair in adapter.ip_adapter.values():
            pair.to_k_ip.weight.normal_(0, 0.5)
            pair.to_v_ip.weight.normal_(0, 0.5)
    return adapter


def repository():
    """The h94/IP-Adapter layout for the sd15 twin: the SD 1.5 adapter and the image encoder it reads."""
    from .image import sd15

    encoder = image_encoder()
    return Repository(adapter_for(sd15().unet, encoder.config.projection_dim), encoder)


BUILDERS = {  # both keys name the same repository: the adapter file, and the image encoder folder beside it
    "ip-adapter-sd15": repository,
    "ip-adapter-image-encoder": repository,
}
