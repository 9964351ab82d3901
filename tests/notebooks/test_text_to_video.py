"""Text to video: ModelScope, ZeroScope, CogVideoX."""

import pytest

from .common import PROFILES, assert_stopped, check_clip, from_collection


@pytest.fixture(scope="module")
def t2v_run(collection):
    return from_collection(collection, "text_to_video")

def test_text_to_video_modelscope_clip(t2v_run):
    out, result = t2v_run
    assert result["status"] == "passed", result.get("error")
    smoke = PROFILES["text_to_video"]["smoke"]
    side = check_clip(out / "text_to_video", smoke["frames"], (smoke["width"], smoke["height"]))
    assert side["generation"]["denoiser"] == "UNet3DConditionModel"
    assert set(side["generation"]["parameters"]) == {"unet", "vae", "text_encoder"}


def test_the_attention_costs_are_counted_in_the_summary(t2v_run):
    """The lesson's table at each family's published shape: ModelScope's factorised attention (16 × 1,024
    tokens, then 1,024 × 16) against CogVideoX's one full-3D call over 13 × 30 × 45 patches + 226 text tokens."""
    import nbformat

    out, _ = t2v_run
    nb = nbformat.read(out / "text_to_video.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT")
                   for o in c.outputs)
    assert "ModelScope, 16 × 256²: spatial: 16,777,216" in text
    assert "ModelScope, 16 × 256²: temporal: 262,144" in text
    assert f"CogVideoX, 49 × 480×720: full 3D: {(13 * 30 * 45 + 226) ** 2:,}" in text


RUNS = {"cogvideox": ("text_to_video", {"model": "tiny:cogvideox-2b", "frames": 9}),
        "zeroscope": ("text_to_video", {"model": "tiny:zeroscope-v2-576w", "allow_pickle": True})}


def test_text_to_video_cogvideox_and_zeroscope_twins(runs):
    cog, out = runs("cogvideox")
    assert cog["status"] == "passed", cog.get("error")
    side = check_clip(out / "text_to_video", 9, (64, 64))
    assert side["generation"]["denoiser"] == "CogVideoXTransformer3DModel"
    zero, _ = runs("zeroscope")
    assert zero["status"] == "passed", zero.get("error")



BAD_INPUTS = [("text_to_video", *row) for row in [
    ({"model": "tiny:zeroscope-v2-576w"}, "ParameterError", "model='tiny:zeroscope-v2-576w': the repository "
     "publishes pickle weights only", "genhelpers.check("),
    ({"model": "tiny:cogvideox-2b", "frames": 13}, "ParameterError", "frames=13 does not suit CogVideoX",
     "check_text_to_video("),
    ({"model": "tiny:cogvideox-2b", "frames": 9, "height": 72}, "ParameterError", "height=72 must be a multiple of 16",
     "check_text_to_video("),
    ({"height": 60}, "ParameterError", "height=60 must be a multiple of 8", "genhelpers.check("),
    ({"allow_pickle": "yes"}, "ParameterError", "allow_pickle='yes'", "genhelpers.check("),
    ({"model": "tiny:modelscope"}, "ParameterError", "no tiny twin by that name", "genhelpers.check("),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
