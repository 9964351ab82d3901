"""``load(ref)``: the one call a notebook makes to get a ready pipeline (weights, dtype, device, memory plan)."""
from __future__ import annotations

import functools
import time

from ..platform.runtime import Runtime, detect, gpu_warnings
from . import catalog, weights
from . import memory as _memory


def plan(rt: Runtime, request="auto", models=(), height: int = 1024, width: int = 1024, batch: int = 1,
         frames: int = 1, attention: str = "sdpa"):
    """One memory plan for a whole job (e.g. base + refiner sharing a GPU, or SD1.5 + a motion adapter).
    ``models`` are references; the catalog knows their parameter counts and activation rates. Unknown models
    leave the size unknown. ``attention``: "sdpa" (PyTorch's fused attention, the default in diffusers) or
    "eager" (attention maps materialised, e.g. with attention processors that need them)."""
    if isinstance(request, _memory.MemoryPlan):
        return request
    need = job_need(rt, models, height, width, batch, frames, attention)
    chosen = _memory.choose(rt, request, need, batch=batch, frames=frames)
    if not _memory.host_fits(chosen, rt, need):
        print(f"⚠ the host RAM ({rt.host_memory / _memory.GIB:.0f} GiB) may not hold the weights this plan keeps "
              f"there (~{need.weights / _memory.GIB:.1f} GiB): close other notebooks or use a smaller model")
    return chosen


def job_need(rt: Runtime, models=(), height: int = 1024, width: int = 1024, batch: int = 1, frames: int = 1,
             attention: str = "sdpa"):
    """What a job needs (memory.Need) from the catalog's counts, or None when a model is unknown. The job's
    activation rate is that of the last model with one: an add-on that drives the job (a motion adapter turning
    SD1.5 into a clip model) replaces its base's rate; add-ons with rate 0 (a ControlNet, a VAE) keep it."""
    params, shared, rate = {}, {}, 0.0
    refs = [str(r) for r in models if r is not None and r != "auto"]
    for ref in refs:
        entry = catalog.find(ref)
        if entry is None:
            return None
        params[ref] = dict(entry.params)
        if entry.shares and len(refs) > 1:
            shared[ref] = list(entry.shares)
        rate = entry.activations_gib_per_mp * _memory.GIB or rate
    if not params:
        return None
    return _memory.estimate(params, rt.dtype, height, width, batch, frames, rate, attention, shared=shared)


# Pipelines diffusers has frozen (deprecated) live under diffusers.pipelines.deprecated.<name>, but the published
# folders' model_index.json still name their pipeline-owned classes by the old module: Karlo's says
# text_proj: ["unclip", "UnCLIPTextProjModel"], and diffusers 0.42 no longer finds "unclip" (a folder saved by
# 0.42 names ["diffusers", ...], which fails too). This is the one place that maps the old names to diffusers'
# own modules; nothing from a model repository is imported or run.
FROZEN_PIPELINE_MODULES = {"unclip": "diffusers.pipelines.deprecated.unclip"}


def frozen_pipeline_modules() -> dict:
    """Make each frozen pipeline module reachable under its old name (``diffusers.pipelines.unclip``), as diffusers
    resolves a model_index.json entry ``[module, class]``; returns {old name: module}."""
    import importlib

    import diffusers.pipelines

    found = {}
    for old, new in FROZEN_PIPELINE_MODULES.items():
        module = importlib.import_module(new)
        if not hasattr(diffusers.pipelines, old):
            setattr(diffusers.pipelines, old, module)
        found[old] = module
    return found


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


