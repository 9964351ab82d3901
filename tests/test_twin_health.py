"""Twins must be numerically well-conditioned and have no dead conditioning paths: a normalisation group of one
channel amplifies float rounding (comparisons on it mean nothing), and a zero-initialised layer makes a
conditioning input (a depth map, key frames, a motion module) change nothing, so no test could see it misused."""
import pytest
import torch

from genhelpers.hub import catalog
from genhelpers.twins import registry


def only_fp16(folder) -> dict:
    """A folder published with fp16 safetensors only (stable-diffusion-inpainting's parts) loads by its variant."""
    weights = [f.name for f in folder.glob("*.safetensors")]
    return {"variant": "fp16"} if weights and all(".fp16." in n for n in weights) else {}


def modules_of(folder, skip=()):
    """Every torch module a twin's folder loads into (less the parts the catalog says are never loaded)."""
    import json

    import diffusers
    import transformers

    out = []
    index = folder / "model_index.json"
    if (folder / "models" / "ip-adapter_sd15.safetensors").is_file():  # stylecrafter: h94/IP-Adapter's layout
        from genhelpers.models.ipadapter_weights import IPAdapterWeights

        encoder = transformers.CLIPVisionModelWithProjection.from_pretrained(folder / "models" / "image_encoder")
        return [("models", IPAdapterWeights.from_pretrained(folder)), ("models/image_encoder", encoder)]
    if index.is_file():
        from genhelpers.hub.loader import _class

        for sub in sorted(p for p in folder.iterdir() if (p / "config.json").is_file() and p.name not in skip):
            config = json.loads((sub / "config.json").read_text())
            name = config.get("_class_name") or config.get("architectures", [""])[0]
            try:
                cls = _class(name)
            except ValueError:
                import importlib

                module = json.loads(index.read_text()).get(sub.name, [None])[0]
                cls = getattr(importlib.import_module(f"diffusers.pipelines.{module}"), name)
            out.append((sub.name, cls.from_pretrained(sub, **only_fp16(sub))))
    elif (folder / "config.json").is_file():
        config = __import__("json").loads((folder / "config.json").read_text())
        name = config.get("_class_name") or config.get("architectures", [""])[0]
        cls = getattr(diffusers, name, None) or getattr(transformers, name)
        out.append(("", cls.from_pretrained(folder, **only_fp16(folder))))
    # else: a published layout of raw files (patrolli/AnimateAnyone's .pth state dicts, h94/IP-Adapter's models/):
    # nothing to build here; tests/test_animate_anyone.py checks the folder they convert or load into
    return out


@pytest.mark.parametrize("key", sorted(registry.BUILDERS))
def test_no_normalisation_group_of_one_channel(twins, key):
    for name, model in modules_of(twins[key], catalog.ENTRIES[key].skip):
        for mod_name, m in model.named_modules():
            if isinstance(m, torch.nn.GroupNorm):
                assert m.num_channels // m.num_groups >= 2, f"{key}/{name}.{mod_name}: {m}"


@pytest.mark.parametrize("key", sorted(registry.BUILDERS))
def test_no_output_layer_is_all_zero(twins, key):
    """A layer whose weights are all zero passes nothing on (ControlNet zero convolutions, motion modules'
    output projections, conditioning embeddings are zero-initialised in a fresh model; trained ones are not)."""
    for name, model in modules_of(twins[key], catalog.ENTRIES[key].skip):
        for mod_name, m in model.named_modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Conv3d)) and m.weight.numel() > 1:
                assert m.weight.abs().sum() > 0, f"{key}/{name}.{mod_name} is all zero: a dead path"


def test_the_depth_image_changes_zero123plus_output(twins, cpu_runtime):
    """The depth ControlNet is live in the authors' range: two different depth maps give two different results."""
    from PIL import Image

    import genhelpers

    control = genhelpers.load("tiny:controlnet-zp11-depth", cpu_runtime, memory=None, quiet=True)
    pipe = genhelpers.load("tiny:zero123plus-v1.1", cpu_runtime, memory=None, quiet=True, allow_pickle=True,
                           controlnet=control)
    picture = Image.new("RGB", (320, 320), (200, 100, 50))

    def run(depth):
        g = torch.Generator("cpu").manual_seed(0)
        return pipe(picture, num_inference_steps=1, generator=g, output_type="latent", height=96, width=64,
                     depth_image=Image.new("RGB", (64, 96), depth))

    assert (run((0, 0, 0)) - run((255, 255, 255))).abs().max() > 1e-4


# ------------------------------------------------------------------ every conditioning input changes the output
def _cpu():
    from genhelpers.platform.runtime import Runtime

    return Runtime("local", (), "float32")


def _differs(a, b, at_least=1e-4):
    import numpy as np

    return float(np.abs(np.asarray(a, dtype="float32") - np.asarray(b, dtype="float32")).max()) > at_least


@pytest.fixture(scope="module")
def animatediff(twins):
    import genhelpers

    return genhelpers.load("tiny:sd15", _cpu(), memory=None, quiet=True, pipeline="AnimateDiffPipeline",
                           motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")


@pytest.mark.parametrize("kind", ["rgb", "scribble"])
def test_sparsectrl_key_frames_change_the_clip(animatediff, kind):
    from diffusers import AnimateDiffSparseControlNetPipeline
    from PIL import Image

    import genhelpers

    controlnet = genhelpers.load(f"tiny:sparsectrl-{kind}", _cpu(), memory=None, quiet=True)
    pipe = AnimateDiffSparseControlNetPipeline.from_pipe(animatediff, controlnet=controlnet)

    def run(colour):
        return pipe(prompt="a ball", num_frames=2, height=64, width=64, num_inference_steps=2, output_type="np",
                    conditioning_frames=[Image.new("RGB", (64, 64), colour)], controlnet_frame_indices=[0],
                    generator=torch.Generator("cpu").manual_seed(0)).frames

    assert _differs(run((0, 0, 0)), run((255, 255, 255)))


def test_the_motion_adapter_couples_the_frames(animatediff):
    """Motion modules attend across frames: changing frame 0's starting noise changes frame 1 of the clip."""
    noise = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    changed = noise.clone()
    changed[:, :, 0] = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))

    def run(latents):
        return animatediff(prompt="a ball", num_frames=2, height=64, width=64, num_inference_steps=2, latents=latents,
                           output_type="np", generator=torch.Generator("cpu").manual_seed(0)).frames[0]

    assert _differs(run(noise)[1], run(changed)[1])


