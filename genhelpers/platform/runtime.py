"""Where am I running? Platform (Kaggle / Colab / local), the GPUs, and the dtype to compute in.

Everything here is plain data so that tests (and the memory planner) can describe machines they do not have:
``Runtime(platform="kaggle", gpus=(T4, T4))`` is as good as a detected one.
"""
from __future__ import annotations

import os
import platform as _platform
import sys
from dataclasses import dataclass, field

GIB = 1024**3


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    total_memory: int  # bytes
    capability: tuple[int, int]
    supported: bool = True  # False when this torch build ships no kernels for the card

    @property
    def sm(self) -> str:
        return f"sm_{self.capability[0]}{self.capability[1]}"

    def describe(self) -> str:
        return f"{self.name} ({self.total_memory / GIB:.1f} GiB, {self.sm})"


@dataclass(frozen=True)
class Runtime:
    platform: str  # "kaggle" | "colab" | "local"
    gpus: tuple[GPU, ...] = ()
    dtype: str = "float32"  # "float16" | "bfloat16" | "float32"
    threads: int = 1
    host_memory: int = 0  # bytes
    warnings: tuple[str, ...] = field(default=())

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def summary(self) -> str:
        """One line a person reads at the top of a run."""
        if self.gpus:
            names = [g.describe() for g in self.gpus]
            hw = f"{len(names)}× {names[0]}" if len(set(names)) == 1 else " + ".join(names)
        else:
            hw = f"CPU only ({self.threads} threads)"
        line = f"{self.platform} · {hw} · {self.dtype}"
        if self.host_memory:
            line += f" · host RAM {self.host_memory / GIB:.0f} GiB"
        return line + "".join(f"\n⚠ {w}" for w in self.warnings)

    def as_dict(self) -> dict:
        return {
            "platform": self.platform,
            "device": self.device,
            "dtype": self.dtype,
            "threads": self.threads,
            "host_memory_gib": round(self.host_memory / GIB, 1),
            "gpus": [
                {"index": g.index, "name": g.name, "memory_gib": round(g.total_memory / GIB, 2), "capability": g.sm}
                for g in self.gpus
            ],
            "warnings": list(self.warnings),
        }


def detect_platform(environ=None, modules=None) -> str:
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    if environ.get("COLAB_RELEASE_TAG") or environ.get("COLAB_GPU") is not None or "google.colab" in modules:
        return "colab"
    return "local"


def _arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """False only when the card is older than every architecture this torch build was compiled for (the
    P100 on current Kaggle images). Newer cards run through PTX, so they are not flagged."""
    archs = [int(a[3:]) for a in arch_list if a.startswith("sm_") and a[3:].isdigit()]
    if not archs:  # unknown build: do not cry wolf
        return True
    return capability[0] * 10 + capability[1] >= min(archs)


def list_gpus() -> tuple[GPU, ...]:
    import torch

    if not torch.cuda.is_available():
        return ()
    arch_list = torch.cuda.get_arch_list()
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        cap = (p.major, p.minor)
        gpus.append(GPU(i, p.name, p.total_memory, cap, _arch_supported(cap, arch_list)))
    return tuple(gpus)


def choose_dtype(gpus: tuple[GPU, ...], request: str = "auto") -> str:
    """fp32 on CPU; fp16 on Turing/Volta (sm_7x, the T4) although torch reports bf16 there (it is emulated,
    slow); bf16 on Ampere and newer (sm_80+), which has the fp32 range and native bf16 units."""
    if request != "auto":
        if request not in ("float16", "bfloat16", "float32"):
            raise ValueError(f"dtype={request!r} is not known: use 'auto', 'float16', 'bfloat16' or 'float32'")
        return request
    if not gpus:
        return "float32"
    lowest = min(g.capability for g in gpus)
    return "bfloat16" if lowest >= (8, 0) else "float16"


def gpu_warnings(gpus: tuple[GPU, ...]) -> tuple[str, ...]:
    out = []
    for g in gpus:
        if not g.supported:
            out.append(
                f"GPU {g.index} {g.name} ({g.sm}) is not supported by this PyTorch build "
                f"(the current Kaggle image dropped the P100). Switch the accelerator to 'GPU T4 x2' "
                f"in the notebook settings (Kaggle: Settings → Accelerator)."
            )
    return tuple(out)


def host_memory() -> int:
    try:
        import psutil

        return psutil.virtual_memory().total
    except Exception:  # psutil missing on an odd image: the summary just omits it
        return 0


MAX_THREADS = "GENHELPERS_MAX_THREADS"


def detect(dtype: str = "auto", threads: int | None = None, environ=None, gpus=None) -> Runtime:
    """Detect the machine. ``threads`` fixes torch's CPU thread count (bit-reproducible CPU runs need a
    fixed count), capped by the environment variable GENHELPERS_MAX_THREADS when the runner shares the cores
    between parallel notebooks; ``gpus`` lets a caller describe a machine instead of probing this one."""
    import torch

    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"cpu_threads={threads} must be a positive number of threads (None: torch's default)")
        torch.set_num_threads(int(threads))
    cap = int(os.environ.get(MAX_THREADS, "0") or 0)  # set by `genhelpers run --workers N`: cores shared out
    if cap and torch.get_num_threads() > cap:
        torch.set_num_threads(cap)
    gpus = list_gpus() if gpus is None else tuple(gpus)
    return Runtime(
        platform=detect_platform(environ),
        gpus=gpus,
        dtype=choose_dtype(gpus, dtype),
        threads=torch.get_num_threads(),
        host_memory=host_memory(),
        warnings=gpu_warnings(gpus),
    )


def python_version() -> str:
    return _platform.python_version()