def _init_params(cls) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def _wanted_components(cls, replaced) -> set[str] | None:
    """The components ``cls`` loads from a folder, less those the caller supplies (None: unknown, take all)."""
    if cls.__name__ == "DiffusionPipeline":
        return None
    return _init_params(cls) - set(replaced)


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
    frozen_pipeline_modules()
    unsupported = tuple(g for g in rt.gpus if not g.supported)
    if unsupported:
        raise RuntimeError("\n".join(gpu_warnings(unsupported)))
    t0 = time.perf_counter()
    dtype = dtype or rt.dtype
    entry = catalog.find(ref)
    cls_name = pipeline or (entry.cls if entry else None)
    cls = _class(cls_name) if cls_name else None
    chosen = plan(rt, memory, [ref]) if memory is not None else None
    device = chosen.device_for(ref) if chosen is not None else None
    # A component object living on another GPU of a split plan (the base's VAE for the refiner on GPU 1) cannot
    # join this pipeline: this model gets its own copy (the catalog's fp16 replacement where one helps, else its
    # own files, which must then be downloaded too).
    components = {k: ("auto" if _on_other_gpu(v, device) else v) for k, v in components.items()}
    wanted = "fp16" if variant == "auto" and dtype != "float32" else (None if variant == "auto" else variant)
    skipped = dict(entry.skip) if entry else {}  # published parts the collection never loads (with the reason)
    replaced = [k for k, v in components.items() if v is not None and not (v == "auto" and not _auto_replaces(
        k, str(ref), dtype))] + [k for k in skipped if k not in components]
    is_pipeline_cls = cls is not None and issubclass(cls, diffusers.DiffusionPipeline)
    only = _wanted_components(cls, replaced) if is_pipeline_cls else None
    res = weights.resolve(ref, variant=wanted, allow_pickle=allow_pickle, only=only)

    is_pipeline = (res.path / "model_index.json").is_file()
    if cls is None:  # a folder or hub id outside the catalog: its own files name the class
        cls = _class_of_folder(res.path, is_pipeline)
        if issubclass(cls, diffusers.DiffusionPipeline):
            only = _wanted_components(cls, replaced)
    extra = {}
    for name, value in components.items():
        if isinstance(value, str):
            value = _component(name, value, str(ref), dtype, rt, allow_pickle)
        if value is not None:
            extra[name] = value
    for name in skipped:  # None tells diffusers not to load it (a pipeline class without that part needs no word)
        if not issubclass(cls, diffusers.DiffusionPipeline) or name in _init_params(cls):
            extra.setdefault(name, None)
    var = _variant(res, dtype, variant)
    if issubclass(cls, diffusers.DiffusionPipeline):
        weights.check_layout(res.path, cls.__name__, only, aliases=entry.component_folders if entry else None)
        var, own = _components_by_variant(res.path, cls, only, set(extra), var, dtype, allow_pickle,
                                          entry.component_folders if entry else {})
        extra.update(own)
    kwargs = dict(dtype=getattr(torch, dtype), variant=var, use_safetensors=_safetensors(allow_pickle))
    if "safety_checker" in skipped and is_pipeline_cls and "requires_safety_checker" in _init_params(cls):
        kwargs["requires_safety_checker"] = False  # skipped knowingly, said below
    if chosen is not None and chosen.device_map and is_pipeline:
        rooms = {g.index: f"{_memory.usable(g.total_memory) / _memory.GIB:.0f}GiB" for g in rt.gpus}
        kwargs.update(device_map=chosen.device_map, max_memory=rooms)
    obj = cls.from_pretrained(res.path, **kwargs, **extra)
    load_s = time.perf_counter() - t0

    if chosen is not None and is_pipeline:
        _memory.apply(obj, chosen, ref)
    elif chosen is not None:  # a single model (e.g. CLIP) is small: it simply goes to the plan's device
        obj.to(device)
    if chosen is not None:
        for m in _modules(obj):
            m.genhelpers_device = device  # where the plan put it (read when a component joins another pipeline)
    obj.genhelpers_plan = chosen
    n_params = sum(p.numel() for m in _modules(obj) for p in m.parameters())
    info = {"ref": str(ref), "class": type(obj).__name__, "source": res.source, "path": str(res.path),
            "revision": res.revision,
            "dtype": dtype, "variant": var, "parameters": n_params, "load_s": round(load_s, 3),
            "memory_plan": chosen.as_dict() if chosen else None,
            "components": {k: getattr(v, "genhelpers_info", {}).get("ref", type(v).__name__) for k, v in extra.items()
                           if v is not None},
            "skipped": dict(skipped)}
    obj.genhelpers_info = info
    if not quiet:
        print(f"loaded {ref} as {info['class']} from {res.source} · {dtype}"
              f"{' · ' + var + ' files' if var else ''} · {n_params / 1e6:,.1f}M params · {load_s:.1f} s")
        if any(v is not None for v in extra.values()):
            print("  with " + ", ".join(f"{k}={v}" for k, v in info["components"].items() if k not in skipped))
        for name, why in skipped.items():
            print(f"  without {name}: {why}")
        if chosen:
            print("  " + chosen.describe())
    return obj


def _on_other_gpu(obj, device) -> bool:
    """Is ``obj`` placed (by a plan: ``genhelpers_device``, set by ``load``) or living on a GPU other than
    ``device``? Objects on the CPU, such as a VAE loaded to join a pipeline, are not."""
    where = getattr(obj, "genhelpers_device", None) or _device_of(obj)
    return device is not None and where is not None and where.startswith("cuda") and where != device


def _auto_replaces(name: str, ref: str, dtype: str) -> bool:
    """Does ``name="auto"`` bring a replacement (so the model's own copy need not be downloaded)?"""
    entry = catalog.find(ref)
    return name == "vae" and dtype == "float16" and entry is not None and entry.fp16_vae is not None


def _safetensors(allow_pickle: bool):
    """diffusers' and transformers' ``use_safetensors``: True (safetensors only) by default; with the pickle opt-in
    None — safetensors still first wherever a component has them, pickles only for the parts that have none
    (``False`` would read a ``.bin`` even where a ``.safetensors`` sits beside it)."""
    return None if allow_pickle else True


