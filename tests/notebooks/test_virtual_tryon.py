"""Virtual try-on (CatVTON): person, garment, mask and result side by side, the pixels outside the mask measured
with and without repaint, CatVTON's attention on and off, the attention file's keys and where they landed; a
drawn mask and person from files; bad inputs."""
import json

import nbformat
import numpy as np
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    PROFILES,
    assert_stopped,
    assert_summary_recorded,
    from_collection,
    parameter_names,
)


@pytest.fixture(scope="module")
def tryon_run(collection):
    return from_collection(collection, "virtual_tryon")


def test_virtual_tryon_side_by_side_with_its_measurements(tryon_run):
    out, result = tryon_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "virtual_tryon"
    smoke = PROFILES["virtual_tryon"]["smoke"]
    size = (smoke["width"], smoke["height"])
    for i in range(4):  # person, garment, mask, result
        assert Image.open(folder / f"tryon_{i:03d}.png").size == size
    assert Image.open(folder / "tryon_grid.png").size == (4 * size[0], size[1])
    assert Image.open(folder / "compare_grid.png").size == (3 * size[0], size[1])
    mask = np.asarray(Image.open(folder / "tryon_002.png").convert("L"))
    assert set(np.unique(mask)) == {0, 255}  # binarised
    side = json.loads((folder / "tryon_003.json").read_text())
    facts = side["generation"]
    assert "non-commercial" in facts["licence"] and facts["route"].startswith("CatVTON")
    att = facts["attention"]
    assert (att["keys"], att["tensors"], att["version"]) == (80, 80, "vitonhd") and len(att["sha256"]) == 64
    assert list(att["landed"])[-1].startswith("mid_block") and len(att["landed"]) == 16
    outside = facts["outside_mask"]
    assert facts["kept_exactly_outside_blurred_mask"] is True
    assert outside["with_repaint"]["exact_share"] > outside["without_repaint"]["exact_share"]
    assert outside["with_repaint"]["mean_abs"] < outside["without_repaint"]["mean_abs"]
    assert facts["catvton_attention_off_mean_abs_inside_mask"] > 0  # CatVTON's weights change the result
    model = side["models"][0]
    assert model["class"] == "CatVTONPipeline" and model["components"]["vae"] == "tiny:sd-vae-ft-mse"
    assert "text_encoder" in model["skipped"]
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "virtual_tryon.ipynb",
                                                                        as_version=4)))
    assert_summary_recorded(out / "virtual_tryon.ipynb")


def _drawn_mask(folder):
    from genhelpers.outputs.tryon import demo_garment, demo_person

    demo_person((96, 128)).save(folder / "me.png")
    demo_garment((64, 80)).save(folder / "shirt.jpg")
    drawn = Image.new("RGBA", (96, 128), (0, 0, 0, 0))
    drawn.paste((255, 255, 255, 255), (20, 30, 76, 80))
    drawn.save(folder / "mask.png")
    return {"person": str(folder / "me.png"), "garment": str(folder / "shirt.jpg"), "mask": str(folder / "mask.png"),
            "repaint": False, "attention_version": "dresscode"}


RUNS = {"tryon-drawn-mask": ("virtual_tryon", _drawn_mask)}


def test_virtual_tryon_with_a_drawn_mask_and_files(runs):
    """A person photo and a mask drawn on it (RGBA: white strokes on a transparent layer), another attention
    version (its file uses the other aliases), repaint off: the result is the raw pipeline output."""
    result, out = runs("tryon-drawn-mask")
    assert result["status"] == "passed", result.get("error")
    folder = out / "virtual_tryon"
    facts = json.loads((folder / "tryon_003.json").read_text())["generation"]
    assert facts["attention"]["first_keys"][0] == "1.weight" and facts["repaint"] is False
    raw, shown = (np.asarray(Image.open(folder / n)) for n in ("compare_000.png", "tryon_003.png"))
    assert (raw == shown).all()  # repaint off: the result is the pipeline's output
    mask = np.asarray(Image.open(folder / "tryon_002.png").convert("L")) > 127
    assert 0.15 < mask.mean() < 0.35  # the drawn rectangle, cropped and resized with the person


BAD_INPUTS = [("virtual_tryon", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"person": "does/not/exist.png"}, "person='does/not/exist.png': no such file"),
    ({"garment": str(NOTEBOOKS.parent / "README.md")}, "could not be read as an image"),
    ({"mask": str(NOTEBOOKS.parent / "benchmarks" / "report_screenshot.png")},
     "is 844×1463 but the drawn demo person (person=None) is 384×512"),
    ({"mask": "box", "mask_box": [0.0, 0.0, 1.0, 1.0]}, "marks every pixel"),
    ({"height": 60}, "height=60 must be a multiple of 8"),
    ({"attention_version": "viton"}, "attention_version='viton' must be one of 'mix', 'vitonhd', 'dresscode'"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
