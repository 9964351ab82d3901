"""Every memory plan applied to every pipeline the notebooks build, with the GPU intercepted.

Why intercept rather than run on the meta device: a plan's risky calls are the pipeline-specific switches
(VAE slicing/tiling, forward chunking, attention slicing), and those run for real on the CPU — SVD's temporal
VAE raises NotImplementedError for slicing, a UNet may lack forward chunking. Only the device moves
(``pipe.to("cuda:N")``, model/sequential CPU offload, resetting a device map) need a GPU; those are recorded
instead, and checked against what the plan says. Then one denoising step runs with the leanest plan's switches
on, so the pipeline call accepts them (decode chunks, tiles) end to end."""
import diffusers
import pytest
import torch

import genhelpers
from genhelpers.hub import catalog, memory
from genhelpers.models import animate_anyone_weights
from genhelpers.platform.machines import runtime_for

T4X2 = runtime_for("T4x2")
T4 = runtime_for("T4")
# (twin, pipeline class to build, extra components, frames of a request)
PIPELINES = {
    "sdxl-base": ("tiny:sdxl-base", None, {}, 1),
    "sdxl-refiner": ("tiny:sdxl-refiner", None, {}, 1),
    "sd15": ("tiny:sd15", None, {}, 1),
    "animatediff": ("tiny:sd15", "AnimateDiffPipeline", {"motion_adapter": "tiny:animatediff-motion-adapter-v1-5-2"},
                    16),
    "svd": ("tiny:svd", None, {}, 14),
    "svd-xt": ("tiny:svd-xt", None, {}, 25),
    "shap-e": ("tiny:shap-e", None, {}, 1),
    "shap-e-img2img": ("tiny:shap-e-img2img", None, {}, 1),
    "zero123plus": ("tiny:zero123plus-v1.2", None, {}, 1),
    "mvdream": ("tiny:mvdream", None, {}, 1),
    "imagedream": ("tiny:imagedream", None, {}, 1),
    "sd21": ("tiny:sd21", None, {}, 1),
    "if-i-xl": ("tiny:if-i-xl", None, {}, 1),
    "if-ii-l": ("tiny:if-ii-l", None, {}, 1),
    "sd-x4-upscaler": ("tiny:sd-x4-upscaler", None, {}, 1),
    "modelscope-t2v": ("tiny:modelscope-t2v", None, {}, 16),
    "cogvideox-2b": ("tiny:cogvideox-2b", None, {}, 49),
    "karlo-v1-alpha": ("tiny:karlo-v1-alpha", None, {}, 1),
    "karlo-v1-alpha-image-variations": ("tiny:karlo-v1-alpha-image-variations", None, {"allow_pickle": True}, 1),
    # stylecrafter: AnimateDiff and SD 1.5 with the IP-Adapter (and its image encoder) loaded before the plan
    "stylecrafter": ("tiny:sd15", "AnimateDiffPipeline", {"motion_adapter": "tiny:animatediff-motion-adapter-v1-5-2"},
                     16),
    "stylecrafter-still": ("tiny:sd15", None, {}, 1),
    # virtual_tryon: the inpainting pipeline as published, and CatVTON built from its UNet and scheduler
    "sd15-inpainting": ("tiny:sd15-inpainting", None, {}, 1),
    "catvton": ("tiny:sd15-inpainting", "CatVTONPipeline", {"vae": "tiny:sd-vae-ft-mse"}, 1),
    # mvdiffusion notebook: the SD 2 base, and our pipeline on it (its CAA blocks are optional: loaded apart)
    "sd2-base": ("tiny:sd2-base", None, {}, 1),
    "mvdiffusion": ("tiny:sd2-base", "MVDiffusionPipeline", {}, 1),
    # gpt4motion: SDXL with its ControlNets (a call makes chunk + 1 frames)
    "gpt4motion": ("tiny:sdxl-base", "StableDiffusionXLControlNetPipeline",
                   {"controlnet": "tiny:controlnet-depth-sdxl-1.0"}, 5),
    "animate-anyone": ("tiny:animate-anyone", None, {}, 16),  # loaded from its converted folder (PREPARED)
}


def _with_ip_adapter(pipe):
    """stylecrafter: the notebook loads the IP-Adapter into a pipeline before applying its memory plan."""
    from genhelpers.models import ipadapter

    pipe.load_ip_adapter(genhelpers.locate("tiny:ip-adapter-sd15"), subfolder="models",
                         weight_name=ipadapter.WEIGHT_NAME)
    return pipe


# rows whose pipeline gets parts added after load, before a plan is applied
AFTER_LOAD = {"stylecrafter": _with_ip_adapter, "stylecrafter-still": _with_ip_adapter}


def _moore_converted() -> str:  # Moore-AnimateAnyone's pickles, converted as the notebook converts them
    return str(animate_anyone_weights.convert("tiny:animate-anyone", "tiny:sd-image-variations",
                                              "tiny:sd-vae-ft-mse", allow_pickle=True, dtype="float32"))


