"""The twin of the published MotionDirector temporal LoRAs (``ruizhaocv/MotionDirector``): for two motions, a
pickled list ``[up_0, down_0, …]`` of float32 Parameters in the authors' order, in the repository's layout
(``<motion>/checkpoint-default/temporal/lora/unet.pt``; ``zoom_in`` keeps its ``150_unet.pt`` name), sized for the
text-to-video twins' UNet3D (``tiny:modelscope-t2v``, ``tiny:zeroscope-v2-576w``: same layout). Its ``up`` halves
are not zero (a trained LoRA's are not), so the LoRA changes the clip; the real opt-in and converter run on it."""
from __future__ import annotations

from pathlib import Path

from .common import SEED

RANK = 4
FILES = {"riding_bicycle": "unet.pt", "zoom_in": "150_unet.pt"}
UP_STD = 0.5


def write(folder: Path) -> None:
    import torch

    from ..models.motiondirector import selected
    from .video import _unet3d

    unet = _unet3d(SEED + 42)  # the text-to-video twins' architecture (the seed does not matter for shapes)
    names = selected(unet, "temporal")
    for i, (motion, filename) in enumerate(FILES.items()):
        g = torch.Generator().manual_seed(90 + i)
        tensors = []
        for name in names:
            layer = unet.get_submodule(name)
            up = torch.randn(layer.out_features, RANK, generator=g) * UP_STD
            down = torch.randn(RANK, layer.in_features, generator=g) / RANK  # the authors' init: std 1/r
            tensors += [torch.nn.Parameter(up), torch.nn.Parameter(down)]
        target = folder / motion / "checkpoint-default" / "temporal" / "lora" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tensors, target)


WRITERS = {"motiondirector-lora": write}  # twin key -> writer(folder): pickled lists, not save_pretrained
