"""Animate Anyone: the character clip from Moore's weights (converted from the twin's pickles), the same clip
without the ReferenceNet, the stock route on the same poses, the measured identity, bad inputs."""
import json

import nbformat
import numpy as np
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import PROFILES, assert_stopped, from_collection, parameter_names, read_clip

SMOKE = PROFILES["animate_anyone"]["smoke"]
A_PICTURE = str(NOTEBOOKS.parent / "benchmarks" / "report_screenshot.png")  # any readable image file


@pytest.fixture(scope="module")
def run(collection):
    out, result = from_collection(collection, "animate_anyone")
    assert result["status"] == "passed", result.get("error")
    return out / "animate_anyone"


@pytest.mark.parametrize("stem", ["moore", "moore_without_reference", "stock_route"])
def test_three_clips_of_the_same_poses(run, stem):
    side = json.loads((run / f"{stem}.json").read_text())
    assert side["clip"] == {"frames": SMOKE["frames"], "fps": 8, "width": 64, "height": 64,
                            "duration_s": SMOKE["frames"] / 8}
    assert read_clip(run / f"{stem}.mp4").shape[:3] == (SMOKE["frames"], 64, 64)
    assert Image.open(run / f"{stem}.gif").n_frames == side["gif_frames"]
    identity = side["generation"]["identity"]
    assert len(identity["to_reference"]) == SMOKE["frames"] and len(identity["frame_to_frame"]) == SMOKE["frames"] - 1
    assert all(-1 <= c <= 1 for c in identity["to_reference"] + identity["frame_to_frame"])
    names = parameter_names(nbformat.read(NOTEBOOKS / "animate_anyone.ipynb", as_version=4))
    assert set(side["parameters"]) == set(names) and side["seed"] == SMOKE["seed"]


def test_moores_route_is_our_pipeline_on_the_converted_pickles(run):
    side = json.loads((run / "moore.json").read_text())
    assert side["models"][0]["class"] == "AnimateAnyonePipeline" and side["models"][0]["source"] == "path"
    assert "animate_anyone/tiny-animate-anyone" in side["models"][0]["path"]
    assert {"convert_s", "generate_s"} <= set(side["timings"])
    assert side["generation"]["reference_attention"] is True
    off = json.loads((run / "moore_without_reference.json").read_text())
    assert off["generation"]["reference_attention"] is False
    stock = json.loads((run / "stock_route.json").read_text())
    assert [m["class"] for m in stock["models"]] == ["AnimateDiffPipeline", "ControlNetModel"]


def test_the_reference_switch_changes_the_clip(run):
    """The on/off comparison is real: same poses, same noise, only the ReferenceNet's features withheld."""
    on, off = read_clip(run / "moore.mp4").astype(float), read_clip(run / "moore_without_reference.mp4").astype(float)
    assert np.abs(on - off).max() > 10


def test_inputs_figure_and_side_by_side(run):
    inputs = Image.open(run / "inputs_000.png")
    assert inputs.size == (64 * (SMOKE["frames"] + 1), 64)  # the character, then one pose picture per frame
    assert Image.open(run / "architecture_000.png").width > 600
    side = json.loads((run / "side_by_side_000.json").read_text())
    assert set(side["generation"]["identity"]) == {"Moore-AnimateAnyone", "without ReferenceNet", "stock route"}


BAD_INPUTS = [("animate_anyone", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"motion": "dance"}, "motion='dance' is not a motion the classroom draws"),
    ({"reference_image": "/nowhere/character.png"}, "reference_image='/nowhere/character.png': no such file"),
    ({"pose_images": [A_PICTURE, A_PICTURE]}, "pose_images has 2 picture(s) but frames=4"),
    ({"frames": 30}, "frames=30 must be 1 to 24"),
    ({"allow_pickle": False}, "pickle weights only"),
    ({"model": str(NOTEBOOKS)}, "holds neither Moore-AnimateAnyone's files"),
    ({"ip_adapter_scale": -1}, "ip_adapter_scale=-1"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
