"""unCLIP (Karlo): text to image, variations, a walk between embeddings."""
import json

import pytest
from PIL import Image

from .common import (
    PROFILES,
    from_collection,
)


@pytest.fixture(scope="module")
def unclip_run(collection):
    return from_collection(collection, "unclip")


def test_unclip_text_to_image_variations_and_a_walk(unclip_run):
    out, result = unclip_run
    assert result["status"] == "passed", result.get("error")
    smoke, folder = PROFILES["unclip"]["smoke"], out / "unclip"
    assert Image.open(folder / "text_to_image_000.png").size == (64, 64)  # the twin's super-resolution side
    assert json.loads((folder / "text_to_image_001.json").read_text())["generation"]["prompts"][1] == \
        smoke["second_prompt"]
    assert Image.open(folder / "variations_000.png").size == (64 * (1 + smoke["num_variations"]), 64)
    walk = json.loads((folder / "interpolation_000.json").read_text())["generation"]
    assert walk["fractions"] == [0.0, 0.5, 1.0][: smoke["interpolation_steps"]]
    assert len(walk["cosine_to_b"]) == smoke["interpolation_steps"] and walk["cosine_to_b"][-1] == 1.0
    assert set(walk["cosines"]) >= {"prior image embedding · caption text embedding"}
    models = json.loads((folder / "variations_000.json").read_text())["models"]
    assert "decoder" in json.dumps(models)  # the variations pipeline records the borrowed components


def test_unclip_decodes_without_the_prior_for_comparison(unclip_run):
    """DALL·E 2's ablation: the caption's text embedding decoded as if it were an image embedding, beside the
    prior's image embedding, each picture's CLIP cosine to the caption recorded."""
    out, _ = unclip_run
    side = json.loads((out / "unclip" / "without_prior_000.json").read_text())["generation"]
    assert side["left_right"] == ["prior's image embedding", "caption's text embedding (no prior)"]
    assert len(side["cosine_to_caption"]) == 2 and all(-1 <= c <= 1 for c in side["cosine_to_caption"])
    assert Image.open(out / "unclip" / "without_prior_000.png").size == (2 * 64, 64)
