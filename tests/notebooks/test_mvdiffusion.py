"""MVDiffusion: eight views, their panorama and its viewer, the CAA on/off comparison, MultiDiffusion's strips,
and the inputs refused before anything loads."""
import base64
import io
import json
import re

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import PROFILES, assert_stopped, from_collection, parameter_names


@pytest.fixture(scope="module")
def mvdiffusion_run(collection):
    return from_collection(collection, "mvdiffusion")


def test_eight_views_a_panorama_and_its_cameras(mvdiffusion_run):
    out, result = mvdiffusion_run
    assert result["status"] == "passed", result.get("error")
    folder = out / "mvdiffusion"
    size = PROFILES["mvdiffusion"]["smoke"]["size"]
    views = sorted(folder.glob("view_00*.png"))
    assert len(views) == 8 and all(Image.open(v).size == (size, size) for v in views)
    side = json.loads((folder / "view_003.json").read_text())
    cameras = side["generation"]["cameras"]
    assert [c["yaw_deg"] for c in cameras] == [45.0 * i for i in range(8)] and cameras[3]["fov_deg"] == 90
    assert side["models"][0]["class"] == "MVDiffusionPipeline"
    assert side["models"][0]["components"] == {"caa": "tiny:mvdiffusion"}
    assert len(side["generation"]["pano_ckpt_sha256"]) == 64  # the pickle's digest, recorded
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "mvdiffusion.ipynb", 4)))
    pano = json.loads((folder / "panorama_000.json").read_text())
    assert Image.open(folder / "panorama_000.png").size == (4 * size, pano["height"])
    top, bottom = pano["generation"]["latitudes_deg"]
    assert top == -bottom and 40 < top < 42.8  # the band every longitude covers
    seams = pano["generation"]["seams"]
    assert len(seams["overlap_disagreement"]) == 8 and seams["wrap_seam_ratio"] > 0


def test_the_comparison_with_and_without_the_blocks_is_measured(mvdiffusion_run):
    out, _ = mvdiffusion_run
    folder = out / "mvdiffusion"
    comparison = json.loads((folder / "seams_000.json").read_text())["generation"]
    assert set(comparison) == {"caa_on", "caa_off"}
    assert comparison["caa_on"] != comparison["caa_off"]  # the blocks changed the views
    off = json.loads((folder / "panorama_caa_off_000.json").read_text())["generation"]
    assert off["caa"] is None and off["seams"] == comparison["caa_off"]
    assert {"generate_s", "generate_caa_off_s"} <= set(
        json.loads((folder / "panorama_caa_off_000.json").read_text())["timings"])


def test_multidiffusion_strips_wrap_only_with_circular_padding(mvdiffusion_run):
    out, _ = mvdiffusion_run
    folder = out / "mvdiffusion"
    smoke = PROFILES["mvdiffusion"]["smoke"]
    facts = json.loads((folder / "multidiffusion_000.json").read_text())["generation"]
    assert facts["windows"] == {"true": smoke["strip_width"] // 64, "false": 2}  # 9 windows wrap, 2 do not
    assert set(facts["wrap_seam_ratio"]) == {"circular_padding", "no_padding"}
    assert "multidiffusion_circular_s" in json.loads((folder / "multidiffusion_000.json").read_text())["timings"]
    for name in ("multidiffusion_000.png", "multidiffusion_001.png"):
        assert Image.open(folder / name).size == (smoke["strip_width"], smoke["size"])


@pytest.mark.parametrize("name, source", [("panorama_viewer.html", "panorama_000.png"),
                                          ("multidiffusion_viewer.html", "multidiffusion_000.png")])
def test_viewers_are_self_contained_pages(mvdiffusion_run, name, source):
    out, _ = mvdiffusion_run
    folder = out / "mvdiffusion"
    page = (folder / name).read_text()
    images = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(images) == 1 and "http" not in page.lower()
    assert Image.open(io.BytesIO(base64.b64decode(images[0]))).size == Image.open(folder / source).size
    assert json.loads((folder / name).with_suffix(".json").read_text())["notebook"] == "mvdiffusion"


BAD_INPUTS = [("mvdiffusion", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"views": 6}, "trained only on 8 views of 90° at 45° steps"),
    ({"fov_deg": 60}, "trained only on 8 views of 90° at 45° steps"),
    ({"fov_deg": 200}, "fov_deg=200 is out of range"),
    ({"size": 100}, "size=100 must be a positive multiple of 64"),
    ({"view_prompts": ["a kitchen", "a window", "a door"]}, "view_prompts has 3 prompt(s) for views=8"),
    ({"caa_weights": "dropbox", "allow_pickle": False}, "set allow_pickle=True if you trust the source"),
    ({"caa_weights": "/nowhere/pano.ckpt"}, "caa_weights='/nowhere/pano.ckpt': no such file"),
    ({"strip_width": 512}, "strip_width=512 must be a multiple of 64 above 512"),
    ({"prompt": ""}, "prompt='' is empty"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
