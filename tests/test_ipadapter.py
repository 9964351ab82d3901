"""IP-Adapter on SD 1.5 and InstantStyle's per-block scales (genhelpers.models.ipadapter, the ip-adapter twins):
the checks refuse exactly what diffusers would silently ignore, our layer map equals what diffusers sets, the twin
keeps the published layout, and every conditioning input (the picture, the scales) changes the twins' output."""
import json

import numpy as np
import pytest
import torch

import genhelpers
from genhelpers.errors import ParameterError
from genhelpers.hub import catalog, published, weights
from genhelpers.models import ipadapter

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "stylecrafter" / "facts.json").read_text())
SDXL_STYLE = {"up": {"block_0": [0.0, 1.0, 0.0]}}
ACCEPTED = [1.0, 0.5, ipadapter.STYLE, ipadapter.STYLE_AND_LAYOUT, {"up": {"block_1": [0.0, 1.0, 0.0]}},
            {"down": {"block_2": [0.0, 1.0]}}, {"up": 0.7}, {"mid": [1.0]}, {"up": {"block_3": [2.0]}}]
# what diffusers 0.42 takes without a word but gives the picture no layer (facts.json, diffusers_0_42_checks)
SILENT = [SDXL_STYLE, {"up": {"block_9": 1.0}}, {"down": {"block_3": 1.0}}, {"up": {"b1": 1.0}}]


# ------------------------------------------------------------------------------------- the checks, no model
@pytest.mark.parametrize("setting", ACCEPTED)
def test_settings_that_give_the_picture_a_layer_pass(setting):
    ipadapter.check_blocks("style_blocks", setting)


@pytest.mark.parametrize("setting, message", [
    (SDXL_STYLE, "SDXL"),
    ({"up": {"block_9": 1.0}}, "no up block 'block_9'"),
    ({"down": {"block_3": 1.0}}, "last down block only downsamples"),
    ({"up": {"b1": 1.0}}, "write 'block_1'"),
    ({"up": {"1": 1.0}}, "write 'block_1'"),
    ({"middle": 1.0}, "unknown key 'middle' (diffusers writes 'mid')"),
    ({"up": {"block_1": 3.0}}, "every scale must be a number from 0 to 2"),
    ({"up": {"block_1": -0.5}}, "from 0 to 2"),
    ({"up": {"block_1": [0.0, 1.0]}}, "needs 3 scales (one per layer) or one, not 2"),
    ({"down": {"block_2": [1.0, 1.0, 1.0]}}, "needs 2 scales"),
    ({"mid": [1.0, 1.0]}, "'mid' has one attention layer"),
    ({"up": {"block_1": 0.0}}, "gives the picture no layer"),
    (0, "gives the picture no layer"),
    ({}, "must be a number or a dict"),
    ("up_blocks.1", "must be a number or a dict"),
    ({"up": {"block_1": True}}, "from 0 to 2"),
])
def test_settings_diffusers_would_ignore_are_refused_with_the_fix(setting, message):
    with pytest.raises(ParameterError, match="style_blocks") as e:
        ipadapter.check_blocks("style_blocks", setting)
    assert message in str(e.value) and e.value.parameter == "style_blocks"


@pytest.mark.parametrize("value", [-0.1, 2.5, "1", None, True])
def test_the_all_blocks_scale_is_a_number_from_0_to_2(value):
    with pytest.raises(ParameterError, match=r"ip_adapter_scale=.* must be a number from 0 to 2"):
        ipadapter.check_scale("ip_adapter_scale", value)


def test_the_rules_table_uses_the_checks():
    with pytest.raises(ParameterError, match="SDXL"):
        genhelpers.check(style_blocks=SDXL_STYLE)
    with pytest.raises(ParameterError, match="is Stable Diffusion 1.5.*not an IP-Adapter"):
        genhelpers.check(ip_adapter="tiny:sd15")
    genhelpers.check(style_blocks=ipadapter.STYLE, ip_adapter_scale=1.0, ip_adapter="h94/IP-Adapter")


def test_a_folder_must_have_the_published_layout(tmp_path):
    (tmp_path / "models").mkdir()
    with pytest.raises(ParameterError, match="lacks models/ip-adapter_sd15.safetensors, models/image_encoder/config"):
        ipadapter.check_adapter("ip_adapter", str(tmp_path))


