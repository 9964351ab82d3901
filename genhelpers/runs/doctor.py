"""`genhelpers doctor`: will each notebook run on this machine (or on one described with --gpu), and how?

For every notebook, its real setup (the ``kaggle-t4`` profile: published models, real sizes) is planned
exactly as ``load`` would plan it, and the answer is one row: the plan, the estimated GPU and host memory,
and what to change when it does not fit well.
"""
from __future__ import annotations

from ..hub import catalog
from ..hub.loader import job_need
from ..hub.memory import GIB, choose, host_fits
from ..platform.runtime import Runtime

MODEL_PARAMS = ("model", "refiner", "base_model", "adapter", "sparsectrl_model", "controlnet_model", "text_model",
                "image_model", "clip_model", "variations_model", "caption_model", "sd_model")
MODEL_PARAMS += ("ip_adapter",)  # stylecrafter: the IP-Adapter and its image encoder ride on the base model
MODEL_PARAMS += ("llm",)  # procedural_3d, motion_editing, gpt4motion: the planner's instruct LLM (issue 27)
MODEL_PARAMS += ("depth_model", "edge_model")  # gpt4motion: SDXL's two ControlNets (issue 27)
ADVICE = {
    "gpu": "fits at full speed",
    "split": "fits, using both GPUs",
    "gpu-lean": "fits with VAE tiling / chunked layers (a little slower)",
    "model-offload": "fits with model CPU offload (slower); a bigger GPU or a smaller size avoids it",
    "sequential-offload": "only layer by layer (very slow): reduce the size, frames or batch",
}


def job(params: dict) -> tuple[list[str], dict]:
    """The models a notebook loads with ``params``, and the size of its request."""
    mode = params.get("mode", "both")
    skip = {"text_model"} if mode == "image" else {"image_model"} if mode == "text" else set()
    if not params.get("sparsectrl", False):
        skip.add("sparsectrl_model")
    if not params.get("controlnet", False):
        skip.add("controlnet_model")
    refs = [params[k] for k in MODEL_PARAMS if k in params and k not in skip and params[k]]
    first = catalog.find(refs[0]) if refs else None
    defaults = first.defaults if first else {}
    size = {"height": params.get("height", defaults.get("height", 1024)),
            "width": params.get("width", defaults.get("width", 1024)),
            "frames": params.get("frames", 1),
            "batch": params.get("num_images", params.get("batch", params.get("views", 1)))}
    if "frame_size" in params:  # Shap-E renders frame_size² views
        size.update(height=params["frame_size"], width=params["frame_size"])
    size["generates"] = "height" in params or "frame_size" in params or "height" in defaults
    return refs, size


CASCADE = ("stage_1", "stage_2", "stage_3")  # DeepFloyd IF: each stage loaded alone, at its output side
CASCADE_SIDES = (64, 256, 1024)


def training_row(name: str, params: dict, rt: Runtime) -> dict:
    """A notebook that fine-tunes a published model (Tune-A-Video): weights + trained parameters with their
    gradients and optimizer state + the activations kept for the backward pass, all on one GPU (no offloading
    while training)."""
    from ..models import tuneavideo

    side, frames = params["size"], params["frames"]
    out = {"notebook": name, "models": [params["base_model"]], "height": side, "width": side, "frames": frames,
           "batch": 1, "generates": True}
    entry = catalog.find(params["base_model"])
    if entry is None:
        return {**out, "plan": "gpu", "fits": True, "gpu_gib": None, "host_gib": None,
                "advice": "size of the base model unknown: trains on one GPU"}
    c = tuneavideo.counts(entry.key)
    need = tuneavideo.training_bytes(c["base"] + c["temporal_layers"], c["trained"], frames, side, side,
                                     params.get("use_8bit_adam", False), params.get("gradient_checkpointing", True))
    return _training_verdict(out, need, rt, "trains on one GPU (~{gib} GiB: {parts})",
                             "training needs ~{gib} GiB ({parts}): fewer frames or a smaller size, "
                             "gradient_checkpointing=True, use_8bit_adam=True")


def _training_verdict(out: dict, need: dict, rt: Runtime, fits_advice: str, too_big_advice: str) -> dict:
    """A training row's verdict: ``need`` ({part: bytes}) on the first GPU, with no offloading while training.
    The advice strings take ``{gib}`` and ``{parts}``."""
    from ..hub.memory import usable

    total = sum(need.values())
    gib = round(total / GIB, 1)
    parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in need.items())
    if not rt.gpus:
        return {**out, "plan": "cpu", "fits": False, "gpu_gib": 0, "host_gib": gib,
                "advice": "no GPU: tuning the published model would take hours here; run the smoke profile"}
    if any(not g.supported for g in rt.gpus):
        return {**out, "plan": "-", "fits": False, "gpu_gib": None, "host_gib": None,
                "advice": "this GPU is not supported by the current Kaggle image: choose 'GPU T4 x2'"}
    fits = total <= usable(rt.gpus[0].total_memory)
    advice = (fits_advice if fits else too_big_advice).format(gib=gib, parts=parts)
    return {**out, "plan": "gpu" if fits else "-", "fits": fits, "gpu_gib": gib,
            "host_gib": round(need["weights"] / GIB, 1), "advice": advice}


