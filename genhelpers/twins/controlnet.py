"""Twins of SDXL's ControlNets: diffusers/controlnet-depth-sdxl-1.0 and diffusers/controlnet-canny-sdxl-1.0.

Each is a ``ControlNetModel`` made from the SDXL twin's UNet (``ControlNetModel.from_unet``, as the published ones
were made from SDXL's), with the published four-level conditioning embedding (so a control image at the output size
lands on the latent grid, 8× smaller) at toy width. A fresh ControlNet's output convolutions and the embedding's last
convolution start at zero, which would make the control image change nothing: ``liven`` gives them small random
weights, a different stream for each twin, so depth and edges steer the frames differently; the embedding's
convolutions get unit-scale (He) random weights so the image's signal survives them.
"""
from __future__ import annotations

from .common import SEED, liven, seeded
from .image import sdxl_unet

EMBEDDING = (8, 8, 16, 16)  # published: (16, 32, 96, 256) — four levels, three stride-2 steps (×8)


def _sdxl_controlnet(seed: int):
    import torch
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(sdxl_unet(), conditioning_embedding_out_channels=EMBEDDING)
    seeded(seed)
    liven(net, std=0.2)
    with torch.no_grad():  # default init shrinks the signal over the embedding's 8 convolutions: keep it at unit scale,
        for m in net.controlnet_cond_embedding.modules():  # so the control image, not only the net, moves the output
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
    return net.eval()


def controlnet_depth_sdxl():
    return _sdxl_controlnet(SEED + 60)


def controlnet_canny_sdxl():
    return _sdxl_controlnet(SEED + 61)


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "controlnet-depth-sdxl-1.0": controlnet_depth_sdxl,
    "controlnet-canny-sdxl-1.0": controlnet_canny_sdxl,
}
