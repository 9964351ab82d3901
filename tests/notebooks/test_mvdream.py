"""MVDream and ImageDream through one notebook."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS, REFERENCE
from .common import (
    assert_stopped,
    from_collection,
    parameter_names,
    placeholders,
)


@pytest.fixture(scope="module")
def mvdream_run(collection):
    return from_collection(collection, "mvdream")


def test_mvdream_four_views_grid_turntable_and_cameras(mvdream_run):
    out, result = mvdream_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "mvdream"
    views = sorted(folder.glob("view_00*.png"))
    assert len(views) == 4 and all(Image.open(v).size == (256, 256) for v in views)
    assert Image.open(folder / "view_grid.png").size == (512, 512)  # 2×2
    side = json.loads((folder / "view_002.json").read_text())
    camera = side["generation"]["cameras"][2]
    assert camera["azimuth_deg"] == 180 and camera["elevation_deg"] == 0  # the diffusers port's setting
    published = json.loads((REFERENCE / "mvdream" / "camera_reference.json").read_text())
    assert camera["camera_to_world"] == pytest.approx(published["imagedream_extra_view_example"]["matrix_5x16"][2],
                                                      abs=1e-6)
    assert side["models"][0]["class"] == "MVDreamPipeline"
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "mvdream.ipynb", as_version=4)))
    gif = Image.open(folder / "turntable.gif")
    assert gif.n_frames == 4 and gif.size == (256, 256)



def test_mvdream_views_with_and_without_joint_attention(mvdream_run):
    out, _ = mvdream_run
    side = json.loads((out / "mvdream" / "joint_on_off_000.json").read_text())["generation"]
    assert side["rows"] == ["joint multi-view attention", "each view alone"]
    assert Image.open(out / "mvdream" / "joint_on_off_000.png").size == (4 * 256, 2 * 256)


RUNS = {"imagedream": ("mvdream", {"model": "tiny:imagedream"})}


def test_imagedream_through_the_same_notebook(runs):
    result, out = runs("imagedream")
    assert result["status"] == "passed", result.get("error")
    assert len(list((out / "mvdream").glob("view_00*.png"))) == 4
    side = json.loads((out / "mvdream" / "view_000.json").read_text())
    assert side["models"][0]["ref"] == "tiny:imagedream" and side["parameters"]["image"] is None


BAD = [
    ({"height": 250}, "ParameterError", "height=250 must be a multiple of 8", "genhelpers.check("),
    ({"image": "picture"}, "ParameterError", "needs an ImageDream model", "genhelpers.check("),
    ({"elevation": 120}, "ParameterError", "elevation=120 must be an angle", "genhelpers.check("),
    ({"views": 0}, "ParameterError", "views=0 must be a whole number", "genhelpers.check("),
    ({"model": "broken"}, "ValueError", "missing component(s) unet", "genhelpers.load("),
]


RUNS.update({f"mvdream-bad-{i}": ("mvdream", placeholders(row[0], "mvdream", "unet", (300, 300)))
             for i, row in enumerate(BAD)})


@pytest.mark.parametrize("i", range(len(BAD)), ids=[next(iter(row[0])) for row in BAD])
def test_mvdream_bad_input(runs, i):
    result, out = runs(f"mvdream-bad-{i}")
    assert_stopped(result, out, *BAD[i][1:])