# catalog pipelines whose published files are converted before loading: key -> the folder the notebook loads
PREPARED = {"animate-anyone": _moore_converted}
# catalog pipelines covered by another row: same class and parts
SAME_AS = {"sd21-base": "sd21", "zero123plus-v1.1": "zero123plus", "zero123plus-v1.2": "zero123plus",
           "zeroscope-v2-576w": "modelscope-t2v"}


def test_every_catalog_pipeline_is_rehearsed():
    """A pipeline class the plans were never applied to is how CogVideoX met `pipe.unet` on a GPU: none left out."""
    pipelines = {k for k, e in catalog.ENTRIES.items() if e.cls.endswith("Pipeline")}
    assert pipelines <= set(PIPELINES) | set(SAME_AS)
PLANS = [("gpu", T4X2), ("split", T4X2), ("gpu-lean", T4), ("model-offload", T4), ("sequential-offload", T4)]


@pytest.fixture
def intercepted(monkeypatch):
    """Record the calls that need a GPU; everything else runs for real."""
    calls = []
    for name in ("to", "enable_model_cpu_offload", "enable_sequential_cpu_offload", "reset_device_map",
                 "remove_all_hooks"):
        real = getattr(diffusers.DiffusionPipeline, name)

        def record(self, *args, _name=name, _real=real, **kwargs):
            device = [*args, *kwargs.values()]
            if _name == "to" and not any("cuda" in str(d) for d in device):
                return _real(self, *args, **kwargs)  # a CPU/dtype move is real
            calls.append((_name, tuple(str(a) for a in args), {k: str(v) for k, v in kwargs.items()}))
            return self

        monkeypatch.setattr(diffusers.DiffusionPipeline, name, record)
    return calls


def build(key, cpu_runtime):
    ref, cls, extra, frames = PIPELINES[key]
    ref = PREPARED[key]() if key in PREPARED else ref
    pipe = genhelpers.load(ref, cpu_runtime, memory=None, pipeline=cls, quiet=True, **extra)
    return AFTER_LOAD.get(key, lambda p: p)(pipe), frames


@pytest.mark.parametrize("plan_name, machine", PLANS, ids=[p for p, _ in PLANS])
@pytest.mark.parametrize("key", sorted(PIPELINES))
def test_every_plan_applies_to_every_pipeline(key, plan_name, machine, intercepted, cpu_runtime):
    pipe, frames = build(key, cpu_runtime)
    devices = {"tiny:a": "cuda:0", "tiny:b": "cuda:1"} if plan_name == "split" and key.startswith("sdxl") else None
    plan = memory.named(plan_name, machine, frames=frames, batch=2, devices=devices)
    memory.apply(pipe, plan, "tiny:b" if devices else None)
    expected = {"gpu": ("to", ("cuda:0",)), "gpu-lean": ("to", ("cuda:0",)),
                "model-offload": ("enable_model_cpu_offload", ()), "sequential-offload":
                    ("enable_sequential_cpu_offload", ())}
    if plan_name == "split":
        # one model per GPU (here the second), or the pipeline spread by device_map (placed at load: no call)
        assert intercepted == ([("to", ("cuda:1",), {})] if devices else [])
    else:
        name, args = expected[plan_name]
        assert intercepted[0][0] == name and (intercepted[0][1] == args or intercepted[0][2] == {"gpu_id": "0"})
    vae = getattr(pipe, "vae", None)
    if vae is not None and type(vae).__name__ not in memory.CHUNKED_VAES and plan.vae_tiling:
        assert vae.use_tiling and vae.use_slicing
    if type(vae).__name__ in memory.CHUNKED_VAES:
        assert plan.decode_chunk_size is not None  # clips decode in chunks of frames instead


@pytest.mark.parametrize("key", sorted(PIPELINES))
def test_the_fallback_chain_runs_to_the_end(key, intercepted, cpu_runtime):
    """Out of memory at every step: split (device map) → gpu-lean → model offload → sequential offload, then
    a clear error. The device map is reset before the first move (diffusers forbids .to() on a mapped
    pipeline), offload hooks are removed before the next offload."""
    pipe, frames = build(key, cpu_runtime)
    pipe.genhelpers_plan = memory.named("split", T4X2, frames=frames)  # device_map="balanced"
    assert pipe.genhelpers_plan.device_map == "balanced"

    def oom():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(RuntimeError, match="no leaner plan is left"):
        genhelpers.retry_on_oom(pipe, T4X2, frames=frames)(oom)()
    names = [c[0] for c in intercepted]
    assert names == ["reset_device_map", "to", "enable_model_cpu_offload", "remove_all_hooks",
                     "enable_sequential_cpu_offload"]
    assert [f["plan"] for f in pipe.genhelpers_plan.fallbacks] == ["split", "gpu-lean", "model-offload"]


