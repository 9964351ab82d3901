"""DALL·E 3's recaptioning: captions, scores, regenerations."""
import json

import pytest
from PIL import Image

from .common import (
    from_collection,
)


@pytest.fixture(scope="module")
def recaption_run(collection):
    return from_collection(collection, "recaptioning")


def test_recaptioning_captions_scores_and_regenerations(recaption_run):
    out, result = recaption_run
    assert result["status"] == "passed", result.get("error")
    side = json.loads((out / "recaptioning" / "regenerated_000.json").read_text())
    gen = side["generation"]
    assert len(gen["captions"]) == 3 and all(c["short"] and c["detailed"] for c in gen["captions"])
    assert len(gen["scores"]) == 6 and all(0 <= r["clip_score"] <= 100 and r["tokens"] > 2 for r in gen["scores"])
    assert {k: len(v) for k, v in gen["image_similarity"].items()} == {"short": 3, "detailed": 3}
    assert {"caption_s", "regenerate_s"} <= set(side["timings"])
    assert Image.open(out / "recaptioning" / "regenerated_000.png").size[0] > 3 * 64


def test_the_summary_says_whether_the_detailed_caption_was_cut(recaption_run):
    import nbformat

    out, _ = recaption_run
    nb = nbformat.read(out / "recaptioning.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT")
                   for o in c.outputs)
    assert "detailed caption of picture 0 cut at 77 tokens:" in text
