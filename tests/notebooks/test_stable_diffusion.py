"""Stable Diffusion 1.5 / 2.1-base / 2.1 side by side, the guidance sweep."""
import json

import pytest
from PIL import Image

from .common import (
    PROFILES,
    assert_stopped,
    from_collection,
)


@pytest.fixture(scope="module")
def sd_run(collection):
    return from_collection(collection, "stable_diffusion")


def test_stable_diffusion_three_models_same_seeds_and_a_guidance_sweep(sd_run):
    out, result = sd_run
    assert result["status"] == "passed", result.get("error")
    smoke = PROFILES["stable_diffusion"]["smoke"]
    folder = out / "stable_diffusion"
    for i, (model, side) in enumerate(zip(smoke["models"], smoke["sizes"], strict=True)):
        stem = f"model{i}_{model.removeprefix('tiny:')}"
        pngs = sorted(folder.glob(f"{stem}_0*.png"))
        assert len(pngs) == len(smoke["prompts"]) and all(Image.open(p).size == (side, side) for p in pngs)
        side_car = json.loads((folder / f"{stem}_001.json").read_text())
        assert side_car["seed"] == smoke["seed"] + 1  # the same seeds for every model
        gen = side_car["generation"]
        assert gen["model"] == model and len(gen["clip_scores"]) == len(smoke["prompts"])
        assert gen["prediction_type"] == ("v_prediction" if model == "tiny:sd21" else "epsilon")
        assert set(gen["parameters_per_part"]) == {"text_encoder", "unet", "vae"}
    sweep = json.loads((folder / "guidance_sweep_000.json").read_text())["generation"]
    assert sweep["guidance"] == smoke["guidance_sweep"] and len(sweep["clip_scores"]) == len(smoke["guidance_sweep"])
    # first the prompt-free picture (an empty prompt at 1.0, since diffusers switches guidance off at ≤ 1)
    assert sweep["first"]["prompt"] == "" and sweep["first"]["guidance"] == 1.0
    assert Image.open(folder / "guidance_sweep_grid.png").size == (64 * (len(smoke["guidance_sweep"]) + 1), 64)


def test_the_unet_grows_only_with_the_cross_attention_width(sd_run):
    """The summary's counts, made on the meta device from the recorded configs: SD 1.5's UNet with only
    cross_attention_dim 768 → 1024 has exactly SD 2.1's parameter count; linear projections and 2.1's head sizes
    add none."""
    import nbformat

    out, _ = sd_run
    nb = nbformat.read(out / "stable_diffusion.ipynb", as_version=4)
    summary = next(c for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT"))
    text = "".join(o.get("text", "") for o in summary.outputs)
    assert "UNet, SD 1.5 as published: 859,520,964 parameters" in text
    assert "UNet, cross_attention_dim 768 → 1024: 865,910,724 parameters" in text
    assert "UNet, linear projections and 2.1's head sizes: 859,520,964 parameters" in text
    assert "UNet, SD 2.1 as published: 865,910,724 parameters" in text



BAD_INPUTS = [("stable_diffusion", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"sizes": [64, 64]}, "sizes has 2 value(s) but models names 3"),
    ({"sizes": [64, 60, 96]}, "sizes=60 must be a multiple of 8"),
    ({"sweep_model": "tiny:sdxl-base"}, "sweep_model='tiny:sdxl-base' is not one of models"),
    ({"models": ["tiny:sd14"], "sizes": [64], "sweep_model": "tiny:sd14"}, "no tiny twin by that name"),
    ({"prompts": []}, "prompts=[] must be a non-empty list of prompts"),
    ({"guidance_sweep": [1.0, -2.0]}, "guidance_sweep=-2.0 must be a number ≥ 0"),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
