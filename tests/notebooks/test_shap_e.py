"""Shap-E: turntables and meshes from text and from an image."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    PROFILES,
    assert_stopped,
    from_collection,
    parameter_names,
)


@pytest.fixture(scope="module")
def shap_e_run(collection):
    return from_collection(collection, "shap_e")


@pytest.mark.parametrize("section", ["text", "image"])
def test_shap_e_smoke_turntable_and_mesh(shap_e_run, section):
    import imageio.v3 as iio
    import trimesh

    out, result = shap_e_run
    assert result["status"] == "passed", result.get("error")
    files = out / "shap_e"
    smoke = PROFILES["shap_e"]["smoke"]
    stem = f"{section}_000"
    gif = Image.open(files / f"{stem}_turntable.gif")
    side = json.loads((files / f"{stem}_turntable.json").read_text())
    # diffusers' 20 turntable cameras close the circle (the last stands where the first does): 19 distinct views
    assert side["clip"]["frames"] == 19 and (side["clip"]["width"], side["clip"]["height"]) == (32, 32)
    assert gif.n_frames == side["gif_frames"] == 19 and gif.size == (smoke["frame_size"],) * 2
    assert iio.imread(files / f"{stem}_turntable.mp4", index=None).shape[:3] == (19, 32, 32)
    mesh_side = json.loads((files / f"{stem}_mesh.json").read_text())
    facts = mesh_side["mesh"]
    assert facts["vertices"] > 0 and facts["watertight"]
    for fmt in ("ply", "obj", "glb"):
        back = trimesh.load(files / f"{stem}_mesh.{fmt}", force="mesh", process=False)
        assert (len(back.vertices), len(back.faces)) == (facts["vertices"], facts["faces"]), fmt
        assert back.visual.kind == "vertex", fmt  # vertex colours kept
    assert Image.open(files / f"{stem}_mesh_preview.png").size == (512, 512)
    names = parameter_names(nbformat.read(NOTEBOOKS / "shap_e.ipynb", as_version=4))
    assert set(mesh_side["parameters"]) == set(names) and mesh_side["seed"] == smoke["seed"]
    assert mesh_side["models"][0]["class"] == ("ShapEPipeline" if section == "text" else "ShapEImg2ImgPipeline")
    assert {"diffusion_s", "decode_s"} <= set(mesh_side["timings"])


def test_one_latent_is_shown_both_ways_and_meshed_at_each_grid(shap_e_run):
    out, _ = shap_e_run
    smoke = PROFILES["shap_e"]["smoke"]
    side = json.loads((out / "shap_e" / "text_two_decodes_000.json").read_text())["generation"]
    assert (side["left"], side["right"]) == ("NeRF view 0", "mesh preview")
    rows = side["mesh_grids"]
    assert [r["grid"] for r in rows] == smoke["mesh_grids"] and all(r["seconds"] > 0 for r in rows)
    assert Image.open(out / "shap_e" / "text_two_decodes_000.png").size == (512, 256)


def test_the_turntable_cameras_close_their_circle():
    """Why the notebook keeps 19 of the 20 views: diffusers' pan cameras put the last where the first is."""
    import numpy as np
    from diffusers.pipelines.shap_e.camera import create_pan_cameras

    origins = create_pan_cameras(8).origin
    assert len(origins) == 20 and np.allclose(origins[0], origins[-1], atol=1e-5)
    assert len({tuple(np.round(o, 4)) for o in origins[:-1].tolist()}) == 19


RUNS = {"shap-e-text": ("shap_e", {"mode": "text"})}


def test_shap_e_text_only(runs):
    result, _ = runs("shap-e-text")
    assert result["status"] == "passed", result.get("error")
    assert result["outputs"] and all(name.startswith("text_") for name in result["outputs"])



BAD_INPUTS = [("shap_e", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"prompt": ""}, "prompt='' is empty"),
    ({"image": str(NOTEBOOKS.parent / "README.md")}, "could not be read as an image"),
    ({"frame_size": 100}, "frame_size=100 is not supported"),
    ({"batch": 0}, "batch=0 must be a whole number ≥ 1"),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