def test_the_layer_map_follows_instantstyle_and_facts():
    """Our map of InstantStyle's SD 1.5 settings equals the layers recorded from diffusers 0.42 (facts.json)."""
    checks = FACTS["diffusers_0_42_checks"]["set_ip_adapter_scale_on_AnimateDiffPipeline_tiny_sd15_layout"]
    on = lambda s: sorted(k for k, v in ipadapter.layer_scales(s).items() if v > 0)  # noqa: E731
    assert on(ipadapter.STYLE) == checks["{'up': {'block_1': 1.0}}"]
    assert on(ipadapter.STYLE_AND_LAYOUT) == checks["{'down': {'block_2': 1.0}, 'mid': 1.0, 'up': {'block_1': 1.0}}"]
    assert on({"up": {"block_1": [0.0, 1.0, 0.0]}}) == checks["{'up': {'block_1': [0.0, 1.0, 0.0]}}"]
    assert len(ipadapter.layer_scales(1.0)) == 16 == FACTS["stylecrafter_adapter"]["dual_attention"]["layers"]
    assert FACTS["instantstyle"]["sd15"]["diffusers_dicts"]["style"] == ipadapter.STYLE


# ------------------------------------------------------------------------------------- published layout, twin
def test_the_full_size_adapter_counts_as_published():
    """22,319,616 = image_proj 3,150,336 + 16 K/V pairs 19,169,280 (facts.json); 44.6 MB of float16 agrees."""
    assert published.count("ip-adapter-sd15", "ip_adapter") == 22_319_616
    assert published.count("ip-adapter-sd15", "image_encoder") == FACTS["ip_adapter_published"]["image_encoder"][
        "params"]
    widths = published.configs("ip-adapter-sd15")["ip_adapter"]["hidden_sizes"]
    sd15 = published.configs("sd15")["unet"]
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):  # the published SD 1.5 UNet's processors, in diffusers' order
        names = list(UNet2DConditionModel.from_config(sd15).attn_processors)
    assert widths == ipadapter.cross_attention_widths(sd15, names)


def test_the_twin_keeps_the_published_layout(twins):
    from safetensors import safe_open

    folder = twins["ip-adapter-sd15"]
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == ["models/image_encoder/config.json", "models/image_encoder/model.safetensors",
                   "models/ip-adapter_sd15.safetensors"]
    assert all(f in catalog.ENTRIES["ip-adapter-sd15"].files for f in got)
    with safe_open(folder / "models" / "ip-adapter_sd15.safetensors", "pt") as f:
        keys = set(f.keys())
        assert {f.get_tensor(k).dtype for k in keys} == {torch.float16}  # float16, as published
    expected = {"image_proj.proj.weight", "image_proj.proj.bias", "image_proj.norm.weight", "image_proj.norm.bias"}
    expected |= {f"ip_adapter.{k}.to_{kv}_ip.weight" for k in range(1, 32, 2) for kv in "kv"}
    assert keys == expected  # 16 layers numbered 1, 3, …, 31, as the published file
    encoder = json.loads((folder / "models" / "image_encoder" / "config.json").read_text())
    twin_unet = json.loads((twins["sd15"] / "unet" / "config.json").read_text())
    assert encoder["image_size"] == 224 and encoder["projection_dim"] != twin_unet["cross_attention_dim"]


def test_the_adapter_file_loads_as_a_module(cpu_runtime):
    w = genhelpers.load("tiny:ip-adapter-sd15", cpu_runtime, memory=None, quiet=True)
    assert type(w).__name__ == "IPAdapterWeights" and len(w.config.hidden_sizes) == 16
    tokens = w.image_tokens(torch.randn(2, w.config.image_embeds_dim))
    assert tokens.shape == (2, 4, w.config.cross_attention_dim)
    with pytest.raises(ValueError, match="safetensors only"):
        type(w).from_pretrained(genhelpers.locate("tiny:ip-adapter-sd15"), weight_name="ip-adapter_sd15.bin")


def test_the_image_encoder_entry_reads_its_subfolder(cpu_runtime):
    path = genhelpers.locate("tiny:ip-adapter-image-encoder")
    assert path.parts[-2:] == ("models", "image_encoder")
    enc = genhelpers.load("tiny:ip-adapter-image-encoder", cpu_runtime, memory=None, quiet=True)
    assert type(enc).__name__ == "CLIPVisionModelWithProjection"


def test_an_attached_kaggle_copy_is_found_by_its_layout(twins, kaggle_input):
    """A Kaggle dataset holding the repository's files (any depth): the adapter's root is found by its file, the
    encoder's folder inside it."""
    import shutil

    shutil.copytree(twins["ip-adapter-sd15"], kaggle_input / "ip-adapter" / "v1")
    root = weights.resolve("h94/IP-Adapter")
    assert root.source == "kaggle-input" and (root.path / "models" / "ip-adapter_sd15.safetensors").is_file()
    encoder = weights.resolve("ip-adapter-image-encoder")
    assert encoder.path == root.path / "models" / "image_encoder"