# motion_director (issue 26): MotionDirector's two LoRAs trained on a text-to-video base
def motion_director_row(name: str, params: dict, rt: Runtime) -> dict:
    """MotionDirector tunes two LoRAs on a frozen text-to-video model, on one GPU: the model in float16, both
    LoRAs in float32 with their gradients and optimizer state, the temporal pass's activations."""
    from ..models import motiondirector

    side, frames = params["size"], params["frames"]
    out = {"notebook": name, "models": [params["model"]], "height": side, "width": side, "frames": frames,
           "batch": 1, "generates": True}
    entry = catalog.find(params["model"])
    if entry is None:
        return {**out, "plan": "gpu", "fits": True, "gpu_gib": None, "host_gib": None,
                "advice": "size of the base model unknown: trains on one GPU"}
    c = motiondirector.counts(entry.key, params["lora_rank"], params.get("spatial_targets"),
                              params.get("temporal_targets"))
    need = motiondirector.training_bytes(c, frames, side, params.get("use_8bit_adam", False),
                                         params.get("gradient_checkpointing", True))
    return _training_verdict(out, need, rt, "trains two LoRAs on one GPU (~{gib} GiB est.: {parts}; not measured)",
                             "training needs ~{gib} GiB ({parts}): fewer frames or a smaller size, "
                             "gradient_checkpointing=True")


def dvae_row(name: str, params: dict, rt: Runtime) -> dict:
    """DALL·E's dVAE comes from OpenAI's CDN, not the hub (no catalog entry): its weights in float32 (the package
    keeps them so, computing in half precision on a GPU) plus its measured activations for the pictures."""
    from ..models import dvae

    side, pictures = params["size"], len(params.get("images") or [None] * 4)
    weights = sum(dvae.meta_count(p) for p in dvae.PARTS) * 4 / GIB
    gpu = weights + dvae.ACTIVATIONS_GIB_PER_MP * pictures * side * side / 1e6
    out = {"notebook": name, "models": [params["dvae_weights"]], "height": side, "width": side, "frames": 1,
           "batch": pictures, "generates": True, "host_gib": round(weights, 1)}
    if not rt.gpus:
        return {**out, "plan": "cpu", "fits": True, "gpu_gib": 0,
                "advice": "small (98 M parameters): runs on the CPU too, in seconds"}
    return {**out, "plan": "gpu", "fits": gpu < min(g.total_memory for g in rt.gpus) / GIB, "gpu_gib": round(gpu, 1),
            "advice": ADVICE["gpu"]}


def animate_anyone_row(name: str, params: dict, rt: Runtime) -> dict:
    """Animate Anyone: Moore's pipeline (its weights, image encoder and VAE) and the measuring CLIP, then, with
    ``stock_route``, the stock pipeline (SD1.5 + motion adapter + OpenPose ControlNet + IP-Adapter) beside it (the
    notebook keeps Moore's loaded for its panel, so the second job counts both): the hungrier job decides."""
    jobs = [[params["model"], params["image_encoder"], params["vae"], params["clip_model"]]]
    if params.get("stock_route"):
        jobs.append(jobs[0] + [params[k] for k in ("base_model", "adapter", "controlnet_model", "ip_adapter",
                                                   "ip_adapter_encoder")])
    size = {"height": params["height"], "width": params["width"], "frames": params["frames"], "batch": 1,
            "generates": True}
    rows = []
    for refs in jobs:
        out = {"notebook": name, "models": jobs[-1], **size}
        need = job_need(rt, refs, size["height"], size["width"], 1, size["frames"])
        plan = choose(rt, "auto", need, batch=1, frames=size["frames"])
        if not rt.gpus:
            return {**out, "plan": "cpu", "fits": False, "gpu_gib": 0,
                    "host_gib": round(need.weights / GIB, 1) if need else None,
                    "advice": "no GPU: the published models would take hours here; run the smoke profile (tiny twins)"}
        gpu = max((v for k, v in plan.estimate.items() if k != "host"), default=None)
        fits = plan.name != "sequential-offload" or "does not fit" not in plan.reason
        rows.append({**out, "plan": plan.name, "fits": fits and host_fits(plan, rt, need), "gpu_gib": gpu,
                     "host_gib": round((need.weights if plan.offload else need.largest) / GIB, 1),
                     "advice": ADVICE[plan.name] if fits else "does not fit even layer by layer: fewer frames"})
    order = ["gpu", "split", "gpu-lean", "model-offload", "sequential-offload"]
    worst = max(rows, key=lambda r: (not r["fits"], order.index(r["plan"]), r["gpu_gib"] or 0))
    return {**worst, "advice": worst["advice"] + (" (two routes: the stock one runs beside Moore's, both counted)"
                                                  if len(rows) > 1 else "")}


