"""Full-size models with random weights on a real GPU: true peak memory and time per job, against the planner.

Random weights cost the same memory and time as the published ones, so one GPU machine (no hub needed) tells
what a T4 user will meet. For each job of the collection this builds every model component at its published size
from ``genhelpers/hub/configs`` (float16, straight on the GPU), joins it to the tiny twin's pipeline folder (tokenizers,
scheduler: the same loader call a notebook makes, with the full-size components passed in), and runs the job at
the notebook's defaults:

1. with the plan ``gpu`` and no cap: weights and peak (``torch.cuda.max_memory_allocated``), so activations =
   peak − weights, per megapixel of output (every frame counts) — the number ``catalog.activations_gib_per_mp``
   stands for; the split plan's per-GPU peak is each model's own peak here;
2. with the plan the planner picks for one T4, under a cap of a T4's memory
   (``torch.cuda.set_per_process_memory_fraction``): fits or runs out of memory, and how long it takes.

DeepFloyd IF's three stages run as the IF notebook runs them (stage I's T5 embeddings and images are handed on).

Usage (on a GPU machine): ``python benchmarks/gpu_full_size.py OUT.json [job ...]``; ``--dry`` runs the same code
on the twins on a CPU (a check of this script, no figures).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import genhelpers  # noqa: E402
from genhelpers.hub import catalog, loader, memory, published
from genhelpers.platform import machines  # noqa: E402
from genhelpers.platform.runtime import GIB, detect  # noqa: E402

DRY = "--dry" in sys.argv
T4 = machines.runtime_for("T4")
T4_BYTES = T4.gpus[0].total_memory
DTYPE = "float32" if DRY else "float16"  # a T4's dtype
STORE: dict = {}  # results one job hands to the next (the base's latents for the refiner)


def full(key: str, component: str):
    """The published-size component with random weights, float16, on the GPU (None on a dry run: the twin's own)."""
    if DRY:
        return None
    config = published.configs(key)[component]
    cls = published._class(config)
    import transformers

    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            if issubclass(cls, transformers.PreTrainedModel):
                model = cls(cls.config_class.from_dict({k: v for k, v in config.items() if k != "architectures"}))
            else:
                model = cls.from_config(config)
    finally:
        torch.set_default_dtype(torch.float32)
    return model.to(torch.float16).eval()


def gib(b) -> float:
    return round(b / GIB, 3)


def sdxl_base(rt, plan):
    pipe = genhelpers.load("tiny:sdxl-base", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full("sdxl-base", "unet"),
                           text_encoder=full("sdxl-base", "text_encoder"),
                           text_encoder_2=full("sdxl-base", "text_encoder_2"), vae=full("sdxl-vae-fp16-fix", "vae"))

    def call(size, steps):
        out = pipe("a lighthouse at dusk", negative_prompt="", height=size, width=size, num_inference_steps=steps,
                   guidance_scale=5.0, denoising_end=0.8, output_type="latent").images
        STORE["latents"] = out.detach().cpu()
        return out
    return pipe, call


def sdxl_refiner(rt, plan):
    pipe = genhelpers.load("tiny:sdxl-refiner", rt, memory=plan, quiet=True, dtype=DTYPE,
                           unet=full("sdxl-refiner", "unet"), text_encoder_2=full("sdxl-refiner", "text_encoder_2"),
                           vae=full("sdxl-vae-fp16-fix", "vae"))

    def call(size, steps):
        lat = STORE.get("latents")
        if lat is None or lat.shape[-1] != size // 8:
            lat = torch.randn(1, 4, size // 8, size // 8, dtype=torch.float16)
        return pipe("a lighthouse at dusk", negative_prompt="", image=lat, num_inference_steps=steps,
                    guidance_scale=5.0, denoising_start=0.8).images
    return pipe, call


def sd(key):
    def make(rt, plan):
        pipe = genhelpers.load(f"tiny:{key}", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full(key, "unet"),
                               text_encoder=full(key, "text_encoder"), vae=full(key, "vae"))

        def call(size, steps):
            return pipe("a lighthouse at dusk", height=size, width=size, num_inference_steps=steps,
                        guidance_scale=7.5).images
        return pipe, call
    return make


def animatediff(rt, plan):
    adapter = full("animatediff-motion-adapter-v1-5-2", "motion_adapter")
    if adapter is None:
        adapter = genhelpers.load("tiny:animatediff-motion-adapter-v1-5-2", rt, memory=None, quiet=True)
    pipe = genhelpers.load("tiny:sd15", rt, memory=plan, quiet=True, dtype=DTYPE, pipeline="AnimateDiffPipeline",
                           motion_adapter=adapter, unet=full("sd15", "unet"), text_encoder=full("sd15", "text_encoder"),
                           vae=full("sd15", "vae"))

    def call(size, steps, frames=16):
        return pipe(prompt="a lighthouse at dusk", num_frames=frames, height=size, width=size,
                    num_inference_steps=steps, guidance_scale=7.5,
                    decode_chunk_size=pipe.genhelpers_plan.decode_chunk_size or frames).frames[0]
    return pipe, call


def svd(key):
    return lambda rt, plan: _svd(key, rt, plan)


def _svd(key, rt, plan):
    from PIL import Image

    pipe = genhelpers.load(f"tiny:{key}", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full(key, "unet"),
                           image_encoder=full(key, "image_encoder"), vae=full(key, "vae"))

    def call(size, steps, frames=14):
        h, w = size
        return pipe(Image.new("RGB", (w, h), (120, 90, 60)), height=h, width=w, num_frames=frames,
                    num_inference_steps=steps, decode_chunk_size=pipe.genhelpers_plan.decode_chunk_size or frames,
                    ).frames[0]
    return pipe, call


def zero123plus(rt, plan):
    from PIL import Image

    key = "zero123plus-v1.2"
    pipe = genhelpers.load(f"tiny:{key}", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full(key, "unet"),
                           vae=full(key, "vae"), text_encoder=full(key, "text_encoder"),
                           vision_encoder=full(key, "vision_encoder"))

    def call(size, steps):
        return pipe(Image.new("RGB", (320, 320), (200, 80, 40)), num_inference_steps=steps, guidance_scale=4.0)[0]
    return pipe, call


def mvdream(rt, plan):
    pipe = genhelpers.load("tiny:mvdream", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full("mvdream", "unet"),
                           vae=full("mvdream", "vae"), text_encoder=full("mvdream", "text_encoder"))

    def call(size, steps, frames=4):
        return pipe("a wooden chair", negative_prompt="", num_inference_steps=steps, guidance_scale=5.0,
                    num_frames=frames, elevation=0, height=size, width=size)
    return pipe, call


def if_stage_i(rt, plan):
    pipe = genhelpers.load("tiny:if-i-xl", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full("if-i-xl", "unet"),
                           text_encoder=full("if-i-xl", "text_encoder"))

    def call(size, steps):
        pe, ne = pipe.encode_prompt('a sign that says "GenAI"', negative_prompt="", clean_caption=False)
        out = pipe(prompt_embeds=pe, negative_prompt_embeds=ne, num_inference_steps=steps, guidance_scale=7.0,
                   height=size, width=size, output_type="pt").images
        STORE["if"] = (pe.detach().cpu(), ne.detach().cpu(), out.detach().cpu())
        return out
    return pipe, call


def _if_inputs(width: int, low: int):
    pe, ne, image = STORE.get("if", (None, None, None))
    if pe is None or pe.shape[-1] != width:
        pe = ne = torch.randn(1, 77, width, dtype=torch.float16)
    if image is None or image.shape[-1] != low:
        image = torch.rand(1, 3, low, low) * 2 - 1
    return pe, ne, image


def if_stage_ii(rt, plan):
    pipe = genhelpers.load("tiny:if-ii-l", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full("if-ii-l", "unet"))

    def call(size, steps):
        pe, ne, image = _if_inputs(pipe.unet.config.encoder_hid_dim, size // 4)
        out = pipe(image=image, prompt_embeds=pe, negative_prompt_embeds=ne, num_inference_steps=steps,
                   guidance_scale=4.0, noise_level=250, height=size, width=size, output_type="pt").images
        STORE["if_256"] = out.detach().cpu()
        return out
    return pipe, call


def if_stage_iii(rt, plan):
    key = "sd-x4-upscaler"
    pipe = genhelpers.load(f"tiny:{key}", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full(key, "unet"),
                           vae=full(key, "vae"), text_encoder=full(key, "text_encoder"))

    def call(size, steps):
        image = STORE.get("if_256")
        if image is None or image.shape[-1] != size // 4:
            image = torch.rand(1, 3, size // 4, size // 4) * 2 - 1
        return pipe(prompt='a sign that says "GenAI"', image=(image / 2 + 0.5).clamp(0, 1), noise_level=100,
                    num_inference_steps=steps, guidance_scale=9.0).images
    return pipe, call


def text_to_video(key, denoiser):
    def make(rt, plan):
        pipe = genhelpers.load(f"tiny:{key}", rt, memory=plan, quiet=True, dtype=DTYPE,
                               **{denoiser: full(key, denoiser)}, vae=full(key, "vae"),
                               text_encoder=full(key, "text_encoder"))

        def call(size, steps, frames=16):
            h, w = size if isinstance(size, tuple) else (size, size)
            return pipe(prompt="a red panda climbing a tree", num_frames=frames, height=h, width=w,
                        num_inference_steps=steps, output_type="pil").frames[0]
        return pipe, call
    return make


# job: (builder, catalog refs for the planner, size (px or (h, w)), steps, frames)
def karlo(rt, plan):
    parts = ("prior", "decoder", "text_proj", "super_res_first", "super_res_last", "text_encoder")
    pipe = genhelpers.load("tiny:karlo-v1-alpha", rt, memory=plan, quiet=True, dtype=DTYPE,
                           **{c: full("karlo-v1-alpha", c) for c in parts})

    def call(size, steps):  # the notebook's defaults: 25 prior, 25 decoder, 7 super-resolution steps
        return pipe("a big red frog on a green leaf", prior_num_inference_steps=steps,
                    decoder_num_inference_steps=steps, super_res_num_inference_steps=7).images
    return pipe, call


JOBS = {
    "sdxl-base": (sdxl_base, ["sdxl-base"], 1024, 30, 1),
    "sdxl-refiner": (sdxl_refiner, ["sdxl-refiner"], 1024, 30, 1),
    "sd15": (sd("sd15"), ["sd15"], 512, 25, 1),
    "sd21": (sd("sd21"), ["sd21"], 768, 25, 1),
    "animatediff": (animatediff, ["sd15", "animatediff-motion-adapter-v1-5-2"], 512, 25, 16),
    "svd": (svd("svd"), ["svd"], (576, 1024), 25, 14),
    "svd-xt": (svd("svd-xt"), ["svd-xt"], (576, 1024), 25, 25),
    "zero123plus": (zero123plus, ["zero123plus-v1.2"], (960, 640), 28, 1),
    "mvdream": (mvdream, ["mvdream"], 256, 30, 4),
    "if-stage-i": (if_stage_i, ["if-i-xl"], 64, 100, 1),
    "if-stage-ii": (if_stage_ii, ["if-ii-l"], 256, 50, 1),
    "if-stage-iii": (if_stage_iii, ["sd-x4-upscaler"], 1024, 75, 1),
    "modelscope-t2v": (text_to_video("modelscope-t2v", "unet"), ["modelscope-t2v"], 256, 25, 16),
    "cogvideox-2b": (text_to_video("cogvideox-2b", "transformer"), ["cogvideox-2b"], (480, 720), 10, 49),
    "karlo": (karlo, ["karlo-v1-alpha"], 256, 25, 1),
}


def synced(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def run_job(name: str) -> dict:
    make, refs, size, steps, frames = JOBS[name]
    h, w = size if isinstance(size, tuple) else (size, size)
    arg = size
    if DRY:
        steps, arg = 2, ((64, 96) if isinstance(size, tuple) else {64: 16, 256: 64, 1024: 256}.get(size, 64))
    rt = detect()
    need = loader.job_need(T4, refs, h, w, 1, frames)
    rate = next((r for r in (catalog.find(x).activations_gib_per_mp for x in reversed(refs)) if r), 0.0)  # as job_need
    row = {"job": name, "refs": refs, "height": h, "width": w, "frames": frames, "steps": steps,
           "catalog_rate_gib_per_mp": rate,
           "estimate_gib": {"weights": gib(need.weights), "activations": gib(need.activations)}}
    gpu_plan = memory.named("gpu" if rt.gpus else "cpu", rt, frames=frames)
    t0 = time.perf_counter()
    pipe, call = make(rt, gpu_plan)
    row["build_s"] = round(time.perf_counter() - t0, 1)
    extra = {"frames": frames} if frames > 1 else {}
    if rt.gpus:
        torch.cuda.synchronize()
        weights = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    _, seconds = synced(lambda: call(arg, steps, **extra))
    if rt.gpus:
        peak = torch.cuda.max_memory_allocated()
        act = peak - weights
        mp = h * w / 1e6 * frames
        row["gpu"] = {"weights_gib": gib(weights), "peak_gib": gib(peak),
                      "reserved_gib": gib(torch.cuda.max_memory_reserved()), "activations_gib": gib(act),
                      "measured_rate_gib_per_mp": round(act / GIB / mp, 3), "seconds": round(seconds, 2),
                      "s_per_step": round(seconds / steps, 3)}
        t4_plan = loader.plan(T4, "auto", refs, h, w, 1, frames)
        row["t4_plan"] = {"name": t4_plan.name, "estimate": t4_plan.estimate}
        try:  # the same job under a T4's memory, with the plan the planner picks for one T4
            pipe.to("cpu")
            memory.free_gpu_memory()
            plan = memory.MemoryPlan(**{**t4_plan.as_dict(), "device": "cuda:0"})
            memory.apply(pipe, plan)
            pipe.genhelpers_plan = plan  # the calls read the plan's decode chunk, as the notebooks do
            torch.cuda.set_per_process_memory_fraction(T4_BYTES / torch.cuda.get_device_properties(0).total_memory)
            torch.cuda.reset_peak_memory_stats()
            _, seconds = synced(lambda: call(arg, steps, **extra))
            row["t4_plan"].update(fits=True, peak_gib=gib(torch.cuda.max_memory_allocated()),
                                  reserved_gib=gib(torch.cuda.max_memory_reserved()), seconds=round(seconds, 2))
        except torch.OutOfMemoryError as e:
            row["t4_plan"].update(fits=False, error=str(e)[:200])
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
    else:
        row["cpu_seconds"] = round(seconds, 2)
    pipe.remove_all_hooks()
    return row


def sdxl_both_t4() -> dict:
    """Base + refiner sharing text_encoder_2 and the VAE on one T4 (the notebook's single-GPU route), with the
    plan the planner picks, under a T4's memory."""
    refs = ["sdxl-base", "sdxl-refiner"]
    plan = loader.plan(T4, "auto", refs, 1024, 1024)
    row = {"job": "sdxl-both-t4", "refs": refs, "plan": plan.name, "estimate": plan.estimate}
    rt = detect()
    base, call_base = sdxl_base(rt, None)
    refiner = genhelpers.load("tiny:sdxl-refiner", rt, memory=None, quiet=True, dtype=DTYPE,
                              unet=full("sdxl-refiner", "unet"), text_encoder_2=base.text_encoder_2, vae=base.vae)
    for pipe in (base, refiner):
        memory.apply(pipe, memory.MemoryPlan(**{**plan.as_dict(), "device": "cuda:0"}))
    if not rt.gpus:
        return row
    torch.cuda.set_per_process_memory_fraction(T4_BYTES / torch.cuda.get_device_properties(0).total_memory)
    torch.cuda.reset_peak_memory_stats()
    try:
        def both():
            lat = call_base(1024, 30)
            return refiner("a lighthouse at dusk", negative_prompt="", image=lat, num_inference_steps=30,
                           guidance_scale=5.0, denoising_start=0.8).images
        _, seconds = synced(both)
        row.update(fits=True, peak_gib=gib(torch.cuda.max_memory_allocated()),
                   reserved_gib=gib(torch.cuda.max_memory_reserved()), seconds=round(seconds, 2))
    except torch.OutOfMemoryError as e:
        row.update(fits=False, error=str(e)[:200])
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        for pipe in (base, refiner):
            pipe.remove_all_hooks()
    return row


def tune_a_video() -> dict:
    """Tune-A-Video's training step on the full-size SD 1.5 (random weights), 8 frames of 256², float16 frozen
    weights + float32 trained ones under autocast: with and without gradient checkpointing, then with
    checkpointing under a T4's memory."""
    from diffusers import DDIMScheduler

    from genhelpers.models import tuneavideo as tav

    rt = detect()
    plan = memory.named("gpu" if rt.gpus else "cpu", rt)
    pipe = genhelpers.load("tiny:sd15", rt, memory=plan, quiet=True, dtype=DTYPE, unet=full("sd15", "unet"),
                           text_encoder=full("sd15", "text_encoder"), vae=full("sd15", "vae"))
    unet = tav.inflate(pipe.unet)
    pipe.unet = None
    memory.free_gpu_memory()
    frames, size = (8, 256) if not DRY else (2, 64)
    device = unet.device
    latents = tav.encode_frames(pipe.vae, tav.demo_clip(frames, size), device, unet.dtype)
    text = torch.randn(1, 77, 768 if not DRY else 32, device=device, dtype=unet.dtype)
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    row = {"job": "tune-a-video", "frames": frames, "size": size,
           "trained_parameters": sum(p.numel() for p in tav.trainable(unet)), "runs": []}
    for checkpointing, cap, steps in ((False, False, 6), (True, False, 6), (True, True, 6)):
        if rt.gpus:
            torch.cuda.synchronize()
            weights = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            if cap:
                total = torch.cuda.get_device_properties(0).total_memory
                torch.cuda.set_per_process_memory_fraction(T4_BYTES / total)
        run = {"checkpointing": checkpointing, "t4_cap": cap}
        try:
            (_, before, after), seconds = synced(lambda s=steps, c=checkpointing: tav.train(
                unet, latents, text, scheduler, s, 1e-5, checkpointing=c, progress=False))
            run.update(seconds_per_step=round(seconds / (steps + 16 / 8), 3), fits=True)  # + 2 probe passes of 8
            if rt.gpus:
                peak = torch.cuda.max_memory_allocated()
                run.update(weights_gib=gib(weights), peak_gib=gib(peak),
                           reserved_gib=gib(torch.cuda.max_memory_reserved()))
        except torch.OutOfMemoryError as e:
            run.update(fits=False, error=str(e)[:200])
        finally:
            if rt.gpus:
                torch.cuda.set_per_process_memory_fraction(1.0)
        row["runs"].append(run)
    return row


def _measured(fn, rt):
    """(result, {weights/peak/seconds}) of ``fn()`` after the weights are on the GPU."""
    if not rt.gpus:
        out, seconds = synced(fn)
        return out, {"cpu_seconds": round(seconds, 2)}
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out, seconds = synced(fn)
    peak = torch.cuda.max_memory_allocated()
    return out, {"weights_gib": gib(weights), "peak_gib": gib(peak), "activations_gib": gib(peak - weights),
                 "reserved_gib": gib(torch.cuda.max_memory_reserved()), "seconds": round(seconds, 2)}


def dvae_job() -> dict:
    """DALL·E's dVAE at its published size (random weights; the package's classes compute in float16 on a GPU,
    weights in float32): encode + decode the notebook's four pictures of 256²."""
    from genhelpers.models import dvae
    from genhelpers.twins.dvae import TWIN_SIZE

    rt = detect()
    device = "cuda" if rt.gpus else "cpu"
    settings = TWIN_SIZE if DRY else dvae.FULL_SIZE
    encoder, decoder = (dvae.build(p, settings[p], device=device).eval() for p in dvae.PARTS)
    side, n = (64, 4) if DRY else (256, 4)
    x = torch.rand(n, 3, side, side, device=device) * 0.8 + 0.1
    _, row = _measured(lambda: dvae.decode(decoder, dvae.encode(encoder, x)), rt)
    if rt.gpus:
        row["measured_rate_gib_per_mp"] = round(row["activations_gib"] / (n * side * side / 1e6), 3)
    return {"job": "dalle-dvae", "pictures": n, "side": side, **row}


def _detailed_caption(model, device):
    """A call that writes a detailed caption of one 768² picture with the notebook's settings (3 beams), forced to
    its full length of 256 new tokens (the worst case); the published processor's geometry on a real run."""
    from PIL import Image
    from transformers import CLIPImageProcessor, Florence2Processor

    processor = Florence2Processor.from_pretrained(genhelpers.locate("tiny:florence-2-base"))
    if not DRY:  # the published processor's geometry: 768 px, 24 × 24 + 1 image tokens
        images = CLIPImageProcessor(size={"height": 768, "width": 768}, do_center_crop=False)
        images.image_seq_length = 577
        processor = Florence2Processor(image_processor=images, tokenizer=processor.tokenizer,
                                       post_processor_config=processor.post_processor_config)
    model.config.image_token_id = processor.tokenizer.image_token_id  # the twin's tokenizer marks image slots
    new = 16 if DRY else 256
    inputs = processor(text="<MORE_DETAILED_CAPTION>", images=Image.new("RGB", (1024, 768), (120, 80, 40)),
                       return_tensors="pt").to(device, model.dtype)
    return lambda: model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, num_beams=3, do_sample=False)


def _florence_base(rt, device):
    return (genhelpers.load("tiny:florence-2-base", rt, memory=None, quiet=True, dtype=DTYPE) if DRY
            else full("florence-2-base", "model")).to(device)


def florence_job() -> dict:
    """Florence-2-base at its published size (random weights, float16): one detailed caption (_detailed_caption)."""
    rt = detect()
    device = "cuda" if rt.gpus else "cpu"
    _, row = _measured(_detailed_caption(_florence_base(rt, device), device), rt)
    return {"job": "florence-2-base-caption", "new_tokens": 16 if DRY else 256, "beams": 3, **row}


def xclip_job() -> dict:
    """X-CLIP base/32 at its published size (random weights, float16): the video_clip notebook's zero-shot call,
    one clip of 8 frames of 224² against 10 captions of 16 tokens."""
    rt = detect()
    device = "cuda" if rt.gpus else "cpu"
    model = (genhelpers.load("tiny:xclip-base-patch32", rt, memory=None, quiet=True) if DRY
             else full("xclip-base-patch32", "xclip")).to(device)
    side = model.config.vision_config.image_size
    frames, captions = 8, 10
    video = torch.rand(1, frames, 3, side, side, device=device, dtype=model.dtype)
    ids = torch.randint(1, model.config.text_config.vocab_size - 1, (captions, 16), device=device)
    with torch.inference_mode():
        _, row = _measured(lambda: model(input_ids=ids, pixel_values=video).logits_per_video, rt)
    return {"job": "xclip-base-patch32-zero-shot", "frames": frames, "side": side, "captions": captions, **row}


def recaptioning_job() -> dict:
    """The recaptioning notebook's three models at their defaults, held together as the notebook holds them
    (Florence-2-base, CLIP ViT-L/14, SD 1.5), with the plan the planner picks for one T4 and under a T4's memory:
    a detailed caption (3 beams, forced to 256 new tokens), its CLIP score, a 512² picture in 25 steps."""
    rt = detect()
    refs = ["florence-2-base", "clip-vit-large-patch14", "sd15"]
    plan = loader.plan(T4, "auto", refs, 512, 512) if rt.gpus else memory.named("cpu", rt)
    row = {"job": "recaptioning-t4", "refs": refs, "t4_plan": plan.name, "estimate": plan.estimate}
    if rt.gpus:
        plan = memory.MemoryPlan(**{**plan.as_dict(), "device": "cuda:0"})
        torch.cuda.set_per_process_memory_fraction(T4_BYTES / torch.cuda.get_device_properties(0).total_memory)
    try:
        device = "cuda" if rt.gpus else "cpu"
        captioner = _florence_base(rt, device)
        clip = (genhelpers.load("tiny:clip-vit-large-patch14", rt, memory=None, quiet=True) if DRY
                else full("clip-vit-large-patch14", "clip")).to(device)
        _, call = sd("sd15")(rt, plan)
        side = 64 if DRY else 512

        def score():
            side_clip = clip.config.vision_config.image_size
            pixels = torch.rand(1, 3, side_clip, side_clip, device=device, dtype=clip.dtype)
            ids = torch.randint(1, clip.config.text_config.vocab_size - 1, (1, 77), device=device)
            with torch.inference_mode():
                return clip(input_ids=ids, pixel_values=pixels).logits_per_image

        stages = {"caption": _detailed_caption(captioner, device), "clip_score": score,
                  "regenerate": lambda: call(side, 2 if DRY else 25)}
        for stage, fn in stages.items():
            _, row[stage] = _measured(fn, rt)
        if rt.gpus:
            row.update(fits=True, peak_gib=max(row[s]["peak_gib"] for s in ("caption", "clip_score", "regenerate")))
    except torch.OutOfMemoryError as e:
        row.update(fits=False, error=str(e)[:200])
    finally:
        if rt.gpus:
            torch.cuda.set_per_process_memory_fraction(1.0)
    return row


EXTRA = {"sdxl-both-t4": sdxl_both_t4, "tune-a-video": tune_a_video, "dalle-dvae": dvae_job,
         "florence-2-base-caption": florence_job, "xclip-base-patch32-zero-shot": xclip_job,
         "recaptioning-t4": recaptioning_job}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else Path("gpu_full_size.json")
    names = args[1:] or [*JOBS, *EXTRA]
    rt = detect()
    result = {"device": torch.cuda.get_device_name(0) if rt.gpus else "cpu (dry run)", "torch": torch.__version__,
              "diffusers": __import__("diffusers").__version__, "transformers": __import__("transformers").__version__,
              "t4_bytes": T4_BYTES, "jobs": []}
    for name in names:
        try:
            row = EXTRA[name]() if name in EXTRA else run_job(name)
        except Exception as e:  # one job's failure is a finding, not the end of the run
            row = {"job": name, "error": f"{type(e).__name__}: {e}"[:400]}
            memory.free_gpu_memory()
        memory.free_gpu_memory()  # the job's models went out of scope with it
        print(json.dumps(row), flush=True)
        result["jobs"].append(row)
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
