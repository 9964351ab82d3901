"""TMR: text-to-motion retrieval on generated skeletons."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    PROFILES,
    from_collection,
    parameter_names,
)


@pytest.fixture(scope="module")
def motion_run(collection):
    return from_collection(collection, "motion_retrieval")


def test_motion_retrieval_meets_its_smoke_floors(motion_run):
    """Smoke training (300 steps, 600 motions) floors, below the full-length figures in benchmarks/results.json;
    the generator's labels judge. Chance: 5% for the asked kind (20 classes), R@5 of a batch of 32 ~16%."""
    out, result = motion_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "motion_retrieval"
    scores = json.loads((folder / "retrieval_scores_000.json").read_text())["generation"]["scores"]
    assert scores["seen wordings"]["top_is_asked_class"] >= 0.8
    assert scores["held-out wordings"]["top_is_asked_class"] >= 0.75  # sentences never seen in training
    assert all(s["small_batches_R@5"] >= 0.9 and s["median_rank"] <= 10 for s in scores.values()), scores
    smoke = PROFILES["motion_retrieval"]["smoke"]
    for i, query in enumerate(parameter_names(nbformat.read(NOTEBOOKS / "motion_retrieval.ipynb", 4))["queries"]):
        side = json.loads((folder / f"query{i}.json").read_text())["generation"]
        assert side["query"] == query and len(side["top"]) == 3
        assert Image.open(folder / f"query{i}.gif").n_frames == 32
    assert Image.open(folder / "actions.gif").size == (160 * 7, 160)
    assert smoke["train_steps"] == json.loads((folder / "loss_curve_000.json").read_text())["parameters"]["train_steps"]



def _humanml3d(folder):
    hml = folder / "HumanML3D"
    (hml / "new_joints").mkdir(parents=True)
    (hml / "texts").mkdir()
    rng = __import__("numpy").random.default_rng(0)
    ids = [f"{i:06d}" for i in range(40)]
    for i in ids:
        __import__("numpy").save(hml / "new_joints" / f"{i}.npy", rng.normal(size=(60, 22, 3)).astype("float32"))
        (hml / "texts" / f"{i}.txt").write_text("a person walks forward#x#0.0#0.0\n")
    (hml / "test.txt").write_text("\n".join(ids) + "\n")
    return {"train_steps": 30, "humanml3d_dir": str(hml)}


RUNS = {"motion-retrieval-humanml3d": ("motion_retrieval", _humanml3d)}


def test_motion_retrieval_evaluates_a_humanml3d_folder(runs):
    result, out = runs("motion-retrieval-humanml3d")
    assert result["status"] == "passed", result.get("error")
    nb = nbformat.read(out / "motion_retrieval.ipynb", as_version=4)
    assert any("HumanML3D test (40 motions)" in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
