"""Memory plans: which diffusers memory features a job gets on this machine, decided before loading.

A plan is plain data (``MemoryPlan``). ``choose(runtime, request, need)`` returns the fastest plan whose
estimate fits, trying in this order:

  gpu                 everything on one GPU (VAE slicing when decoding a batch or a clip)
  split               two GPUs: one model per GPU (e.g. the SDXL refiner on the second T4), or one pipeline's
                      components spread with diffusers' device_map="balanced"
  gpu-lean            one GPU with the VAE sliced and tiled, and for clips the UNet's feed-forward layers run in
                      chunks and frames decoded two at a time
  model-offload       components wait in host RAM and visit the GPU one at a time (enable_model_cpu_offload)
  sequential-offload  layer by layer (enable_sequential_cpu_offload) with attention slicing: least GPU memory,
                      slowest
  cpu                 no GPU: everything on the CPU in float32

The estimate: weights exactly (catalog parameter counts × bytes of the dtype, by component and placement) plus
activations (a rate per megapixel of output for each model family — every frame counts — scaled by batch,
reduced by the lean switches). The rates were measured on a GPU with full-size random-weight models
(``benchmarks/gpu_full_size.py``, figures in ``benchmarks/gpu_full_size.json``); explicit plans always win.
``fallback`` gives the next plan when generation runs out of memory.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..platform.runtime import GIB, Runtime

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
ORDER = ("gpu", "split", "gpu-lean", "model-offload", "sequential-offload")
PLANS = ("cpu", *ORDER)
CONTEXT_RESERVE = 1.0 * GIB  # CUDA context, cuDNN workspaces, allocator fragmentation
USABLE_FRACTION = 0.92
HOST_RESERVE = 3 * GIB  # Python, torch, the notebook itself
ACTIVATIONS_PER_MEGAPIXEL = 2.3 * GIB  # SD-family image job, half precision: the VAE decode of the image peaks
# activations left with the lean switches. Images: VAE tiling only starts above the VAE's tile (1024 px for SDXL),
# so at the usual sizes nothing is saved (measured: SDXL base + refiner at 1024² peaked the same with it);
# clips: forward chunking and decoding two frames at a time
LEAN_FACTOR = {"image": 1.0, "clip": 0.5}
OFFLOAD_ACTIVATION_FACTOR = 0.5  # offloaded plans also chunk / slice attention
ATTENTION_FACTOR = {"sdpa": 1.0, "eager": 2.0}  # PyTorch's fused attention vs materialised attention maps
# VAEs without slicing/tiling (diffusers raises NotImplementedError): SVD's temporal decoder decodes a clip in
# chunks of frames instead (the plan's decode_chunk_size, passed to the pipeline call)
CHUNKED_VAES = ("AutoencoderKLTemporalDecoder",)


@dataclass(frozen=True)
class Need:
    """What a job needs: weights per model (bytes, by component, each model standing alone), the bytes of
    components a model borrows from another when both share a device, and activations at full size."""
    models: dict[str, dict[str, int]]  # model reference -> {component: bytes}
    activations: int
    shared: dict[str, int] = field(default_factory=dict)  # model reference -> bytes it borrows on one device

    def size(self, ref: str) -> int:
        return sum(self.models[ref].values())

    @property
    def weights(self) -> int:
        """On one device: shared components counted once."""
        return sum(self.size(r) for r in self.models) - sum(self.shared.values())

    @property
    def largest(self) -> int:
        return max((b for c in self.models.values() for b in c.values()), default=0)

    @property
    def total(self) -> int:
        return self.weights + self.activations


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
    devices: dict = field(default_factory=dict)  # model reference -> device, when models sit on different GPUs
    device_map: str | None = None  # "balanced": one pipeline's components spread over the GPUs by diffusers
    estimate: dict = field(default_factory=dict)  # GiB: per device, host, and what was assumed
    reason: str = ""
    fallbacks: tuple = ()  # plans that ran out of memory before this one, with the error

    def device_for(self, ref) -> str:
        return self.devices.get(str(ref), self.device)

    def describe(self) -> str:
        extras = [n for n, on in (("VAE slicing", self.vae_slicing), ("VAE tiling", self.vae_tiling),
                                  ("attention slicing", self.attention_slicing),
                                  ("forward chunking", self.forward_chunking),
                                  (f"decoding {self.decode_chunk_size} frames at a time",
                                   self.decode_chunk_size is not None)) if on]
        if self.devices:
            where = "models on " + ", ".join(f"{d} ({r})" for r, d in self.devices.items())
        elif self.device_map:
            where = f"components spread over the GPUs (device_map={self.device_map!r})"
        else:
            where = {None: f"on {self.device}", "model": f"model CPU offload to {self.device}",
                     "sequential": f"sequential CPU offload to {self.device}"}[self.offload]
        text = f"memory plan '{self.name}': {where}" + (f" + {', '.join(extras)}" if extras else "")
        return text + (f" ({self.reason})" if self.reason else "")

    def as_dict(self) -> dict:
        return asdict(self)


def estimate(models: dict[str, dict[str, int]], dtype: str, height: int = 1024, width: int = 1024,
             batch: int = 1, frames: int = 1, rate: float = ACTIVATIONS_PER_MEGAPIXEL,
             attention: str = "sdpa", shared: dict[str, list[str]] | None = None) -> Need:
    """``models``: {reference: {component: parameter count}}; ``shared``: {reference: components it borrows
    from another model of the job on the same device}; ``rate``: activation bytes per megapixel of output in
    half precision (catalog entries carry it)."""
    per = DTYPE_BYTES[dtype]
    sized = {ref: {c: n * per for c, n in comps.items()} for ref, comps in models.items()}
    borrowed = {ref: sum(sized[ref].get(c, 0) for c in comps) for ref, comps in (shared or {}).items()}
    act = rate * height * width / 1e6 * batch * frames * per / 2 * ATTENTION_FACTOR[attention]
    return Need(sized, int(act), borrowed)


def usable(total_memory: int) -> int:
    return int(total_memory * USABLE_FRACTION - CONTEXT_RESERVE)


def _gib(b) -> float:
    return round(b / GIB, 2)


def _fits(name: str, runtime: Runtime, need: Need, frames: int):
    """(fits, estimate dict, device assignment) for plan ``name``."""
    rooms = [usable(g.total_memory) for g in runtime.gpus]
    lean = LEAN_FACTOR["clip" if frames > 1 else "image"]
    act = need.activations
    if name == "gpu":
        return need.total <= rooms[0], {"cuda:0": _gib(need.total)}, {}
    if name == "split":
        if len(rooms) < 2:
            return False, {}, {}
        if len(need.models) >= 2:  # the biggest model on GPU 0, the others (own copies, no sharing) on GPU 1
            refs = sorted(need.models, key=lambda r: -need.size(r))
            devices = {r: "cuda:0" if r == refs[0] else "cuda:1" for r in refs}
            load = [act + sum(need.size(r) for r in refs if devices[r] == f"cuda:{g}") for g in (0, 1)]
            used = {"cuda:0": _gib(load[0]), "cuda:1": _gib(load[1])}
            return load[0] <= rooms[0] and load[1] <= rooms[1], used, devices
        first = need.largest + act  # one pipeline: the UNet (and activations) on one GPU, the rest beside it
        rest = need.weights - need.largest
        return first <= rooms[0] and rest <= rooms[1], {"cuda:0": _gib(first), "cuda:1": _gib(rest)}, {}
    if name == "gpu-lean":
        used = need.weights + act * lean
        return used <= rooms[0], {"cuda:0": _gib(used)}, {}
    if name == "model-offload":
        used = need.largest + act * lean * OFFLOAD_ACTIVATION_FACTOR
        return used <= rooms[0], {"cuda:0": _gib(used), "host": _gib(need.weights)}, {}
    used = act * lean * OFFLOAD_ACTIVATION_FACTOR + need.largest / 8  # layer by layer
    return used <= rooms[0], {"cuda:0": _gib(used), "host": _gib(need.weights)}, {}


def named(name: str, runtime: Runtime, gpu: int = 0, batch: int = 1, frames: int = 1, reason: str = "",
          devices: dict | None = None, estimate: dict | None = None) -> MemoryPlan:
    """The plan called ``name`` on this runtime (``frames`` > 1: a video request)."""
    if name not in PLANS:
        raise ValueError(f"memory={name!r} is not a plan: use 'auto' or one of {', '.join(PLANS)}")
    if name != "cpu" and not runtime.gpus:
        raise ValueError(f"memory={name!r} needs a GPU and this machine has none: use memory='auto' or 'cpu'")
    if name == "split" and len(runtime.gpus) < 2:
        raise ValueError("memory='split' needs two GPUs (on Kaggle: Accelerator 'GPU T4 x2')")
    common = {"reason": reason, "estimate": dict(estimate or {})}
    if name == "cpu":
        return MemoryPlan("cpu", "cpu", reason=reason or "no GPU", estimate=common["estimate"])
    device = f"cuda:{gpu}"
    video = frames > 1
    if name == "gpu":
        return MemoryPlan("gpu", device, vae_slicing=batch > 1 or video, decode_chunk_size=8 if video else None,
                          **common)
    if name == "split":
        return MemoryPlan("split", device, vae_slicing=batch > 1 or video, decode_chunk_size=8 if video else None,
                          devices=dict(devices or {}), device_map=None if devices else "balanced", **common)
    if name == "gpu-lean":
        return MemoryPlan(name, device, vae_slicing=True, vae_tiling=True, forward_chunking=video,
                          decode_chunk_size=2 if video else None, **common)
    if name == "model-offload":
        return MemoryPlan(name, device, offload="model", vae_slicing=True, vae_tiling=True, forward_chunking=video,
                          decode_chunk_size=2 if video else None, **common)
    return MemoryPlan(name, device, offload="sequential", vae_slicing=True, vae_tiling=True,
                      attention_slicing=True, forward_chunking=video, decode_chunk_size=1 if video else None,
                      **common)


def choose(runtime: Runtime, request: str = "auto", need: Need | None = None, batch: int = 1,
           frames: int = 1) -> MemoryPlan:
    """The plan asked for, or with ``"auto"`` the first in ORDER whose estimate fits."""
    if request != "auto":
        if request == "split" and need is not None and len(need.models) >= 2 and len(runtime.gpus) >= 2:
            _, used, devices = _fits("split", runtime, need, frames)
            return named(request, runtime, batch=batch, frames=frames, reason="asked for", devices=devices,
                         estimate=used)
        return named(request, runtime, batch=batch, frames=frames, reason="asked for")
    if not runtime.gpus:
        return named("cpu", runtime)
    if need is None:
        return named("gpu", runtime, batch=batch, frames=frames, reason="size of the request unknown")
    room = usable(runtime.gpus[0].total_memory)
    for name in ORDER:
        ok, used, devices = _fits(name, runtime, need, frames)
        if ok:
            why = f"needs ~{max(v for k, v in used.items() if k != 'host'):.1f} GiB of {room / GIB:.1f} GiB usable"
            if name != "gpu":
                why = f"~{need.total / GIB:.1f} GiB does not fit one GPU at full speed; {why}"
            return named(name, runtime, batch=batch, frames=frames, reason=why, devices=devices, estimate=used)
    _, used, _ = _fits("sequential-offload", runtime, need, frames)
    return named("sequential-offload", runtime, batch=batch, frames=frames, estimate=used,
                 reason=f"does not fit even layer by layer (~{max(used.values()):.1f} GiB): expect out-of-memory; "
                        f"reduce the size, frames or batch")


def host_fits(plan: MemoryPlan, runtime: Runtime, need: Need | None) -> bool:
    """Offloading keeps every weight in host RAM; loading holds the largest component there at least."""
    if need is None or not runtime.host_memory:
        return True
    held = need.weights if plan.offload else need.largest
    return held + HOST_RESERVE <= runtime.host_memory


def fallback(plan: MemoryPlan, runtime: Runtime, frames: int = 1, error: str = "") -> MemoryPlan:
    """The next, leaner plan after ``plan`` ran out of memory (RuntimeError when there is none)."""
    if plan.name not in ORDER or plan.name == ORDER[-1]:
        raise RuntimeError(f"out of GPU memory with plan '{plan.name}' and no leaner plan is left: reduce the "
                           f"size, frames or batch") from None
    following = [n for n in ORDER[ORDER.index(plan.name) + 1:] if n != "split" or len(runtime.gpus) >= 2]
    nxt = named(following[0], runtime, frames=frames, reason=f"after running out of memory with '{plan.name}'")
    history = (*plan.fallbacks, {"plan": plan.name, "error": error[:300]})
    return MemoryPlan(**{**asdict(nxt), "fallbacks": history})


def apply(pipe, plan: MemoryPlan, ref=None):
    """Apply ``plan`` to a diffusers pipeline (0.42 API: VAE switches live on the VAE). A pipeline loaded
    with a device_map is already placed."""
    device = plan.device_for(ref) if ref is not None else plan.device
    gpu_id = int(device.split(":")[1]) if ":" in device else None
    if plan.device_map:
        pass
    elif plan.offload == "model":
        pipe.enable_model_cpu_offload(gpu_id=gpu_id)
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(gpu_id=gpu_id)
    else:
        pipe.to(device)
        adapter = getattr(pipe, "motion_adapter", None)
        if adapter is not None and type(getattr(pipe, "unet", None)).__name__ == "UNetMotionModel":
            # AnimateDiff copied the adapter's layers into the UNet when it built the pipeline; the adapter
            # object is not used again, so it need not hold a second copy on the GPU (~0.85 GiB in fp16, measured)
            adapter.to("cpu")
    vae = getattr(pipe, "vae", None)
    if vae is not None and type(vae).__name__ not in CHUNKED_VAES:
        if plan.vae_slicing:
            vae.enable_slicing()
        if plan.vae_tiling:
            vae.enable_tiling()
    # stylecrafter: diffusers' attention slicing replaces every attention processor of a UNet2DConditionModel,
    # the IP-Adapter's too: the picture would be dropped silently (or the call fails on the adapter's inputs). A
    # pipeline with an IP-Adapter loaded keeps its processors; the other switches still apply.
    unet = getattr(pipe, "unet", None)
    has_ip_adapter = getattr(getattr(unet, "config", None), "encoder_hid_dim_type", None) == "ip_image_proj"
    if plan.attention_slicing and not has_ip_adapter:
        pipe.enable_attention_slicing()
    if plan.forward_chunking:  # the denoiser's feed-forward layers in chunks (a UNet, or a video transformer)
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        if hasattr(denoiser, "enable_forward_chunking"):
            denoiser.enable_forward_chunking()
    # stylecrafter: the plan a pipeline now runs under, for retry_on_oom and the sidecars, also when it was
    # placed by hand (``genhelpers.place``, e.g. after ``load_ip_adapter`` added parts to a pipeline)
    pipe.genhelpers_plan = plan
    if isinstance(getattr(pipe, "genhelpers_info", None), dict):
        pipe.genhelpers_info["memory_plan"] = plan.as_dict()
    return pipe


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_gpu_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