# ------------------------------------------------------------------------------------- with the pipelines
@pytest.fixture(scope="module")
def pipes():
    """The notebook's two pipelines on the twins: AnimateDiff with the adapter, and SD 1.5's still pipeline
    sharing everything but the UNet."""
    from diffusers import DDIMScheduler

    from genhelpers.platform.runtime import detect

    rt = detect(threads=2)
    pipe = genhelpers.load("tiny:sd15", rt, memory=None, quiet=True, pipeline="AnimateDiffPipeline",
                           motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear", clip_sample=False)
    folder = genhelpers.locate("tiny:ip-adapter-sd15")
    pipe.load_ip_adapter(folder, subfolder="models", weight_name=ipadapter.WEIGHT_NAME)
    shared = {n: getattr(pipe, n) for n in ("vae", "text_encoder", "tokenizer", "scheduler", "image_encoder",
                                            "feature_extractor")}
    still = genhelpers.load("tiny:sd15", rt, memory=None, quiet=True, **shared)
    still.load_ip_adapter(folder, subfolder="models", weight_name=ipadapter.WEIGHT_NAME)
    for p in (pipe, still):
        p.set_progress_bar_config(disable=True)
    return pipe, still


def _pictures():
    from genhelpers.outputs.styles import poster

    noise = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype("uint8")
    from PIL import Image

    return poster(128), Image.fromarray(noise)


def _clip(pipe, setting, picture):
    pipe.set_ip_adapter_scale(setting)
    return pipe(prompt="a fox", ip_adapter_image=picture, num_frames=4, height=64, width=64, num_inference_steps=2,
                generator=torch.Generator().manual_seed(0), output_type="np").frames[0]


def _still(still, setting, picture):
    still.set_ip_adapter_scale(setting)
    return still(prompt="a fox", ip_adapter_image=picture, height=64, width=64, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]


@pytest.mark.parametrize("setting", ACCEPTED + SILENT)
def test_our_layer_map_is_what_diffusers_sets(pipes, setting):
    """For every accepted setting the scales diffusers sets, layer by layer, equal ``layer_scales``; every setting
    we refuse for being ignored really is ignored by diffusers 0.42 (no layer left for the picture)."""
    for p in pipes:
        p.set_ip_adapter_scale(setting)
        got = ipadapter.processor_scales(p.unet)
        if setting in SILENT:
            assert set(got.values()) == {0.0}, got
        else:
            assert got == ipadapter.layer_scales(setting)


def test_the_published_sdxl_and_misspelt_dicts_raise_nothing_in_diffusers(pipes):
    """The trap the checks exist for: diffusers takes these without an error (if a later diffusers raises instead,
    this test says so and the checks' wording can be revisited)."""
    for setting in SILENT:
        pipes[0].set_ip_adapter_scale(setting)


def test_scale_zero_is_exactly_animatediff_without_the_adapter(pipes):
    """The notebook's 'no style' panel: scale 0 with the picture passed skips the picture's branch, bit for bit."""
    from diffusers import AnimateDiffPipeline

    pipe = pipes[0]
    picture, _ = _pictures()
    with_adapter = _clip(pipe, 0.0, picture)
    plain = AnimateDiffPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                                unet=genhelpers.load("tiny:sd15", None, memory=None, quiet=True).unet,
                                motion_adapter=genhelpers.load("tiny:animatediff-motion-adapter-v1-5-2", None,
                                                               memory=None, quiet=True),
                                scheduler=pipe.scheduler)
    plain.set_progress_bar_config(disable=True)
    without = plain(prompt="a fox", num_frames=4, height=64, width=64, num_inference_steps=2,
                    generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    assert np.array_equal(with_adapter, without)


def test_every_conditioning_input_changes_the_twin_clip_and_still(pipes):
    """No dead path on the twins: the picture and each scale setting change the clip and the still, and the
    picture on every layer moves the clip further than on the style layers only (what the notebook measures)."""
    pipe, still = pipes
    poster, noise = _pictures()
    none, every, style = (_clip(pipe, s, poster) for s in (0.0, 1.0, ipadapter.STYLE))
    layout = _clip(pipe, ipadapter.STYLE_AND_LAYOUT, poster)
    other_picture = _clip(pipe, ipadapter.STYLE, noise)
    change = lambda a, b: float(np.abs(a - b).mean())  # noqa: E731
    assert change(every, none) > change(style, none) > 1e-4
    assert change(layout, style) > 1e-4 and change(other_picture, style) > 1e-4
    half = _clip(pipe, {"up": {"block_1": 0.5}}, poster)
    assert change(half, style) > 1e-4 and change(half, none) > 1e-4
    s_none, s_every, s_style = (_still(still, s, poster) for s in (0.0, 1.0, ipadapter.STYLE))
    assert change(s_every, s_none) > change(s_style, s_none) > 1e-4
    assert change(_still(still, ipadapter.STYLE, noise), s_style) > 1e-4