def test_svd_plans_never_touch_the_temporal_vae_switches(intercepted, cpu_runtime):
    """SVD's AutoencoderKLTemporalDecoder raises NotImplementedError for slicing and tiling: every plan must
    leave them alone and decode in chunks of frames instead."""
    pipe, frames = build("svd", cpu_runtime)
    with pytest.raises(NotImplementedError):
        pipe.vae.enable_tiling()
    for plan_name, machine in PLANS:
        plan = memory.named(plan_name, machine, frames=frames)
        memory.apply(pipe, plan)
        assert plan.decode_chunk_size in (1, 2, 8)


@pytest.mark.parametrize("key", ["sdxl-base", "animatediff", "svd", "zero123plus", "mvdream", "if-ii-l",
                                 "sd-x4-upscaler", "modelscope-t2v", "cogvideox-2b", "karlo-v1-alpha",
                                 "karlo-v1-alpha-image-variations", "catvton",
                                 "mvdiffusion"])  # mvdiffusion notebook
def test_a_step_runs_with_the_leanest_plans_switches(key, intercepted, cpu_runtime):
    """The leanest plan's switches (VAE slicing + tiling, attention slicing, forward chunking, frames decoded
    one at a time) stay on while the pipeline really runs one step on the CPU."""
    from PIL import Image

    pipe, frames = build(key, cpu_runtime)
    plan = memory.named("sequential-offload", T4, frames=frames, batch=1)
    memory.apply(pipe, plan)
    g = torch.Generator("cpu").manual_seed(0)
    common = dict(num_inference_steps=1, generator=g, output_type="np")
    picture = Image.new("RGB", (64, 64), (200, 100, 50))
    if key == "sdxl-base":
        out = pipe("a fox", height=64, width=64, **common).images
    elif key == "animatediff":
        out = pipe("a fox", num_frames=2, height=64, width=64, decode_chunk_size=plan.decode_chunk_size,
                   **common).frames
    elif key == "svd":
        out = pipe(picture, num_frames=2, height=64, width=64, decode_chunk_size=plan.decode_chunk_size,
                   **common).frames
    elif key in ("modelscope-t2v", "cogvideox-2b"):
        out = pipe("a fox", num_frames=9 if key == "cogvideox-2b" else 2, height=64, width=64, **common).frames
    elif key == "if-ii-l":
        pe, ne = torch.randn(1, 77, 32), torch.zeros(1, 77, 32)
        out = pipe(image=torch.rand(1, 3, 16, 16) * 2 - 1, prompt_embeds=pe, negative_prompt_embeds=ne, **common)
    elif key == "sd-x4-upscaler":
        out = pipe("a fox", image=picture.resize((16, 16)), **common)
    elif key == "karlo-v1-alpha":
        # (UnCLIPScheduler cannot take a single step: it divides by steps - 1)
        out = pipe("a fox", prior_num_inference_steps=2, decoder_num_inference_steps=2,
                   super_res_num_inference_steps=2, generator=g, output_type="np")
    elif key == "karlo-v1-alpha-image-variations":
        out = pipe(picture, decoder_num_inference_steps=2, super_res_num_inference_steps=2, generator=g,
                   output_type="np")
    elif key == "catvton":  # attention slicing must leave cross-attention skipped
        from genhelpers.outputs.tryon import box_mask

        out = pipe(person=picture, garment=picture, mask=box_mask((64, 64), (0.2, 0.2, 0.8, 0.8)), **common)
    elif key == "zero123plus":
        out = pipe(Image.new("RGB", (320, 320), (200, 100, 50)), num_inference_steps=1, generator=g)
        out = getattr(out, "images", out)
    else:
        out = pipe("a fox", height=64, width=64, **common)
    out = getattr(out, "images", out)
    assert len(out) >= 1


@pytest.mark.parametrize("key", ["stylecrafter", "stylecrafter-still"])
def test_a_step_with_the_picture_runs_with_the_leanest_plans_switches(key, intercepted, cpu_runtime):
    """stylecrafter: the image encoder joined the pipeline before the plan (an offload plan hooks it with the rest),
    and a step with a style picture and per-block scales runs with the leanest plan's switches on."""
    from PIL import Image

    from genhelpers.models import ipadapter

    pipe, frames = build(key, cpu_runtime)
    assert "image_encoder" in pipe.model_cpu_offload_seq and pipe.image_encoder is not None
    plan = memory.named("sequential-offload", T4, frames=frames, batch=1)
    memory.apply(pipe, plan)
    assert pipe.genhelpers_plan is plan  # recorded for retry_on_oom, also when placed by hand
    # attention slicing would have replaced the adapter's processors of SD 1.5's UNet (found by this test)
    assert len(ipadapter.processor_scales(pipe.unet)) == 16
    pipe.set_ip_adapter_scale({"up": {"block_1": 1.0}})
    g = torch.Generator("cpu").manual_seed(0)
    common = dict(num_inference_steps=1, generator=g, output_type="np", height=64, width=64,
                  ip_adapter_image=Image.new("RGB", (64, 64), (200, 100, 50)))
    if frames > 1:
        out = pipe("a fox", num_frames=2, decode_chunk_size=plan.decode_chunk_size, **common).frames
    else:
        out = pipe("a fox", **common).images
    assert len(out) == 1