def _components_by_variant(path, cls, only, supplied, var, dtype, allow_pickle, folders):
    """Published folders are not uniform: openai/shap-e keeps some components' safetensors only as fp16, and
    the folder diffusers reads its renderer from (``shap_e_renderer/``) holds only a pickle, while the same
    renderer's safetensors sit in ``renderer/`` (the catalog's ``component_folders``). diffusers takes
    one variant for the whole pipeline, so a component whose files differ is loaded here on its own, with the
    variant (and folder) that exists, and handed to the pipeline. Returns (pipeline variant, {name: model})."""
    import json

    import torch

    from .weights import choose_weights, component_variant

    index = json.loads((path / "model_index.json").read_text())
    comps = [k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None
             and (only is None or k in only) and k not in supplied]
    found = {}
    for c in comps:
        for folder in (c, folders.get(c)):
            if folder and (path / folder).is_dir():
                names = [f.name for f in (path / folder).iterdir()]
                picked = choose_weights(names, var, allow_pickle)
                if picked:
                    found[c] = (folder, component_variant(picked))
                    break
    odd = {c: fv for c, fv in found.items() if fv != (c, var)}
    own = {}
    for c, (folder, v) in odd.items():
        module, name = index[c]
        if module in ("diffusers", "transformers"):
            model_cls = _class(name)
        else:  # a class that lives with its pipeline in diffusers (shap_e.ShapERenderer, unclip.UnCLIPTextProjModel)
            import diffusers.pipelines

            frozen_pipeline_modules()  # (the old module names of frozen pipelines are attributes from here on)
            model_cls = getattr(getattr(diffusers.pipelines, module), name)
        own[c] = model_cls.from_pretrained(path / folder, dtype=getattr(torch, dtype), variant=v,
                                           use_safetensors=_safetensors(allow_pickle))
    return var, own


def _class_of_folder(path, is_pipeline: bool):
    """The class a folder's own files name: one of our pipelines (which diffusers cannot know), else
    diffusers' generic loader for pipelines, or the model class in config.json."""
    import json

    import diffusers

    from . import classes

    if is_pipeline:
        name = json.loads((path / "model_index.json").read_text()).get("_class_name", "")
        if isinstance(name, list):  # [module, class]: a pipeline shipped as code in the repository
            if classes.own(name[-1]):
                return classes.own(name[-1])
            raise ValueError(f"{path} names its pipeline as code shipped with the weights ({name[0]}.py). genhelpers "
                             f"never runs code from a model repository; pass pipeline='<a diffusers class>' if the "
                             f"weights fit one")
        return classes.own(name) or diffusers.DiffusionPipeline
    config = json.loads((path / "config.json").read_text())
    return _class(config.get("_class_name") or config.get("architectures", [""])[0])


def _device_of(obj):
    import torch

    if isinstance(obj, torch.nn.Module):
        return str(next(obj.parameters()).device)
    return None


def retry_on_oom(pipe, rt: Runtime | None = None, frames: int = 1):
    """The out-of-memory safety net, as a decorator on the small function that makes the diffusers call::

        @genhelpers.retry_on_oom(pipe, rt)
        def generate():
            return pipe(prompt=prompt, num_inference_steps=steps).images

        images = generate()

    If the GPU runs out of memory anyway: free it, move ``pipe`` to the next leaner plan, say so, and call the
    function again (it should draw fresh generators, so a retry starts from the same noise); the plans tried are
    recorded in the pipeline's info (and so in every sidecar). A planned estimate can be wrong; this is the safety
    net. ``pipe=None`` (e.g. no refiner) leaves the function as it is."""
    def decorate(call):
        if pipe is None:
            return call

        @functools.wraps(call)
        def run(*args, **kwargs):
            machine = rt or detect()
            while True:
                try:
                    return call(*args, **kwargs)
                except Exception as e:  # only out-of-memory errors are handled; the rest are re-raised
                    current = getattr(pipe, "genhelpers_plan", None)
                    if current is None or not _memory.is_out_of_memory(e):
                        raise
                    nxt = _memory.fallback(current, machine, frames=frames, error=f"{type(e).__name__}: {e}")
                    _memory.free_gpu_memory()
                    if current.device_map:  # diffusers forbids .to() and offload on a pipeline placed by a device_map
                        pipe.reset_device_map()
                    if current.offload:
                        pipe.remove_all_hooks()
                    _memory.apply(pipe, nxt)
                    pipe.genhelpers_plan = nxt
                    info = getattr(pipe, "genhelpers_info", None)
                    if info is not None:
                        info["memory_plan"] = nxt.as_dict()
                    print(f"⚠ out of GPU memory with plan '{current.name}': retrying with {nxt.describe()}")
        return run
    return decorate


def _class(name: str):
    """A class by name from our own pipelines, diffusers, else transformers."""
    import diffusers
    import transformers

    from . import classes

    if name and classes.own(name):
        return classes.own(name)
    for lib in (diffusers, transformers, *frozen_pipeline_modules().values()):
        if name and hasattr(lib, name):
            return getattr(lib, name)
    raise ValueError(f"pipeline={name!r} is not a diffusers or transformers class (check the spelling, "
                     f"e.g. 'AnimateDiffPipeline')")


def _modules(obj):
    import torch

    if isinstance(obj, torch.nn.Module):
        return [obj]
    return [m for m in getattr(obj, "components", {}).values() if isinstance(m, torch.nn.Module)]