def tryon_row(name: str, params: dict, rt: Runtime) -> dict:
    """virtual_tryon (CatVTON): the UNet denoises the person and the garment on one canvas twice as tall, so the
    job is planned at 2·height; the row shows the picture's size. (The attention weights replace the UNet's own
    self-attention: no extra parameters; the VAE is counted once, in the base's entry.)"""
    rest = {k: v for k, v in params.items() if k != "attention_version"}
    out = row(name, {**rest, "height": 2 * params["height"]}, rt)
    return {**out, "height": params["height"], "advice": out["advice"] + " (canvas twice the picture's height)"}


def row(name: str, params: dict, rt: Runtime) -> dict:
    if "attention_version" in params:
        return tryon_row(name, params, rt)
    if "temporal_targets" in params:  # motion_director: a training row of its own
        return motion_director_row(name, params, rt)
    if "motion" in params and "image_encoder" in params:  # animate_anyone
        return animate_anyone_row(name, params, rt)
    if "train_steps" in params and params.get("base_model"):
        return training_row(name, params, rt)
    if params.get("stage_1"):
        stages = [params[k] for k in CASCADE if params.get(k)]
        rest = {k: v for k, v in params.items() if k not in CASCADE}
        return row(name, {**rest, "models": stages, "sizes": list(CASCADE_SIDES[:len(stages)])}, rt)
    if isinstance(params.get("models"), list):  # several models loaded one after another: the hungriest decides
        rest = {k: v for k, v in params.items() if k not in ("models", "sizes", "clip_model")}
        sides = params.get("sizes") or [None] * len(params["models"])
        each = [row(name, {**rest, "model": m, **({"height": s, "width": s} if s else {}),
                           "num_images": len(params.get("prompts") or [None])}, rt)
                for m, s in zip(params["models"], sides, strict=True)]
        order = ["cpu", "gpu", "split", "gpu-lean", "model-offload", "sequential-offload", "-"]
        worst = max(each, key=lambda r: (not r["fits"], order.index(r["plan"]), r["gpu_gib"] or 0))
        return {**worst, "models": list(params["models"]),
                "advice": worst["advice"] + " (models loaded one at a time; the largest shown)"}
    if "dvae_weights" in params:
        return dvae_row(name, params, rt)
    refs, size = job(params)
    out = {"notebook": name, "models": refs, **size}
    if not refs:
        return {**out, "plan": "cpu", "fits": True, "gpu_gib": 0, "host_gib": 0,
                "advice": "trains on the CPU by design (a few minutes)"}
    if any(not g.supported for g in rt.gpus):
        return {**out, "plan": "-", "fits": False, "gpu_gib": None, "host_gib": None,
                "advice": "this GPU is not supported by the current Kaggle image: choose 'GPU T4 x2'"}
    need = job_need(rt, refs, size["height"], size["width"], size["batch"], size["frames"])
    plan = choose(rt, "auto", need, batch=size["batch"], frames=size["frames"])
    if not rt.gpus:
        return {**out, "plan": "cpu", "fits": False, "gpu_gib": 0,
                "host_gib": round(need.weights / GIB, 1) if need else None,
                "advice": "no GPU: the published models would take hours here; run the smoke profile "
                          "(tiny twins) or use a GPU machine"}
    gpu = max((v for k, v in plan.estimate.items() if k != "host"), default=None)
    fits = plan.name != "sequential-offload" or "does not fit" not in plan.reason
    advice = ADVICE[plan.name] if fits else "does not fit even layer by layer: reduce the size, frames or batch"
    if not host_fits(plan, rt, need):
        advice += f"; host RAM ({rt.host_memory / GIB:.0f} GiB) is too small for the offloaded weights"
        fits = False
    held = need.weights if plan.offload else need.largest
    return {**out, "plan": plan.name, "fits": fits, "gpu_gib": gpu, "host_gib": round(held / GIB, 1),
            "advice": advice}


def table(profiles: dict, rt: Runtime, profile: str = "kaggle-t4") -> list[dict]:
    return [row(name, per[profile], rt) for name, per in profiles.items() if profile in per]


def render(rows: list[dict]) -> str:
    lines = ["| notebook | size | plan | GPU GiB (est.) | host GiB | fits | what to know |",
             "| --- | --- | --- | ---: | ---: | --- | --- |"]
    for r in rows:
        size = f"{r['width']}×{r['height']}" + (f" × {r['frames']} frames" if r["frames"] > 1 else "")
        size = size if r["generates"] else "-"
        gpu = "-" if r["gpu_gib"] is None else f"{r['gpu_gib']:.1f}"
        host = "-" if r["host_gib"] is None else f"{r['host_gib']:.1f}"
        lines.append(f"| {r['notebook']} | {size} | {r['plan']} | {gpu} | {host} | {'yes' if r['fits'] else 'no'} "
                     f"| {r['advice']} |")
    return "\n".join(lines)
