"""MotionDirector: two LoRAs tuned on the drawn clip, the new prompt with and without them, a published LoRA."""
import json
import re

import numpy as np
import pytest
from PIL import Image, ImageSequence

from ..conftest import NOTEBOOKS, REFERENCE
from .common import PROFILES, assert_stopped, from_collection

FACTS = json.loads((REFERENCE / "motion_director" / "facts.json").read_text())["lora_targets"]
SMOKE = PROFILES["motion_director"]["smoke"]
CLIPS = ["prompt_no_lora", "prompt_temporal", "prompt_both", "prompt_published"]


@pytest.fixture(scope="module")
def md_run(collection):
    out, result = from_collection(collection, "motion_director")
    assert result["status"] == "passed", result.get("error")
    return out / "motion_director"


def frames_of(path):
    return np.stack([np.asarray(f.convert("RGB"), dtype=np.float32) / 255 for f in ImageSequence.Iterator(
        Image.open(path))])


def test_it_tunes_both_loras_and_the_temporal_one_learns(md_run):
    curves = json.loads((md_run / "loss_curves_000.json").read_text())["generation"]
    losses = curves["losses"]
    assert len(losses["temporal"]) == len(losses["spatial"]) == SMOKE["train_steps"]
    assert any(x is None for x in losses["spatial"]) or SMOKE["train_steps"] < 10  # the 20 % masked steps
    # measured on fixed noise draws before and after: the temporal LoRA alone fits the clip better
    assert curves["probe_after"]["temporal"] < 0.95 * curves["probe_before"]["temporal"]
    assert curves["lora_layers"] == {"spatial": 60, "temporal": 110}


def test_the_saved_loras_sit_on_their_own_layers_and_moved(md_run):
    """The temporal LoRA file holds only temporal layers, the spatial one only spatial layers (the spatial weights
    never touch a temporal layer); both up-projections left zero, so both learned."""
    from safetensors.torch import load_file

    for path in ("spatial", "temporal"):
        tensors = load_file(md_run / f"{path}_lora.safetensors")
        layers = {k.rsplit(".lora_", 1)[0] for k in tensors}
        other = "temporal" if path == "spatial" else "spatial"
        # the twin's layer names match the published model's patterns (facts.json), never the other path's
        assert all(re.match(FACTS[f"peft_regex_{path}"], n) for n in layers)
        assert not any(re.match(FACTS[f"peft_regex_{other}"], n) for n in layers)
        assert max(float(v.abs().max()) for k, v in tensors.items() if ".lora_B." in k) > 0
        side = json.loads((md_run / f"{path}_lora.json").read_text())
        assert side["lora"]["rank"] == SMOKE["lora_rank"] and side["lora"]["layers"] == len(layers)


def test_each_lora_changes_the_new_prompts_clip(md_run):
    """Same prompt, same noise: the temporal LoRA changes the clip, keeping the spatial LoRA changes it again, the
    published LoRA (the twin, through the pickle opt-in) changes it too."""
    clips = {stem: frames_of(md_run / f"{stem}.gif") for stem in CLIPS}
    assert all(c.shape == (SMOKE["frames"], SMOKE["size"], SMOKE["size"], 3) for c in clips.values())
    base = clips["prompt_no_lora"]
    for stem in CLIPS[1:]:
        assert np.abs(clips[stem] - base).mean() > 0.01, stem
    assert np.abs(clips["prompt_both"] - clips["prompt_temporal"]).mean() > 0.01
    measures = json.loads((md_run / "comparison.json").read_text())["generation"]["measures"]
    assert set(measures) == {"no LoRA", "temporal LoRA", "temporal + spatial LoRA"}
    assert measures["temporal LoRA"]["differs_from_no_lora"] > 0.01
    published = json.loads((md_run / "prompt_published.json").read_text())["generation"]["motion_lora"]
    assert published["pickle"] and published["rank"] == 4 and published["layers"] == 110
    comparison = Image.open(md_run / "comparison.gif")
    assert comparison.size == (3 * SMOKE["size"], SMOKE["size"]) and comparison.n_frames == SMOKE["frames"]


def test_every_file_has_its_sidecar(md_run):
    names = {p.name for p in md_run.iterdir()}
    for stem in ["training_clip", "comparison", *CLIPS]:
        assert {f"{stem}.gif", f"{stem}.mp4", f"{stem}_strip.png", f"{stem}.json"} <= names, stem
    assert {"temporal_lora.safetensors", "spatial_lora.safetensors", "loss_curves_000.png"} <= names


BAD_INPUTS = [("motion_director", override, "ParameterError", evalue, stops_at)
              for override, evalue, stops_at in [
    ({"lora_rank": 0}, "lora_rank=0 must be a whole number from 1", "genhelpers.check("),
    ({"spatial_targets": ["attn3"]}, "unknown layer(s) ['attn3']", "genhelpers.check("),
    ({"temporal_targets": []}, "temporal_targets=[] must be a non-empty list", "genhelpers.check("),
    ({"train_steps": 0}, "train_steps=0 must be a whole number ≥ 1", "genhelpers.check("),
    ({"clip": str(NOTEBOOKS / "install_cell.py")}, "could not be read as a clip", "check_clip("),
    ({"frames": 1}, "frames=1: a motion needs at least 2 frames", "check_clip("),
    ({"allow_pickle": False}, "is a pickle (MotionDirector publishes", "genhelpers.check("),
    ({"motion_lora": "ruizhaocv/MotionDirector:moonwalk"}, "has no motion 'moonwalk'", "genhelpers.check("),
    ({"size": 100}, "size=100 must be a positive multiple of 64", "genhelpers.check("),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
