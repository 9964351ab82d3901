"""AnimateDiff (+ SparseCtrl) and SVD: clips with their sidecars."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    PROFILES,
    assert_stopped,
    from_collection,
    parameter_names,
    read_clip,
)


@pytest.fixture(scope="module")
def video_run(collection):
    return from_collection(collection, "animatediff", "svd")


@pytest.mark.parametrize("notebook, stem, frames, size", [
    ("animatediff", "animatediff", 16, (64, 64)),
    ("animatediff", "sparsectrl_scribble", 16, (64, 64)),
    ("svd", "svd", 14, (112, 64)),
])
def test_video_smoke_clips(video_run, notebook, stem, frames, size):
    out, results = video_run
    assert results[notebook]["status"] == "passed", results[notebook].get("error")
    folder = out / notebook
    assert read_clip(folder / f"{stem}.mp4").shape[:3] == (frames, size[1], size[0])
    gif = Image.open(folder / f"{stem}.gif")
    side = json.loads((folder / f"{stem}.json").read_text())
    assert gif.size == size and gif.n_frames == json.loads((folder / f"{stem}.json").read_text()).get(
        "gif_frames", side["clip"]["frames"])
    assert side["clip"]["frames"] == frames and (side["clip"]["width"], side["clip"]["height"]) == size
    assert side["clip"]["fps"] == side["parameters"]["fps"]
    assert side["generation"] and side["models"][0]["memory_plan"]["name"] == "cpu"
    names = parameter_names(nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4))
    assert set(side["parameters"]) == set(names)
    assert Image.open(folder / f"{stem}_strip.png").size == (8 * size[0], size[1])


def test_gif_sidecar_counts_frames(video_run):
    out, _ = video_run
    side = json.loads((out / "animatediff" / "animatediff.gif").with_suffix(".json").read_text())
    assert side["gif_frames"] == Image.open(out / "animatediff" / "animatediff.gif").n_frames


def test_sparsectrl_records_its_key_frames(video_run):
    out, _ = video_run
    side = json.loads((out / "animatediff" / "sparsectrl_scribble.json").read_text())
    assert side["generation"] == {"key_frames": "scribble", "conditioning_frames": [0, 8, 15]}
    assert [m["class"] for m in side["models"]] == ["AnimateDiffPipeline", "SparseControlNetModel"]


def test_animatediff_is_compared_with_its_motion_modules_bypassed(video_run):
    out, _ = video_run
    side = json.loads((out / "animatediff" / "motion_on_off_000.json").read_text())["generation"]
    assert side["rows"] == ["with the motion module", "motion module bypassed"]
    assert side["modules_bypassed"] > 0 and side["frames_shown"] == [0, 5, 10, 15]
    assert set(side["frame_change"]) == set(side["rows"])
    assert Image.open(out / "animatediff" / "motion_on_off_000.png").size == (4 * 64, 2 * 64)


def test_bypassed_motion_modules_leave_sd15_frame_by_frame(twins, cpu_runtime):
    """The notebook's claim: a motion module adds its output to its input, so one that hands its input back takes
    itself out, and the motion UNet is then the SD 1.5 UNet applied to each frame alone."""
    import torch

    import genhelpers

    pipe = genhelpers.load("tiny:sd15", cpu_runtime, memory=None, quiet=True, pipeline="AnimateDiffPipeline",
                           motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")
    image = genhelpers.load("tiny:sd15", cpu_runtime, memory=None, quiet=True).unet
    frames = 3
    x = torch.randn(1, 4, frames, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 77, image.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    per_frame = text.repeat_interleave(frames, dim=0)  # the motion UNet reads the prompt once per frame
    modules = [m for n, m in pipe.unet.named_modules() if n.rsplit(".", 2)[-2:-1] == ["motion_modules"]]
    with torch.no_grad():
        moving = pipe.unet(x, 10, encoder_hidden_states=per_frame).sample
        for m in modules:
            m.forward = lambda hidden_states, *args, **kwargs: hidden_states
        bypassed = pipe.unet(x, 10, encoder_hidden_states=per_frame).sample
        for f in range(frames):
            alone = image(x[:, :, f], 10, encoder_hidden_states=text).sample
            assert torch.allclose(bypassed[:, :, f], alone, atol=1e-5)
    assert modules and not torch.allclose(moving, bypassed, atol=1e-4)


def test_svd_is_compared_across_motion_bucket_id(video_run):
    """Section 5: first, middle and last frame of a clip per motion_bucket_id of motion_sweep, with the measured
    frame-to-frame change recorded."""
    out, _ = video_run
    sweep = PROFILES["svd"]["smoke"]["motion_sweep"]
    side = json.loads((out / "svd" / "motion_sweep_000.json").read_text())["generation"]
    assert side["motion_bucket_id"] == sweep and side["frames_shown"] == [0, 7, 13]
    assert len(side["frame_change"]) == len(sweep) and all(v >= 0 for v in side["frame_change"])
    assert Image.open(out / "svd" / "motion_sweep_000.png").size == (3 * 112, len(sweep) * 64)


def _key_frames(folder):
    keys = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        keys.append(str(folder / f"key{i}.png"))
        Image.new("RGB", (80, 80), color).save(keys[-1])
    return {"sparsectrl_model": "tiny:sparsectrl-rgb", "conditioning_frames": [0, 15], "conditioning_images": keys}


RUNS = {"animatediff-alone": ("animatediff", {"sparsectrl": False}), "animatediff-rgb": ("animatediff", _key_frames)}


def test_animatediff_without_sparsectrl(runs):
    result, _ = runs("animatediff-alone")
    assert result["status"] == "passed", result.get("error")
    assert result["outputs"] == ["animatediff.gif", "animatediff.json", "animatediff.mp4", "animatediff_strip.json",
                                 "animatediff_strip.png", "motion_on_off_000.json", "motion_on_off_000.png"]


def test_sparsectrl_rgb_with_given_key_frames(runs):
    result, out = runs("animatediff-rgb")
    assert result["status"] == "passed", result.get("error")
    side = json.loads((out / "animatediff" / "sparsectrl_rgb.json").read_text())
    keys = [str(out.parent.parent / "inputs" / "animatediff-rgb" / f"key{i}.png") for i in range(2)]
    assert side["generation"]["key_frames"] == "rgb" and side["parameters"]["conditioning_images"] == keys


README = str(NOTEBOOKS.parent / "README.md")  # a file that is not a picture
BAD_INPUTS = [  # (notebook, override, error, message, the cell that stops: genhelpers.check or check_motion)
    ("animatediff", {"frames": 0}, "ParameterError", "frames=0 must be a whole number ≥ 1", "genhelpers.check"),
    ("animatediff", {"frames": 40}, "ParameterError", "frames=40 is more than the motion module knows",
     "genhelpers.check"),
    ("animatediff", {"fps": 0}, "ParameterError", "fps=0 must be a number > 0", "genhelpers.check"),
    ("animatediff", {"conditioning_frames": [0, 16]}, "ParameterError",
     "frame(s) [16] lie outside the clip of frames=16", "genhelpers.check"),
    ("animatediff", {"base_model": "tiny:sdxl-base"}, "ParameterError", "plugs into blocks of width",
     "genhelpers.check"),
    ("svd", {"image": "does/not/exist.png"}, "ParameterError", "no such file", "genhelpers.check"),
    ("svd", {"image": README}, "ParameterError", "could not be read as an image", "genhelpers.check"),
    ("svd", {"min_guidance": 4.0, "max_guidance": 3.0}, "ParameterError",
     "min_guidance=4.0 is above max_guidance=3.0", "genhelpers.check"),
]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
