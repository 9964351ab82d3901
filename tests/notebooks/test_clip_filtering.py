"""LAION-5B's CLIP filter on a planted pool."""
import json

import pytest
from PIL import Image

from genhelpers.runs import run_notebook

from ..conftest import NOTEBOOKS
from .common import (
    PROFILES,
    assert_stopped,
    from_collection,
)


@pytest.fixture(scope="module")
def filtering_run(collection):
    return from_collection(collection, "clip_filtering")


def test_clip_filtering_meets_its_smoke_floors(filtering_run):
    """Smoke training (300 steps) floors, below the full-length figures in benchmarks/results.json."""
    out, result = filtering_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "clip_filtering"
    chosen = json.loads((folder / "threshold_curve_000.json").read_text())["generation"]["chosen"]
    assert chosen["loss_right"] <= 0.05 and chosen["recall_wrong"] >= 0.85, chosen
    dup = json.loads((folder / "lowest_aesthetic_000.json").read_text())["generation"]
    assert dup["exact_found"] == dup["exact_planted"] > 0 and dup["exact_false_alarms"] == 0
    assert dup["aesthetic_auc"] >= 0.9
    hist = json.loads((folder / "score_histogram_000.json").read_text())["generation"]
    assert hist["zero_shot_accuracy"] >= 0.9 and hist["wrong"] == round(0.3 * 360)


def test_precision_of_removal_follows_the_base_rate(filtering_run):
    """The base-rate lesson, measured at the smoke size: the same model and the same loss budget on pools with
    10 %, 30 % and 50 % wrong captions; the precision of removal rises with the share of wrong pairs."""
    out, _ = filtering_run
    rows = json.loads((out / "clip_filtering" / "base_rates_000.json").read_text())["generation"]["by_wrong_share"]
    assert list(rows) == ["0.1", "0.3", "0.5"]
    precision = [rows[k]["precision"] for k in rows]
    assert precision[0] < precision[1] < precision[2], rows
    assert all(r["loss_right"] <= 0.05 for r in rows.values())


def _pairs(folder):
    for name, colour in [("red", (220, 30, 30)), ("blue", (30, 30, 220))]:
        Image.new("RGB", (64, 64), colour).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(f"a {name} square\n")
    Image.new("RGB", (64, 64)).save(folder / "uncaptioned.png")  # no .txt: not a pair
    return {"train_steps": 60, "pairs_dir": str(folder)}


RUNS = {"clip-filtering-pairs": ("clip_filtering", _pairs)}


def test_clip_filtering_real_route_on_a_folder_of_pairs(runs):
    result, out = runs("clip-filtering-pairs")
    assert result["status"] == "passed", result.get("error")
    real = json.loads((out / "clip_filtering" / "real_route_000.json").read_text())["generation"]
    assert real["captions"] == ["a blue square", "a red square"] and len(real["cosine"]) == 2



def test_clip_filtering_refuses_a_folder_without_captions(tmp_path):
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "pics" / "a.png")
    params = {**PROFILES["clip_filtering"]["smoke"], "pairs_dir": str(tmp_path / "pics")}
    result = run_notebook(NOTEBOOKS / "clip_filtering.ipynb", params, tmp_path / "out")
    assert_stopped(result, tmp_path / "out", "ParameterError", "holds no picture with a caption", "genhelpers.check(")
