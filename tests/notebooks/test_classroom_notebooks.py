"""The CPU classrooms: diffusion from scratch and the small CLIP learn what they claim."""
import json

import pytest

from .common import assert_reproduces, from_collection


@pytest.fixture(scope="module")
def classroom_run(collection):
    """Both classrooms from the session's collection (nbval re-runs the clip classroom below)."""
    return from_collection(collection, "diffusion_from_scratch", "clip")


def test_diffusion_learns_to_draw_the_requested_digits(classroom_run):
    """Seeded smoke run (600 steps): the judge must read the requested digit in ≥ 95% of samples at the chosen
    guidance, near chance without the class, and samples must not be copies of training digits."""
    out, results = classroom_run
    assert results["diffusion_from_scratch"]["status"] == "passed", results["diffusion_from_scratch"].get("error")
    side = json.loads((out / "diffusion_from_scratch" / "samples_000.json").read_text())
    quality = side["generation"]
    by_scale = quality["accuracy_by_guidance"]
    assert by_scale["3.0"] >= 0.95
    assert by_scale["1.0"] >= 0.80
    assert by_scale["0.0"] <= 0.30  # unconditional: the class is ignored, chance is 10%
    assert quality["judge_heldout_accuracy"] >= 0.97
    novelty = quality["novelty"]
    assert novelty["generated_to_train"] >= 0.7 * novelty["heldout_to_train"]  # copies would sit near 0


def test_clipping_the_clean_digit_estimate_hurts_guided_sampling_here(classroom_run):
    """The notebook's claim, measured on its own model (smoke: 600 steps; 1,500 steps gave 100 / 14 / 2.5 %):
    at the chosen guidance, clipping the predicted clean digit, or IF's dynamic thresholding, lowers the share the
    judge reads as requested well below the unclipped sampler's."""
    out, _ = classroom_run
    table = json.loads((out / "diffusion_from_scratch" / "samples_000.json").read_text())["generation"][
        "sampler_settings"]
    assert list(table) == ["no clipping", "clipped to [-1, 1]", "dynamic thresholding (p 0.95, max 1.5)"]
    plain = table["no clipping"]["3.0"]
    assert plain >= 0.95
    assert table["clipped to [-1, 1]"]["3.0"] <= plain - 0.2 and table["dynamic thresholding (p 0.95, max 1.5)"][
        "3.0"] <= plain - 0.2, table


def test_trained_model_reloads_through_genhelpers_load(classroom_run, cpu_runtime):
    import torch

    import genhelpers

    out, _ = classroom_run
    pipe = genhelpers.load(str(out / "diffusion_from_scratch" / "model"), cpu_runtime, quiet=True)
    assert type(pipe).__name__ == "DDPMPipeline" and pipe.unet.config.num_class_embeds == 11
    x = torch.zeros(2, 1, 8, 8)
    assert pipe.unet(x, 10, class_labels=torch.tensor([3, 10])).sample.shape == (2, 1, 8, 8)


def test_small_clip_classifies_unseen_digits_zero_shot(classroom_run):
    out, results = classroom_run
    assert results["clip"]["status"] == "passed", results["clip"].get("error")
    side = json.loads((out / "clip" / "heldout_digits_000.json").read_text())
    accuracy = side["generation"]["zero_shot_accuracy"]
    assert set(accuracy) == {"a handwritten {w}", "the digit {d}", "an image of a {w}"}
    assert all(a >= 0.95 for a in accuracy.values()), accuracy  # incl. a template never used in training
    assert len(side["generation"]["clip_score_own_caption"]) == 3


def test_masking_same_digit_negatives_changes_the_target_not_what_is_learned(classroom_run):
    """Section 5 of the clip classroom, measured at the smoke size (two 100-step models): the loss floor of the
    game is about ln 13; both losses level off near it, masked or not, and the zero-shot accuracies agree."""
    out, _ = classroom_run
    side = json.loads((out / "clip" / "negatives_masked_000.json").read_text())["generation"]
    assert 2.4 < side["loss_floor"] < 2.75
    for arm in ("plain", "masked"):
        assert side["loss_floor"] - 0.1 < side[arm]["final_loss"] < side["loss_floor"] + 0.5, side
        assert side[arm]["zero_shot"] >= 0.9
    assert abs(side["plain"]["zero_shot"] - side["masked"]["zero_shot"]) <= 0.03


def test_classroom_nbval(nbval_runs):
    """Seeded CPU training gives the same numbers in a new kernel (the clip classroom: 12 s; the diffusion one,
    50 s, learns by the same seeded mechanism and has its summary checked in its executed copy)."""
    assert_reproduces(nbval_runs["clip"])  # (the diffusion classroom's summary: test_summary_cell_recorded)
