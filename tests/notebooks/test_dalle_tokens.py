"""DALL·E's dVAE: tokens, reconstructions, edits; pickles only behind the opt-in."""
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
def dalle_run(collection):
    return from_collection(collection, "dalle_tokens")


def test_dalle_tokens_grids_reconstructions_usage_and_edits(dalle_run):
    out, result = dalle_run
    assert result["status"] == "passed", result.get("error")
    folder, side = out / "dalle_tokens", PROFILES["dalle_tokens"]["smoke"]["size"]
    grids = json.loads((folder / "token_grids_000.json").read_text())["generation"]
    assert grids["grid"] == [side // 8, side // 8] and grids["vocabulary"] == 512
    assert len(grids["first_row_of_tokens"]) == side // 8
    # the sidecar says where the weights came from: the pickles' SHA-256, as converted (issue 33)
    models = json.loads((folder / "token_grids_000.json").read_text())["models"]
    assert [m["class"] for m in models] == ["Encoder", "Decoder"]
    assert all(len(m["source_sha256"]) == 64 and m["source"].endswith(".pkl") for m in models)
    recon = json.loads((folder / "reconstructions_000.json").read_text())["generation"]
    assert len(recon["psnr_db"]) == 4 and all(0 < s < 60 for s in recon["psnr_db"])
    assert Image.open(folder / "reconstructions_000.png").size == (2 * side, 4 * side)
    usage = json.loads((folder / "codebook_usage_000.json").read_text())["generation"]
    assert usage["tokens"] == 4 * (side // 8) ** 2 and 1 < usage["distinct"] <= usage["tokens"]
    edits = json.loads((folder / "token_edits_000.json").read_text())["generation"]
    assert edits["tokens_replaced"] > 0 and len(edits["single_tokens"]) == 4


def _own_pictures(folder):
    for i, colour in enumerate([(200, 40, 40), (40, 40, 200)]):
        Image.new("RGB", (96, 80), colour).save(folder / f"p{i}.png")
    return {"images": [str(folder / "p0.png"), str(folder / "p1.png")]}


RUNS = {"dalle-own-pictures": ("dalle_tokens", _own_pictures)}


def test_dalle_tokens_with_own_pictures(runs):
    result, out = runs("dalle-own-pictures")
    assert result["status"] == "passed", result.get("error")
    recon = json.loads((out / "dalle_tokens" / "reconstructions_000.json").read_text())["generation"]
    assert len(recon["psnr_db"]) == 2



def test_dalle_tokens_refuses_pickles_without_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.setenv("GENHELPERS_CACHE", str(tmp_path / "cache"))  # nothing converted yet
    params = {**PROFILES["dalle_tokens"]["smoke"], "allow_pickle": False}
    result = run_notebook(NOTEBOOKS / "dalle_tokens.ipynb", params, tmp_path / "out")
    assert_stopped(result, tmp_path / "out", "ParameterError", "set allow_pickle=True", "dvae.load(")


def test_damage_is_measured_against_the_share_of_random_tokens(dalle_run):
    out, _ = dalle_run
    smoke = PROFILES["dalle_tokens"]["smoke"]
    side = json.loads((out / "dalle_tokens" / "noise_sweep_000.json").read_text())["generation"]
    assert side["noise_fractions"] == smoke["noise_fractions"]
    assert len(side["psnr_vs_reconstruction_db"]) == len(smoke["noise_fractions"])
