import numpy as np
import pytest
import torch

import genhelpers
from genhelpers.platform.runtime import GPU, Runtime


def test_load_twin_prints_what_it_did(cpu_runtime, capsys):
    pipe = genhelpers.load("tiny:sdxl-base", cpu_runtime)
    out = capsys.readouterr().out
    assert "loaded tiny:sdxl-base as StableDiffusionXLPipeline from tiny · float32" in out
    assert "memory plan 'cpu'" in out
    info = pipe.genhelpers_info
    assert info["class"] == "StableDiffusionXLPipeline" and info["memory_plan"]["name"] == "cpu"
    assert info["parameters"] == sum(p.numel() for m in pipe.components.values()
                                     if isinstance(m, torch.nn.Module) for p in m.parameters())
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"


def test_refiner_shares_components(cpu_runtime):
    base = genhelpers.load("tiny:sdxl-base", cpu_runtime, quiet=True)
    ref = genhelpers.load("tiny:sdxl-refiner", cpu_runtime, text_encoder_2=base.text_encoder_2, vae=base.vae,
                          quiet=True)
    assert ref.text_encoder_2 is base.text_encoder_2 and ref.vae is base.vae


def test_vae_by_reference_and_auto(cpu_runtime, twins):
    pipe = genhelpers.load("tiny:sdxl-base", cpu_runtime, vae="tiny:sdxl-vae-fp16-fix", quiet=True)
    assert pipe.vae.config.force_upcast is False  # the fp16-fix twin, not the base's own VAE
    assert pipe.genhelpers_info["components"] == {"vae": "tiny:sdxl-vae-fp16-fix"}
    own = genhelpers.load("tiny:sdxl-base", cpu_runtime, vae="auto", quiet=True)  # float32: keep the model's own
    assert own.vae.config.force_upcast is True and own.genhelpers_info["components"] == {}


def test_half_precision_picks_the_fp16_files_and_the_fp16_vae(cpu_runtime):
    pipe = genhelpers.load("tiny:sdxl-base", cpu_runtime, dtype="float16", vae="auto", memory=None, quiet=True)
    info = pipe.genhelpers_info
    assert info["variant"] == "fp16" and pipe.unet.dtype == torch.float16
    assert pipe.vae.config.force_upcast is False and info["components"] == {"vae": "tiny:sdxl-vae-fp16-fix"}


def test_load_from_hub_cache_offline(cpu_runtime, twins):
    from tests.test_weights import fake_hub_snapshot

    fake_hub_snapshot("acme/tiny-sdxl", twins["sdxl-base"])
    pipe = genhelpers.load("acme/tiny-sdxl", cpu_runtime, quiet=True)
    assert pipe.genhelpers_info["source"] == "hf-hub" and type(pipe).__name__ == "StableDiffusionXLPipeline"


def test_generation_is_bit_reproducible(cpu_runtime):
    pipe = genhelpers.load("tiny:sdxl-base", cpu_runtime, quiet=True)
    pipe.set_progress_bar_config(disable=True)

    def run(seed):
        gens, _ = genhelpers.generators(seed, 2)
        return pipe("a fox", num_inference_steps=2, height=64, width=64, num_images_per_prompt=2,
                    generator=gens, output_type="np").images

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    single = pipe("a fox", num_inference_steps=2, height=64, width=64,
                  generator=genhelpers.generators(4)[0], output_type="np").images
    # image i is re-made alone with seed + i: same starting noise; batched kernels round differently
    assert np.allclose(single[0], a[1], atol=1e-4) and not np.allclose(single[0], a[0], atol=1e-2)


def test_unsupported_gpu_is_refused_before_loading():
    p100 = GPU(0, "Tesla P100-PCIE-16GB", 17_071_734_784, (6, 0), supported=False)
    from genhelpers.platform.runtime import gpu_warnings

    rt = Runtime("kaggle", (p100,), "float16", warnings=gpu_warnings((p100,)))
    with pytest.raises(RuntimeError, match="P100.*GPU T4 x2"):
        genhelpers.load("sdxl-base", rt)  # no weights exist here: the GPU check must come first