def test_the_camera_changes_mvdream_views(twins):
    import genhelpers
    from genhelpers.models.mvdream import cameras

    pipe = genhelpers.load("tiny:mvdream", _cpu(), memory=None, quiet=True)

    def run(cam):
        return pipe("a toy", num_inference_steps=1, height=64, width=64, camera=cam, output_type="np",
                    generator=torch.Generator("cpu").manual_seed(0))

    assert _differs(run(cameras(4, 0.0)), run(cameras(4, 30.0, 45.0)))


def test_the_picture_changes_imagedream_views(twins):
    from PIL import Image

    import genhelpers

    pipe = genhelpers.load("tiny:imagedream", _cpu(), memory=None, quiet=True)

    def run(colour):
        return pipe("", image=Image.new("RGB", (96, 96), colour), num_inference_steps=1, height=64, width=64,
                    output_type="np", generator=torch.Generator("cpu").manual_seed(0))

    assert _differs(run((250, 20, 20)), run((20, 20, 250)))


def test_the_refiner_reads_its_input_and_its_aesthetic_score(twins):
    import numpy as np
    from PIL import Image

    import genhelpers

    pipe = genhelpers.load("tiny:sdxl-refiner", _cpu(), memory=None, quiet=True)

    def run(colour, score=6.0):
        return pipe("a fox", image=Image.new("RGB", (64, 64), colour), num_inference_steps=2, strength=0.5,
                    aesthetic_score=score, output_type="np", generator=torch.Generator("cpu").manual_seed(0)).images

    base = run((200, 50, 50))
    assert _differs(base, run((50, 50, 200))) and _differs(base, run((200, 50, 50), score=2.0))
    assert np.isfinite(base).all()


@pytest.fixture(scope="module")
def cascade(twins):
    """DeepFloyd IF's three stages (twins), the prompt encoded once by stage I's T5."""
    import genhelpers

    stages = [genhelpers.load(f"tiny:{k}", _cpu(), memory=None, quiet=True)
              for k in ("if-i-xl", "if-ii-l", "sd-x4-upscaler")]
    return stages, {p: stages[0].encode_prompt(p, negative_prompt="", clean_caption=False)
                    for p in ("a red sign", "a blue whale")}


def test_the_prompt_and_the_image_change_every_if_stage(cascade):
    (one, two, three), embeds = cascade
    seed = dict(generator=torch.Generator("cpu").manual_seed(0))

    def stage_1(p):
        pe, ne = embeds[p]
        return one(prompt_embeds=pe, negative_prompt_embeds=ne, num_inference_steps=2, output_type="pt",
                   generator=torch.Generator("cpu").manual_seed(0)).images

    def stage_2(image, p, noise_level=250):
        pe, ne = embeds[p]
        return two(image=image, prompt_embeds=pe, negative_prompt_embeds=ne, num_inference_steps=2,
                   noise_level=noise_level, output_type="pt", generator=torch.Generator("cpu").manual_seed(0)).images

    def stage_3(image, p, noise_level=100):
        return three(prompt=p, image=image, num_inference_steps=2, noise_level=noise_level, output_type="np",
                     **seed).images

    low = stage_1("a red sign")
    assert _differs(low, stage_1("a blue whale"))
    mid = stage_2(low, "a red sign")
    assert _differs(mid, stage_2(-low, "a red sign")) and _differs(mid, stage_2(low, "a blue whale"))
    assert _differs(mid, stage_2(low, "a red sign", noise_level=50))
    pixels = (mid / 2 + 0.5).clamp(0, 1)
    high = stage_3(pixels, "a red sign")
    assert _differs(high, stage_3(1 - pixels, "a red sign")) and _differs(high, stage_3(pixels, "a blue whale"))
    assert _differs(high, stage_3(pixels, "a red sign", noise_level=10))


@pytest.mark.parametrize("key", ["modelscope-t2v", "cogvideox-2b"])
def test_text_to_video_frames_talk_to_each_other_and_read_the_prompt(twins, key):
    """Temporal layers are live (changing the first latent frame changes a later frame) and the prompt counts."""
    import genhelpers

    pipe = genhelpers.load(f"tiny:{key}", _cpu(), memory=None, quiet=True)
    cog = key.startswith("cogvideox")
    shape = (1, 3, 16, 8, 12) if cog else (1, 4, 3, 8, 12)  # CogVideoX: frames before channels, 4× fewer
    noise = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    changed = noise.clone()
    first = (slice(None), 0) if cog else (slice(None), slice(None), 0)
    changed[first] = torch.randn(changed[first].shape, generator=torch.Generator().manual_seed(1))

    def run(latents, prompt="a red ball"):
        return pipe(prompt=prompt, num_frames=9 if cog else 3, height=64, width=96, num_inference_steps=2,
                    latents=latents, output_type="np", generator=torch.Generator("cpu").manual_seed(0)).frames[0]

    base = run(noise)
    assert _differs(base[-1], run(changed)[-1]) and _differs(base, run(noise, "a blue cube"))
