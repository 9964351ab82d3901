"""StyleCrafter's idea on AnimateDiff + IP-Adapter (InstantStyle's per-block scales): the three clips, the stills,
the layer figure read back from the pipeline, the measured change, and bad inputs stopped before loading."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import PROFILES, assert_stopped, from_collection, parameter_names, read_clip

PANELS = ("no_style", "all_blocks", "style_blocks")


@pytest.fixture(scope="module")
def stylecrafter_run(collection):
    return from_collection(collection, "stylecrafter")


def test_three_clips_from_the_same_noise(stylecrafter_run):
    out, result = stylecrafter_run
    assert result["status"] == "passed", result.get("error")
    smoke, folder = PROFILES["stylecrafter"]["smoke"], out / "stylecrafter"
    names = parameter_names(nbformat.read(NOTEBOOKS / "stylecrafter.ipynb", as_version=4))
    for stem in PANELS:
        assert read_clip(folder / f"{stem}.mp4").shape[:3] == (smoke["frames"], smoke["height"], smoke["width"])
        side = json.loads((folder / f"{stem}.json").read_text())
        assert side["clip"]["frames"] == smoke["frames"] and side["seed"] == smoke["seed"]
        assert set(side["parameters"]) == set(names)
        assert side["models"][0]["class"] == "AnimateDiffPipeline"
        assert side["models"][0]["memory_plan"]["name"] == "cpu"  # placed after load_ip_adapter, and recorded
        assert side["generation"]["panel"] == stem.replace("_", " ")
    layers = {s: json.loads((folder / f"{s}.json").read_text())["generation"]["layers_with_the_picture"]
              for s in PANELS}
    assert layers["no_style"] == [] and len(layers["all_blocks"]) == 16
    assert layers["style_blocks"] == [f"up_blocks.1.attentions.{i}" for i in range(3)]


def test_the_stills_and_the_style_picture(stylecrafter_run):
    out, _ = stylecrafter_run
    folder = out / "stylecrafter"
    smoke = PROFILES["stylecrafter"]["smoke"]
    for i in range(3):
        assert Image.open(folder / f"still_{i:03d}.png").size == (smoke["width"], smoke["height"])
    side = json.loads((folder / "still_grid.json").read_text())
    assert side["models"][0]["class"] == "StableDiffusionPipeline" and set(side["generation"]["panels"]) == {
        "no style", "all blocks", "style blocks"}
    assert Image.open(folder / "style_image_000.png").size == (512, 512)
    assert json.loads((folder / "style_image_000.json").read_text())["generation"]["source"].startswith("drawn")


def test_the_figure_shows_what_diffusers_set(stylecrafter_run):
    """The layer figure's data is read back from the pipeline: the SDXL dictionary opened no layer at all."""
    out, _ = stylecrafter_run
    scales = json.loads((out / "stylecrafter" / "layers_000.json").read_text())["generation"]["scales"]
    opened = {name: sum(v > 0 for v in layer.values()) for name, layer in scales.items()}
    assert opened == {"no style": 0, "all blocks": 16, "style blocks": 3, "SDXL's style dict on SD 1.5": 0}


def test_all_blocks_move_the_twin_result_further_than_the_style_blocks(stylecrafter_run):
    """What the notebook measures (on twins: only that more layers with the picture move the output further)."""
    out, _ = stylecrafter_run
    moved = json.loads((out / "stylecrafter" / "side_by_side_000.json").read_text())["generation"][
        "mean_abs_change_from_no_style"]
    for kind in ("clip", "still"):
        assert moved[kind]["no style"] == 0.0
        assert moved[kind]["all blocks"] > moved[kind]["style blocks"] > 1e-4, moved


def _given_picture(folder):
    picture = folder / "style.png"
    Image.new("RGB", (96, 64), (30, 60, 200)).save(picture)
    return {"style_image": str(picture), "still_image": False, "frames": 4,
            "style_blocks": {"down": {"block_2": 1.0}, "mid": 1.0, "up": {"block_1": 1.0}}}


RUNS = {"stylecrafter-given-picture": ("stylecrafter", _given_picture)}


def test_a_given_picture_the_layout_blocks_and_no_still(runs):
    result, out = runs("stylecrafter-given-picture")
    assert result["status"] == "passed", result.get("error")
    folder = out / "stylecrafter"
    assert not list(folder.glob("still_*"))
    assert Image.open(folder / "style_image_000.png").size == (512, 512)  # centre-cropped square, as CLIP sees it
    side = json.loads((folder / "style_blocks.json").read_text())
    assert len(side["generation"]["layers_with_the_picture"]) == 6  # down 2 + mid 1 + up 3
    moved = json.loads((folder / "side_by_side_000.json").read_text())["generation"]["mean_abs_change_from_no_style"]
    assert set(moved) == {"clip"}


README = str(NOTEBOOKS.parent / "README.md")  # a file that is not a picture
BAD_INPUTS = [(  # (notebook, override, error, message, the cell that stops)
    "stylecrafter", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
        ({"style_image": "does/not/exist.png"}, "style_image='does/not/exist.png': no such file"),
        ({"style_image": README}, "could not be read as an image"),
        ({"style_blocks": {"up": {"block_0": [0.0, 1.0, 0.0]}}}, "InstantStyle's SDXL style block"),
        ({"style_blocks": {"up": {"b1": 1.0}}}, "'b1' is not a block name: write 'block_1'"),
        ({"style_blocks": {"middle": 1.0}}, "unknown key 'middle'"),
        ({"style_blocks": {"up": {"block_1": 3.0}}}, "every scale must be a number from 0 to 2"),
        ({"ip_adapter_scale": -1.0}, "ip_adapter_scale=-1.0 must be a number from 0 to 2"),
        ({"ip_adapter": "tiny:sd15"}, "not an IP-Adapter"),
        ({"frames": 40}, "frames=40 is more than the motion module knows"),
    ]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
