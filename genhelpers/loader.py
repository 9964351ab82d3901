"""``load(ref)``: the one call a notebook makes to get a ready pipeline (weights, dtype, device, memory plan)."""
from __future__ import annotations

import time

from . import catalog, weights
from . import memory as _memory
from .runtime import Runtime, detect, gpu_warnings


def plan(rt: Runtime, request="auto", models=(), height: int = 1024, width: int = 1024, batch: int = 1,
         frames: int = 1):
    """One memory plan for a whole job (e.g. base + refiner sharing a GPU, or SD1.5 + a motion adapter).
    ``models`` are references; the catalog knows their parameter counts and activation rates. Unknown models
    leave the size unknown."""
    if isinstance(request, _memory.MemoryPlan):
        return request
    params, known, rate = {}, True, 0.0
    for ref in models:
        if ref is None or ref == "auto":
            continue
        entry = catalog.find(ref)
        if entry is None:
            known = False
            continue
        for comp, n in entry.params.items():
            params.setdefault(f"{entry.key}.{comp}", n)
        rate = max(rate, entry.activations_gib_per_mp * _memory.GIB)
    need = _memory.estimate(params, rt.dtype, height, width, batch, frames, rate) if params and known else None
    return _memory.choose(rt, request, need, batch=batch, frames=frames)


def _variant(res: weights.Resolved, dtype: str, variant: str | None) -> str | None:
    """'auto': the half-precision files when computing in half precision and the folder has them."""
    if variant != "auto":
        return variant
    if dtype in ("float16", "bfloat16") and "fp16" in res.variants():
        return "fp16"
    return None


def _component(name: str, value, ref: str, dtype: str, rt: Runtime, allow_pickle: bool):
    """Resolve a component given by reference. 'auto' means the catalog's fp16 replacement where one helps
    (SDXL's VAE overflows in fp16), else the model's own (None)."""
    if value == "auto":
        entry = catalog.find(ref)
        if not (name == "vae" and dtype == "float16" and entry is not None and entry.fp16_vae):
            return None
        value = ("tiny:" if ref.startswith("tiny:") else "") + entry.fp16_vae  # a twin gets a twin: stays offline
    return load(value, rt, memory=None, dtype=dtype, allow_pickle=allow_pickle, quiet=True)


def _wanted_components(cls, replaced) -> set[str] | None:
    """The components ``cls`` loads from a folder, less those the caller supplies (None: unknown, take all)."""
    import inspect

    if cls.__name__ == "DiffusionPipeline":
        return None
    return set(inspect.signature(cls.__init__).parameters) - {"self"} - set(replaced)


def load(ref, rt: Runtime | None = None, *, memory="auto", pipeline: str | None = None, dtype: str | None = None,
         variant: str | None = "auto", allow_pickle: bool = False, quiet: bool = False, **components):
    """Resolve ``ref`` to weights, load it with the right class/dtype/variant, apply the memory plan, print
    what happened. ``pipeline`` names another diffusers class to build from the same folder (e.g.
    ``"AnimateDiffPipeline"`` from a Stable Diffusion 1.5 folder). Component keyword arguments replace a
    pipeline's own: a loaded object, a model reference (e.g. ``vae="sdxl-vae-fp16-fix"``), ``"auto"``
    (genhelpers picks, or keeps the model's own) or ``None`` (keep the model's own). ``memory=None`` skips
    placement (used for components joining a pipeline)."""
    import diffusers
    import torch

    rt = rt or detect()
    unsupported = tuple(g for g in rt.gpus if not g.supported)
    if unsupported:
        raise RuntimeError("\n".join(gpu_warnings(unsupported)))
    t0 = time.perf_counter()
    dtype = dtype or rt.dtype
    entry = catalog.find(ref)
    cls_name = pipeline or (entry.cls if entry else None)
    cls = _class(cls_name) if cls_name else None
    wanted = "fp16" if variant == "auto" and dtype != "float32" else (None if variant == "auto" else variant)
    replaced = [k for k, v in components.items() if v is not None and v != "auto"]
    is_pipeline_cls = cls is not None and issubclass(cls, diffusers.DiffusionPipeline)
    only = _wanted_components(cls, replaced) if is_pipeline_cls else None
    res = weights.resolve(ref, variant=wanted, allow_pickle=allow_pickle, only=only)
    var = _variant(res, dtype, variant)

    extra = {}
    for name, value in components.items():
        if isinstance(value, str):
            value = _component(name, value, str(ref), dtype, rt, allow_pickle)
        if value is not None:
            extra[name] = value

    is_pipeline = (res.path / "model_index.json").is_file()
    if cls is None and is_pipeline:
        cls = diffusers.DiffusionPipeline
    elif cls is None:
        import json

        config = json.loads((res.path / "config.json").read_text())
        cls = _class(config.get("_class_name") or config.get("architectures", [""])[0])
    kwargs = dict(dtype=getattr(torch, dtype), variant=var, use_safetensors=not allow_pickle)
    obj = cls.from_pretrained(res.path, **kwargs, **extra)
    load_s = time.perf_counter() - t0

    chosen = plan(rt, memory, [ref]) if memory is not None else None
    if chosen is not None and is_pipeline:
        _memory.apply(obj, chosen)
    elif chosen is not None:  # a single model (e.g. CLIP) is small: it simply goes to the plan's device
        obj.to(chosen.device)
    n_params = sum(p.numel() for m in _modules(obj) for p in m.parameters())
    info = {"ref": str(ref), "class": type(obj).__name__, "source": res.source, "path": str(res.path),
            "dtype": dtype, "variant": var, "parameters": n_params, "load_s": round(load_s, 3),
            "memory_plan": chosen.as_dict() if chosen else None,
            "components": {k: getattr(v, "genhelpers_info", {}).get("ref", type(v).__name__) for k, v in extra.items()}}
    obj.genhelpers_info = info
    if not quiet:
        print(f"loaded {ref} as {info['class']} from {res.source} · {dtype}"
              f"{' · ' + var + ' files' if var else ''} · {n_params / 1e6:,.1f}M params · {load_s:.1f} s")
        if extra:
            print("  with " + ", ".join(f"{k}={v}" for k, v in info["components"].items()))
        if chosen:
            print("  " + chosen.describe())
    return obj


def _class(name: str):
    """A class by name from diffusers, else transformers."""
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        if name and hasattr(lib, name):
            return getattr(lib, name)
    raise ValueError(f"pipeline={name!r} is not a diffusers or transformers class (check the spelling, "
                     f"e.g. 'AnimateDiffPipeline')")


def _modules(obj):
    import torch

    if isinstance(obj, torch.nn.Module):
        return [obj]
    return [m for m in getattr(obj, "components", {}).values() if isinstance(m, torch.nn.Module)]
