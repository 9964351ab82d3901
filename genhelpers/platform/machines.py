"""Machines described as data, so the planner (and `genhelpers doctor --gpu NAME`) can answer "will it fit?"
for a machine you do not have. Memory figures are what torch reports as total_memory for each card; host RAM
is the budget a notebook gets on the platform that usually offers the card (Kaggle's GPU machines: ~29 GiB)."""
from __future__ import annotations

from .runtime import GIB, GPU, Runtime, choose_dtype, gpu_warnings

_T4 = ("Tesla T4", 15_828_320_256, (7, 5), True)
CARDS = {
    "T4": _T4,
    "P100": ("Tesla P100-PCIE-16GB", 17_071_734_784, (6, 0), False),  # current Kaggle image: no sm_60 kernels
    "L4": ("NVIDIA L4", 23_034_462_208, (8, 9), True),
    "A100-40": ("NVIDIA A100-SXM4-40GB", 42_505_273_344, (8, 0), True),
    "A100-80": ("NVIDIA A100-SXM4-80GB", 85_899_345_920, (8, 0), True),
    "H100": ("NVIDIA H100 80GB HBM3", 85_520_809_984, (9, 0), True),
}
# name -> (platform, card, count, host RAM in GiB)
MACHINES = {
    "CPU": ("local", None, 0, 24),
    "T4": ("kaggle", "T4", 1, 29),
    "T4x2": ("kaggle", "T4", 2, 29),
    "P100": ("kaggle", "P100", 1, 29),
    "L4": ("colab", "L4", 1, 53),
    "A100-40": ("colab", "A100-40", 1, 83),
    "A100-80": ("local", "A100-80", 1, 128),
    "H100": ("local", "H100", 1, 128),
}


def runtime_for(name: str) -> Runtime:
    """A Runtime describing machine ``name`` (see MACHINES)."""
    if name not in MACHINES:
        raise ValueError(f"--gpu {name!r} is not a machine genhelpers knows; choose one of {', '.join(MACHINES)}")
    platform, card, n, host = MACHINES[name]
    gpus = ()
    if card:
        label, memory, capability, supported = CARDS[card]
        gpus = tuple(GPU(i, label, memory, capability, supported) for i in range(n))
    return Runtime(platform, gpus, choose_dtype(gpus), threads=4, host_memory=host * GIB,
                   warnings=gpu_warnings(gpus))
