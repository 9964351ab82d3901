"""Open-VCLIP's α curve."""
import json

import pytest

from .common import (
    PROFILES,
    from_collection,
)


@pytest.fixture(scope="module")
def video_clip_run(collection):
    return from_collection(collection, "video_clip")


def test_video_clip_alpha_curve_meets_its_smoke_floors(video_clip_run):
    """Smoke training (300 + 200 steps) floors, below the full-length figures in benchmarks/results.json: the video
    model learns the seen classes, and an interpolated model does at least as well on unseen classes as the
    fine-tuned one (Open-VCLIP's point), far above the original CLIP, which is blind to motion."""
    out, result = video_clip_run
    assert result["status"] == "passed", result.get("error")
    curve = json.loads((out / "video_clip" / "alpha_curve_000.json").read_text())["generation"]
    assert curve["alpha"] == PROFILES["video_clip"]["smoke"]["alphas"] and curve["still_zero_shot"] >= 0.9
    assert curve["seen"][-1] >= 0.6 and curve["seen"][-1] > curve["seen"][0] + 0.4
    interior = max(u for a, u in zip(curve["alpha"], curve["unseen"], strict=True) if 0 < a < 1)
    assert interior >= curve["unseen"][-1] and interior >= curve["unseen"][0] + 0.2, curve
    real = json.loads((out / "video_clip" / "real_route.json").read_text())["generation"]
    assert len(real["xclip"]) == len(real["labels"]) and abs(sum(real["xclip"]) - 1) < 1e-3


def test_reversed_clips_change_nothing_for_frame_averaged_clip(video_clip_run):
    """The direction test: at α = 0 the video model is frame-averaged CLIP, so a clip played backwards gets
    exactly the same prediction (the sidecar records both α's)."""
    out, _ = video_clip_run
    by_alpha = json.loads((out / "video_clip" / "reversed_000.json").read_text())["generation"]["by_alpha"]
    assert by_alpha["0.0"] == {"flipped": 0.0, "unchanged": 1.0}
    assert all(0 <= r["flipped"] <= 1 for r in by_alpha.values())
