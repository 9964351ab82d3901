"""Zero123++: six views with their cameras, the v1.1 depth ControlNet, bad inputs."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    assert_stopped,
    from_collection,
    parameter_names,
    placeholders,
)


@pytest.fixture(scope="module")
def zero123_run(collection):
    return from_collection(collection, "zero123plus")


def test_zero123plus_six_views_with_cameras(zero123_run):
    out, result = zero123_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "zero123plus"
    assert Image.open(folder / "multiview_000.png").size == (640, 960)
    views = sorted(folder.glob("view_00*.png"))
    assert len(views) == 6 and all(Image.open(v).size == (320, 320) for v in views)
    side = json.loads((folder / "view_003.json").read_text())
    assert side["generation"]["cameras"][3] == {"view": 3, "azimuth_deg": 210, "elevation_deg": -10, "fov_deg": 30}
    assert side["index"] == 3 and side["models"][0]["class"] == "Zero123PlusPipeline"
    gif = Image.open(folder / "turntable.gif")
    assert json.loads((folder / "turntable.json").read_text())["clip"]["frames"] == 6 and gif.size == (320, 320)
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "zero123plus.ipynb", as_version=4)))


def test_zero123plus_views_with_and_without_reference_attention(zero123_run):
    out, _ = zero123_run
    side = json.loads((out / "zero123plus" / "reference_on_off_000.json").read_text())["generation"]
    assert (side["left"], side["right"]) == ("reference attention on", "reference attention off")
    assert Image.open(out / "zero123plus" / "reference_on_off_000.png").size == (2 * 640, 960)


RUNS = {"zero123plus-v11-depth": ("zero123plus", {"model": "tiny:zero123plus-v1.1", "controlnet": True,
                                                   "allow_pickle": True})}  # v1.1 is published as pickles


def test_zero123plus_v11_with_depth_controlnet(runs):
    result, out = runs("zero123plus-v11-depth")
    assert result["status"] == "passed", result.get("error")
    side = json.loads((out / "zero123plus" / "view_000.json").read_text())
    assert side["generation"]["cameras"][0]["elevation_deg"] == 30  # v1.1 cameras
    assert [m["class"] for m in side["models"]] == ["Zero123PlusPipeline"]
    assert side["models"][0]["components"] == {"controlnet": "tiny:controlnet-zp11-depth"}



BAD = [
    ({"image": "picture"}, "ParameterError", "needs at least 320×320", "load_condition("),
    ({"image": "does/not/exist.png"}, "ParameterError", "no such file", "genhelpers.check("),
    ({"model": "broken"}, "ValueError", "missing component(s) vision_encoder", "genhelpers.load("),
]


RUNS.update({f"zero123plus-bad-{i}": ("zero123plus",
                                       placeholders(row[0], "zero123plus-v1.2", "vision_encoder", (64, 64)))
             for i, row in enumerate(BAD)})


@pytest.mark.parametrize("i", range(len(BAD)), ids=[str(next(iter(row[0].values()))) for row in BAD])
def test_zero123plus_bad_input(runs, i):
    result, out = runs(f"zero123plus-bad-{i}")
    assert_stopped(result, out, *BAD[i][1:])
