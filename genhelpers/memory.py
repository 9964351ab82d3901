"""Memory plans: which diffusers memory features a pipeline gets on this machine.

A plan is plain data (``MemoryPlan``), chosen by ``choose(runtime, request, need)`` and applied by
``apply(pipe, plan)`` with the diffusers 0.42 API. ``memory="auto"`` picks the fastest plan that fits:

  cpu                 no GPU: everything on the CPU in float32
  gpu                 the whole pipeline on one GPU (VAE slicing when decoding a batch)
  model-offload       components live in host RAM and visit the GPU one at a time (enable_model_cpu_offload)
  sequential-offload  layer by layer (enable_sequential_cpu_offload): least GPU memory, slowest

The estimate of what a request needs is deliberately simple here (weights at the compute dtype plus a
per-megapixel activation allowance); the memory planner replaces it with exact accounting.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .runtime import GIB, Runtime

PLANS = ("cpu", "gpu", "model-offload", "sequential-offload")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
CONTEXT_RESERVE = 1.0 * GIB  # CUDA context, cuDNN workspaces, allocator fragmentation
USABLE_FRACTION = 0.92
ACTIVATIONS_PER_MEGAPIXEL = 2.5 * GIB  # SDXL-class UNet with classifier-free guidance, half precision


@dataclass(frozen=True)
class MemoryPlan:
    name: str
    device: str = "cpu"  # where the pipeline runs ("cpu", "cuda:0")
    offload: str | None = None  # None | "model" | "sequential"
    vae_slicing: bool = False
    vae_tiling: bool = False
    attention_slicing: bool = False
    reason: str = ""

    def describe(self) -> str:
        extras = [n for n, on in (("VAE slicing", self.vae_slicing), ("VAE tiling", self.vae_tiling),
                                  ("attention slicing", self.attention_slicing)) if on]
        where = {None: f"on {self.device}", "model": f"model CPU offload to {self.device}",
                 "sequential": f"sequential CPU offload to {self.device}"}[self.offload]
        return f"memory plan '{self.name}': {where}" + (f" + {', '.join(extras)}" if extras else "") + (
            f" ({self.reason})" if self.reason else "")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Need:
    """What a request needs: bytes of weights on the device, the largest single component, activations."""
    weights: int
    largest: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.activations


def estimate(params: dict[str, int], dtype: str, height: int = 1024, width: int = 1024, batch: int = 1) -> Need:
    per = DTYPE_BYTES[dtype]
    megapixels = height * width / 1e6
    return Need(weights=sum(params.values()) * per, largest=max(params.values(), default=0) * per,
                activations=int(ACTIVATIONS_PER_MEGAPIXEL * megapixels * batch * per / 2))


def usable(total_memory: int) -> int:
    return int(total_memory * USABLE_FRACTION - CONTEXT_RESERVE)


def named(name: str, runtime: Runtime, gpu: int = 0, batch: int = 1, reason: str = "") -> MemoryPlan:
    """The plan called ``name`` on this runtime."""
    if name not in PLANS:
        raise ValueError(f"memory={name!r} is not a plan: use 'auto' or one of {', '.join(PLANS)}")
    if name != "cpu" and not runtime.gpus:
        raise ValueError(f"memory={name!r} needs a GPU and this machine has none: use memory='auto' or 'cpu'")
    if name == "cpu":
        return MemoryPlan("cpu", "cpu", reason=reason or "no GPU")
    device = f"cuda:{gpu}"
    if name == "gpu":
        return MemoryPlan("gpu", device, vae_slicing=batch > 1, reason=reason)
    if name == "model-offload":
        return MemoryPlan(name, device, offload="model", vae_slicing=True, vae_tiling=True, reason=reason)
    return MemoryPlan(name, device, offload="sequential", vae_slicing=True, vae_tiling=True,
                      attention_slicing=True, reason=reason)


def choose(runtime: Runtime, request: str = "auto", need: Need | None = None, batch: int = 1) -> MemoryPlan:
    if request != "auto":
        return named(request, runtime, batch=batch, reason="asked for")
    if not runtime.gpus:
        return named("cpu", runtime)
    gpu = runtime.gpus[0]
    room = usable(gpu.total_memory)
    if need is None:
        return named("gpu", runtime, batch=batch, reason="size of the request unknown")
    fmt = lambda b: f"{b / GIB:.1f} GiB"  # noqa: E731
    if need.total <= room:
        why = f"needs ~{fmt(need.total)} of {fmt(room)} usable on {gpu.name}"
        return named("gpu", runtime, batch=batch, reason=why)
    one_at_a_time = need.largest + need.activations
    if one_at_a_time <= room:
        why = f"~{fmt(need.total)} does not fit {fmt(room)}; one component at a time (~{fmt(one_at_a_time)}) does"
        return named("model-offload", runtime, reason=why)
    why = (f"the largest component (~{fmt(need.largest)}) with its activations (~{fmt(need.activations)}) "
           f"exceeds {fmt(room)}")
    return named("sequential-offload", runtime, reason=why)


def apply(pipe, plan: MemoryPlan):
    """Apply ``plan`` to a diffusers pipeline (0.42 API: VAE switches live on the VAE)."""
    gpu_id = int(plan.device.split(":")[1]) if ":" in plan.device else None
    if plan.offload == "model":
        pipe.enable_model_cpu_offload(gpu_id=gpu_id)
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(gpu_id=gpu_id)
    else:
        pipe.to(plan.device)
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        if plan.vae_slicing:
            vae.enable_slicing()
        if plan.vae_tiling:
            vae.enable_tiling()
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    return pipe
