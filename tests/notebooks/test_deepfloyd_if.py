"""DeepFloyd IF's cascade, stage by stage."""
import json

import nbformat
import pytest
from PIL import Image

from .common import (
    assert_stopped,
    from_collection,
)


@pytest.fixture(scope="module")
def if_run(collection):
    return from_collection(collection, "deepfloyd_if")


def test_deepfloyd_if_three_stages_each_saved_with_its_facts(if_run):
    out, result = if_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "deepfloyd_if"
    sides = {"I": 16, "II": 64, "III": 256}  # the twins' cascade (published: 64 → 256 → 1024)
    for stage, side in sides.items():
        assert Image.open(folder / f"stage_{stage}_000.png").size == (side, side)
        gen = json.loads((folder / f"stage_{stage}_000.json").read_text())["generation"]
        assert gen["stage"] == stage and gen["space"] == ("latents" if stage == "III" else "pixels")
        assert gen["denoised_per_step"] == ([4, 64, 64] if stage == "III" else [3, side, side])
        assert sum(gen["parameters"].values()) > 0 and "generate_s" in json.loads(
            (folder / f"stage_{stage}_000.json").read_text())["timings"]
    one = json.loads((folder / "stage_I_000.json").read_text())["generation"]
    assert "text_encoder" in one["parameters"] and "safety_checker" not in one["parameters"]
    two = json.loads((folder / "stage_II_000.json").read_text())["generation"]
    assert "text_encoder" not in two["parameters"]  # stage II reuses stage I's T5 embeddings
    assert Image.open(folder / "cascade_grid.png").size == (3 * 256, 256)
    nb = nbformat.read(out / "deepfloyd_if.ipynb", as_version=4)
    summary = next(c for c in nb.cells if "NBVAL_CHECK_OUTPUT" in c.source).outputs[0]["text"]
    assert "prompt encoded once: (1, 77, 32)" in summary



def test_stage_one_is_compared_with_and_without_thresholding_and_stage_two_across_noise(if_run):
    """Section 2's three stage I runs (dynamic thresholding, plain clipping, neither) and section 3's stage II runs
    from the same 64 px image, each saved as a labelled strip."""
    from .common import PROFILES

    out, _ = if_run
    folder = out / "deepfloyd_if"
    strip = json.loads((folder / "thresholding_grid.json").read_text())["generation"]
    assert strip["labels"] == ["dynamic thresholding (published)", "plain clipping to ±1", "neither"]
    assert Image.open(folder / "thresholding_grid.png").size == (3 * 16, 16)
    sweep = json.loads((folder / "stage_II_noise_sweep_000.json").read_text())["generation"]
    levels = PROFILES["deepfloyd_if"]["smoke"]["noise_sweep_2"]
    assert sweep["noise_level_2"] == levels
    assert len(list(folder.glob("stage_II_noise_sweep_0*.png"))) == len(levels)
    assert Image.open(folder / "stage_II_noise_sweep_000.png").size == (64, 64)


def test_stage_two_never_loads_a_text_encoder(twins, cpu_runtime):
    """The IF-II repositories ship their own T5-XXL; stage II is given stage I's embeddings, so the catalog skips
    it and the loader hands text_encoder=None to diffusers (as diffusers' own IF recipe does)."""
    import genhelpers
    from genhelpers.hub import catalog

    assert "text_encoder" in catalog.ENTRIES["if-ii-l"].skip
    two = genhelpers.load("tiny:if-ii-l", cpu_runtime, memory=None, quiet=True)
    assert two.text_encoder is None and "text_encoder" in two.genhelpers_info["skipped"]
    assert two.tokenizer is not None  # (the tokenizer stays: the pipeline's own prompt path needs it)


BAD_INPUTS = [("deepfloyd_if", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"stage_2": None}, "stage_3='tiny:sd-x4-upscaler' needs stage_2"),
    ({"noise_level_3": 400}, "noise_level_3=400 must be a whole number from 0 to 350"),
    ({"noise_level_2": -1}, "noise_level_2=-1 must be a whole number from 0 to 999"),
    ({"stage_1": "tiny:if-i-xxl"}, "no tiny twin by that name"),
    ({"steps_2": 0}, "steps_2=0 must be a whole number ≥ 1"),
    ({"prompt": " "}, "is empty: describe what to generate"),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
