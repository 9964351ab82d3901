"""Tune-A-Video: trains on one clip, reconstructs it, edits it."""
import json

import pytest
from PIL import Image

from .common import (
    PROFILES,
    assert_stopped,
    from_collection,
)


@pytest.fixture(scope="module")
def tav_run(collection):
    return from_collection(collection, "tune_a_video")


def test_tune_a_video_trains_then_reconstructs_and_edits(tav_run):
    out, result = tav_run
    assert result["status"] == "passed", result.get("error")
    smoke = PROFILES["tune_a_video"]["smoke"]
    folder = out / "tune_a_video"
    curve = json.loads((folder / "loss_curve_000.json").read_text())["generation"]
    assert len(curve["losses"]) == smoke["train_steps"]
    assert curve["probe_after"] < curve["probe_before"]  # the loss on fixed noise draws fell: it learned the clip
    assert 0 < curve["trained_parameters"]
    for stem in ["training_clip", "reconstruction"] + [f"edit{i}" for i in range(len(smoke["edits"]))]:
        assert Image.open(folder / f"{stem}.gif").n_frames == smoke["frames"]
        assert Image.open(folder / f"{stem}.gif").size == (smoke["size"], smoke["size"])
    assert json.loads((folder / "edit1.json").read_text())["generation"]["prompt"] == smoke["edits"][1]
    reconstruction = json.loads((folder / "reconstruction.json").read_text())["generation"]
    assert "psnr_db" in reconstruction
    # the authors' round trip: inverted with the empty prompt, rendered back with it at guidance 1 (guidance off)
    assert reconstruction["prompt"] == "" and reconstruction["guidance"] == 1.0


def test_the_first_edit_is_rendered_before_and_after_tuning(tav_run):
    """The comparison the method rests on: the untuned inflated model (the image model, frame by frame) against
    the tuned one, from the same kind of inverted noise, under the training clip."""
    out, result = tav_run
    smoke = PROFILES["tune_a_video"]["smoke"]
    folder = out / "tune_a_video"
    untuned = json.loads((folder / "edit0_untuned.json").read_text())["generation"]
    assert untuned == {"prompt": smoke["edits"][0], "tuned": False}
    assert Image.open(folder / "edit0_untuned.gif").n_frames == smoke["frames"]
    grid = json.loads((folder / "before_after_tuning_000.json").read_text())["generation"]
    assert grid["rows"] == ["training clip", "first edit, untuned", "first edit, tuned"]
    assert Image.open(folder / "before_after_tuning_000.png").size == (smoke["frames"] * smoke["size"],
                                                                      3 * smoke["size"])



BAD_INPUTS = [("tune_a_video", override, "ParameterError", evalue,
               "check_frames(" if "frames=" in evalue else "genhelpers.check(") for override, evalue in [
    ({"size": 100}, "size=100 must be a positive multiple of 64"),
    ({"edits": []}, "edits=[] must be a non-empty list of edited captions"),
    ({"clip": "/nonexistent/clip.mp4"}, "is not a file or folder here"),
    ({"use_8bit_adam": "no"}, "use_8bit_adam='no' must be True or False"),
    ({"caption": ""}, "is empty: describe what to generate"),
    ({"frames": 40}, "frames=40 is more than the temporal layers have positions for"),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)


def test_tune_a_video_takes_a_clip_of_the_user(tmp_path):
    from genhelpers.models import tuneavideo

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(tuneavideo.demo_clip(6, 80)):
        frame.crop((0, 0, 80, 60)).save(folder / f"{i:03d}.png")  # not square: centre-cropped
    got = tuneavideo.load_clip(folder, 4, 64)
    assert len(got) == 4 and got[0].size == (64, 64)
    with pytest.raises(ValueError, match="has 6 frame\\(s\\), fewer than frames=8"):
        tuneavideo.load_clip(folder, 8, 64)
