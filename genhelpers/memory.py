"""Memory plans: which diffusers memory features a pipeline gets on this machine.

A plan is plain data (``MemoryPlan``), chosen by ``choose(runtime, request, need)`` and applied by
``apply(pipe, plan)`` with the diffusers 0.42 API. ``memory="auto"`` picks the fastest plan that fits:

  cpu                 no GPU: everything on the CPU in float32
  gpu                 the whole pipeline on one GPU (VAE slicing when decoding a batch or a clip)
  gpu-lean            the same, with the UNet's feed-forward layers run in chunks and video decoded two frames
                      at a time: clips that would not fit otherwise, at a small cost in speed
  model-offload       components live in host RAM and visit the GPU one at a time (enable_model_cpu_offload)
  sequential-offload  layer by layer (enable_sequential_cpu_offload): least GPU memory, slowest

The estimate of what a request needs is deliberately simple here: weights at the compute dtype plus an
activation allowance per megapixel of output (frames count as images), whose rate each catalog entry carries.
Those rates are rough and not yet calibrated on a GPU; the memory planner replaces them with measurements.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .runtime import GIB, Runtime

PLANS = ("cpu", "gpu", "gpu-lean", "model-offload", "sequential-offload")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
CONTEXT_RESERVE = 1.0 * GIB  # CUDA context, cuDNN workspaces, allocator fragmentation
USABLE_FRACTION = 0.92
ACTIVATIONS_PER_MEGAPIXEL = 2.5 * GIB  # SDXL-class UNet with classifier-free guidance, half precision
LEAN_FACTOR = 0.5  # share of the activations left with forward chunking and chunked video decoding


@dataclass(frozen=True)
class MemoryPlan:
    name: str
    device: str = "cpu"  # where the pipeline runs ("cpu", "cuda:0")
    offload: str | None = None  # None | "model" | "sequential"
    vae_slicing: bool = False
    vae_tiling: bool = False
    attention_slicing: bool = False
    forward_chunking: bool = False  # unet.enable_forward_chunking(): feed-forward layers in chunks
    decode_chunk_size: int | None = None  # frames the VAE decodes at once (video pipelines); None: all
    reason: str = ""

    def describe(self) -> str:
        extras = [n for n, on in (("VAE slicing", self.vae_slicing), ("VAE tiling", self.vae_tiling),
                                  ("attention slicing", self.attention_slicing),
                                  ("forward chunking", self.forward_chunking),
                                  (f"decoding {self.decode_chunk_size} frames at a time",
                                   self.decode_chunk_size is not None)) if on]
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


def estimate(params: dict[str, int], dtype: str, height: int = 1024, width: int = 1024, batch: int = 1,
             frames: int = 1, rate: float = ACTIVATIONS_PER_MEGAPIXEL) -> Need:
    """``rate``: bytes of activations per megapixel of output in half precision (catalog entries carry it)."""
    per = DTYPE_BYTES[dtype]
    megapixels = height * width / 1e6
    return Need(weights=sum(params.values()) * per, largest=max(params.values(), default=0) * per,
                activations=int(rate * megapixels * batch * frames * per / 2))


def usable(total_memory: int) -> int:
    return int(total_memory * USABLE_FRACTION - CONTEXT_RESERVE)


def named(name: str, runtime: Runtime, gpu: int = 0, batch: int = 1, frames: int = 1, reason: str = "") -> MemoryPlan:
    """The plan called ``name`` on this runtime (``frames`` > 1: a video request)."""
    if name not in PLANS:
        raise ValueError(f"memory={name!r} is not a plan: use 'auto' or one of {', '.join(PLANS)}")
    if name != "cpu" and not runtime.gpus:
        raise ValueError(f"memory={name!r} needs a GPU and this machine has none: use memory='auto' or 'cpu'")
    if name == "cpu":
        return MemoryPlan("cpu", "cpu", reason=reason or "no GPU")
    device = f"cuda:{gpu}"
    video = frames > 1
    if name == "gpu":
        return MemoryPlan("gpu", device, vae_slicing=batch > 1 or video, decode_chunk_size=8 if video else None,
                          reason=reason)
    if name == "gpu-lean":
        return MemoryPlan(name, device, vae_slicing=True, forward_chunking=True,
                          decode_chunk_size=2 if video else None, reason=reason)
    if name == "model-offload":
        return MemoryPlan(name, device, offload="model", vae_slicing=True, vae_tiling=True, forward_chunking=video,
                          decode_chunk_size=2 if video else None, reason=reason)
    return MemoryPlan(name, device, offload="sequential", vae_slicing=True, vae_tiling=True,
                      attention_slicing=True, forward_chunking=video, decode_chunk_size=1 if video else None,
                      reason=reason)


def choose(runtime: Runtime, request: str = "auto", need: Need | None = None, batch: int = 1,
           frames: int = 1) -> MemoryPlan:
    if request != "auto":
        return named(request, runtime, batch=batch, frames=frames, reason="asked for")
    if not runtime.gpus:
        return named("cpu", runtime)
    gpu = runtime.gpus[0]
    room = usable(gpu.total_memory)
    if need is None:
        return named("gpu", runtime, batch=batch, frames=frames, reason="size of the request unknown")

    def fmt(b):
        return f"{b / GIB:.1f} GiB"

    if need.total <= room:
        why = f"needs ~{fmt(need.total)} of {fmt(room)} usable on {gpu.name}"
        return named("gpu", runtime, batch=batch, frames=frames, reason=why)
    # chunked feed-forward and decoding help clips (work spread over frames), hardly single images
    lean = int(need.activations * LEAN_FACTOR) if frames > 1 else need.activations
    if frames > 1 and need.weights + lean <= room:
        why = (f"~{fmt(need.total)} does not fit {fmt(room)}; "
               f"chunked layers and decoding need ~{fmt(need.weights + lean)}")
        return named("gpu-lean", runtime, batch=batch, frames=frames, reason=why)
    if need.largest + lean <= room:
        why = f"~{fmt(need.total)} does not fit {fmt(room)}; one component at a time (~{fmt(need.largest + lean)}) does"
        return named("model-offload", runtime, frames=frames, reason=why)
    why = f"the largest component (~{fmt(need.largest)}) with its activations (~{fmt(lean)}) exceeds {fmt(room)}"
    return named("sequential-offload", runtime, frames=frames, reason=why)


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
    if plan.forward_chunking:
        pipe.unet.enable_forward_chunking()
    return pipe