def test_missing_weights_offline_fail_before_any_loading(cpu_runtime):
    from genhelpers.hub.weights import WeightsNotFound

    with pytest.raises(WeightsNotFound, match="tiny:sdxl-refiner"):
        genhelpers.load("sdxl-refiner", cpu_runtime)


def test_split_plan_gives_the_refiner_its_own_copies(monkeypatch, cpu_runtime):
    """On 2 GPUs the refiner runs on the second: the base's text_encoder_2 and VAE (on the first) are not
    borrowed; the refiner loads its own. Placement is recorded instead of moving to CUDA here."""
    from genhelpers.hub import memory
    from genhelpers.platform.machines import runtime_for

    placed = []
    monkeypatch.setattr(memory, "apply", lambda pipe, plan, ref=None: placed.append((ref, plan.device_for(ref))))
    t4x2 = runtime_for("T4x2")
    job = genhelpers.plan(t4x2, "auto", ["tiny:sdxl-base", "tiny:sdxl-refiner"])
    assert job.name == "split"
    base = genhelpers.load("tiny:sdxl-base", cpu_runtime, memory=job, dtype="float32", quiet=True)
    refiner = genhelpers.load("tiny:sdxl-refiner", cpu_runtime, memory=job, dtype="float32", quiet=True,
                              text_encoder_2=base.text_encoder_2, vae=base.vae)
    assert placed == [("tiny:sdxl-base", "cuda:0"), ("tiny:sdxl-refiner", "cuda:1")]
    assert refiner.text_encoder_2 is not base.text_encoder_2 and refiner.vae is not base.vae
    assert refiner.genhelpers_plan.devices["tiny:sdxl-refiner"] == "cuda:1"


def test_split_plan_in_float16_keeps_the_fp16_fix_vae_on_both_gpus(monkeypatch, cpu_runtime):
    """The default Kaggle run (T4x2, float16): the base keeps the fp16-fix VAE (it used to be dropped as 'a
    component on another GPU'), and the refiner on GPU 1 gets its own text_encoder_2 and the fp16-fix VAE too
    (its repository's VAE overflows in float16), not the base's copies on GPU 0."""
    from genhelpers.hub import memory
    from genhelpers.platform.machines import runtime_for

    monkeypatch.setattr(memory, "apply", lambda pipe, plan, ref=None: None)
    t4x2 = runtime_for("T4x2")
    job = genhelpers.plan(t4x2, "auto", ["tiny:sdxl-base", "tiny:sdxl-refiner"])
    base = genhelpers.load("tiny:sdxl-base", cpu_runtime, memory=job, dtype="float16", quiet=True, vae="auto")
    assert base.genhelpers_info["components"] == {"vae": "tiny:sdxl-vae-fp16-fix"}
    refiner = genhelpers.load("tiny:sdxl-refiner", cpu_runtime, memory=job, dtype="float16", quiet=True,
                              text_encoder_2=base.text_encoder_2, vae=base.vae)
    assert refiner.genhelpers_info["components"] == {"vae": "tiny:sdxl-vae-fp16-fix"}
    assert refiner.vae is not base.vae and refiner.text_encoder_2 is not base.text_encoder_2


def test_device_map_plan_is_passed_to_from_pretrained(monkeypatch, cpu_runtime):
    import diffusers

    from genhelpers.hub import memory
    from genhelpers.platform.runtime import GPU, Runtime

    seen = {}
    real = diffusers.StableDiffusionXLPipeline.from_pretrained.__func__

    def spy(cls, path, **kwargs):
        seen.update(kwargs)
        kwargs.pop("device_map"), kwargs.pop("max_memory")
        return real(cls, path, **kwargs)

    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(memory, "apply", lambda *a, **k: None)
    card = GPU(0, "small", 10 * 1024**3, (8, 0))
    rt = Runtime("local", (card, GPU(1, "small", card.total_memory, (8, 0))), "bfloat16")
    pipe = genhelpers.load("tiny:sdxl-base", rt, dtype="float32", quiet=True)
    assert pipe.genhelpers_plan.name == "split"
    assert seen["device_map"] == "balanced" and seen["max_memory"] == {0: "8GiB", 1: "8GiB"}
