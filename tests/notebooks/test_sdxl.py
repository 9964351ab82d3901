"""SDXL: base + refiner, reproducible across kernels, re-checked by nbval, bad inputs."""
import json

import nbformat
import pytest
from PIL import Image

from ..conftest import NOTEBOOKS
from .common import (
    BATCH_THREADS,
    PROFILES,
    assert_reproduces,
    assert_stopped,
    assert_summary_recorded,
    from_collection,
    parameter_names,
)


def test_kaggle_t4_profile_is_the_published_setup():
    t4 = PROFILES["sdxl"]["kaggle-t4"]
    assert t4["model"] == "stabilityai/stable-diffusion-xl-base-1.0"
    assert t4["refiner"] == "stabilityai/stable-diffusion-xl-refiner-1.0"
    assert (t4["height"], t4["width"]) == (1024, 1024) and t4["steps"] >= 30
    defaults = parameter_names(nbformat.read(NOTEBOOKS / "sdxl.ipynb", as_version=4))
    assert defaults["model"] == t4["model"] and defaults["height"] == 1024  # "Run all" on Kaggle is the real thing

@pytest.fixture(scope="module")
def smoke_run(collection):
    return from_collection(collection, "sdxl")


# the same profile again in a fresh kernel (its images must be the same bytes), and the base alone
RUNS = {"sdxl-again": ("sdxl", {}), "sdxl-without-refiner": ("sdxl", {"refiner": None, "num_images": 1})}


def test_sdxl_smoke_with_refiner(smoke_run):
    out, result = smoke_run
    assert result["status"] == "passed", result.get("error")
    smoke = PROFILES["sdxl"]["smoke"]
    n = smoke["num_images"]
    pngs = sorted((out / "sdxl").glob("sdxl_0*.png"))
    assert len(pngs) == n and all(Image.open(p).size == (smoke["width"], smoke["height"]) for p in pngs)
    assert Image.open(out / "sdxl" / "sdxl_grid.png").size == (n * smoke["width"], smoke["height"])
    side = json.loads((out / "sdxl" / "sdxl_001.json").read_text())
    assert side["seed"] == smoke["seed"] + 1 and side["parameters"]["refiner"] == "tiny:sdxl-refiner"
    assert {k: side["parameters"][k] for k in smoke} == smoke
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "sdxl.ipynb", as_version=4)))
    assert [m["class"] for m in side["models"]] == ["StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"]
    assert side["models"][0]["memory_plan"]["name"] == "cpu"
    assert side["runtime"]["threads"] == min(smoke["cpu_threads"], BATCH_THREADS)  # the runner shares the cores out
    assert side["timings"]["generate_s"] > 0
    assert sorted(result["outputs"]) == sorted(p.name for p in (out / "sdxl").iterdir())


def test_the_base_alone_is_compared_with_each_hand_over_point(smoke_run):
    """Section 5: the base alone next to base + refiner at each refiner_sweep value, one image each, with the
    step split printed and recorded."""
    out, _ = smoke_run
    smoke = PROFILES["sdxl"]["smoke"]
    side = json.loads((out / "sdxl" / "refiner_sweep_grid.json").read_text())["generation"]
    assert side["labels"][0] == "base only" and len(side["labels"]) == 1 + len(smoke["refiner_sweep"])
    assert all(a + b == smoke["steps"] for a, b in side["splits"].values())
    assert Image.open(out / "sdxl" / "refiner_sweep_grid.png").size == (len(side["labels"]) * smoke["width"],
                                                                       smoke["height"])


def test_the_hand_over_is_a_cut_on_the_noise_scale_32_plus_8_at_40_steps(twins, cpu_runtime):
    """The lesson's numbers, counted in diffusers itself: with SDXL's scheduler (the twin's is the published
    EulerDiscrete, leading spacing), 40 steps and high_noise_frac 0.8, the base runs 32 steps and the refiner 8."""
    import genhelpers

    base = genhelpers.load("tiny:sdxl-base", cpu_runtime, memory=None, quiet=True)
    refiner = genhelpers.load("tiny:sdxl-refiner", cpu_runtime, memory=None, quiet=True,
                              text_encoder_2=base.text_encoder_2, vae=base.vae)
    calls = {"base": 0, "refiner": 0}
    base.unet.register_forward_pre_hook(lambda *a: calls.__setitem__("base", calls["base"] + 1))
    refiner.unet.register_forward_pre_hook(lambda *a: calls.__setitem__("refiner", calls["refiner"] + 1))
    args = dict(prompt="a fox", num_inference_steps=40, guidance_scale=1.0)  # guidance off: one UNet call a step
    latents = base(**args, height=64, width=64, denoising_end=0.8, output_type="latent").images
    refiner(**args, image=latents, denoising_start=0.8, output_type="latent")
    assert calls == {"base": 32, "refiner": 8}


def test_sdxl_smoke_without_refiner(runs):
    result, out = runs("sdxl-without-refiner")
    assert result["status"] == "passed", result.get("error")
    assert result["outputs"] == ["sdxl_000.json", "sdxl_000.png"]  # one image: no grid
    side = json.loads((out / "sdxl" / "sdxl_000.json").read_text())
    assert side["parameters"]["refiner"] is None and len(side["models"]) == 1


def test_same_seed_same_image_across_kernels(smoke_run, runs):
    out, _ = smoke_run
    again, there = runs("sdxl-again")
    assert again["status"] == "passed"
    for name in ("sdxl_000.png", "sdxl_001.png"):
        assert Image.open(out / "sdxl" / name).tobytes() == Image.open(there / "sdxl" / name).tobytes()

def test_nbval_reruns_and_checks_the_marked_cells(nbval_runs):
    assert_reproduces(nbval_runs["sdxl"])


def test_a_missing_or_failed_summary_is_caught(smoke_run, tmp_path):
    out, _ = smoke_run
    assert_summary_recorded(out / "sdxl.ipynb")
    nb = nbformat.read(out / "sdxl.ipynb", as_version=4)
    next(c for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT")).outputs = []
    nbformat.write(nb, tmp_path / "silent.ipynb")
    with pytest.raises(AssertionError):
        assert_summary_recorded(tmp_path / "silent.ipynb")


def test_nbval_catches_a_changed_result(nbval_runs):
    """The executed copy with its checked summary changed from 64x64 to 65x64 (conftest.nbval_runs): nbval fails."""
    done = nbval_runs["sdxl-tampered"]
    assert done.returncode != 0 and "65x64" in done.stdout


BAD_INPUTS = [("sdxl", *row) for row in [
    ({"height": 500}, "ParameterError", "height=500 must be a multiple of 8", "genhelpers.check("),
    ({"high_noise_frac": 1.5}, "ParameterError", "high_noise_frac=1.5 must lie strictly between 0 and 1",
     "genhelpers.check("),
    ({"model": "nobody/missing-sdxl"}, "WeightsNotFound", "Could not find weights for 'nobody/missing-sdxl'",
     "genhelpers.load("),
]]

@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)


def test_unwritable_output_dir_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    params = {**PROFILES["sdxl"]["smoke"]}
    # the runner always sets output_dir, so drive the notebook through papermill directly for this case
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="output_dir=.*is not writable"):
        pm.execute_notebook(str(NOTEBOOKS / "sdxl.ipynb"), str(tmp_path / "x.ipynb"), kernel_name="python3",
                            parameters={**params, "output_dir": str(blocker / "out")}, progress_bar=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "x.ipynb"]
