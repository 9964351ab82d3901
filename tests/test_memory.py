import pytest

from genhelpers import memory
from genhelpers.loader import plan
from genhelpers.runtime import GPU, Runtime, choose_dtype


def machine(*gpus):
    return Runtime("kaggle" if gpus else "local", tuple(gpus), choose_dtype(tuple(gpus)))


T4 = GPU(0, "Tesla T4", 15_828_320_256, (7, 5))
MACHINES = {
    "cpu": machine(),
    "t4": machine(T4),
    "2xt4": machine(T4, GPU(1, "Tesla T4", T4.total_memory, (7, 5))),
    "l4": machine(GPU(0, "NVIDIA L4", 23_034_462_208, (8, 9))),
    "a100": machine(GPU(0, "NVIDIA A100-SXM4-40GB", 42_505_273_344, (8, 0))),
    "gtx1660": machine(GPU(0, "NVIDIA GeForce GTX 1660", 6_441_926_656, (7, 5))),
}
BASE, BOTH = ["sdxl-base"], ["sdxl-base", "sdxl-refiner"]


@pytest.mark.parametrize("name, models, expected", [
    ("cpu", BOTH, "cpu"),
    ("t4", BASE, "gpu"),  # ~6.5 GiB of fp16 weights + activations fit 14.7 GiB
    ("t4", BOTH, "model-offload"),  # base + refiner UNets do not: take turns on the GPU
    ("2xt4", BOTH, "model-offload"),  # one pipeline per job uses one GPU until placement lands
    ("l4", BOTH, "gpu"),
    ("a100", BOTH, "gpu"),
    ("gtx1660", BASE, "sequential-offload"),  # even the UNet alone exceeds 6 GiB
])
def test_auto_plan_by_machine(name, models, expected):
    p = plan(MACHINES[name], "auto", models, 1024, 1024)
    assert p.name == expected
    assert p.device == ("cpu" if name == "cpu" else "cuda:0")


def test_auto_plan_grows_with_the_image():
    t4 = MACHINES["t4"]
    assert plan(t4, "auto", BASE, 1024, 1024).name == "gpu"
    big = plan(t4, "auto", BASE, 2048, 2048)  # ~10 GiB of activations + the 4.8 GiB UNet
    assert big.name == "sequential-offload" and "activations" in big.reason


def test_unknown_model_size_keeps_the_whole_pipeline_on_the_gpu_and_says_why():
    p = plan(MACHINES["t4"], "auto", ["someone/sdxl-finetune"])
    assert p.name == "gpu" and "unknown" in p.reason


def test_named_plans_and_their_switches():
    t4 = MACHINES["t4"]
    seq = memory.choose(t4, "sequential-offload")
    assert (seq.offload, seq.vae_slicing, seq.vae_tiling, seq.attention_slicing) == ("sequential", True, True, True)
    assert memory.choose(t4, "gpu", batch=4).vae_slicing and not memory.choose(t4, "gpu").vae_slicing
    assert "model CPU offload to cuda:0" in memory.choose(t4, "model-offload").describe()


def test_bad_plan_requests():
    with pytest.raises(ValueError, match="memory='fast' is not a plan.*sequential-offload"):
        memory.choose(MACHINES["t4"], "fast")
    with pytest.raises(ValueError, match="memory='gpu' needs a GPU.*'auto' or 'cpu'"):
        memory.choose(MACHINES["cpu"], "gpu")


class RecordingPipe:
    """Stands in for a pipeline on a machine without CUDA: records the diffusers calls a plan makes."""

    def __init__(self):
        self.calls = []
        outer = self

        class Vae:
            def enable_slicing(self):
                outer.calls.append("vae.enable_slicing")

            def enable_tiling(self):
                outer.calls.append("vae.enable_tiling")

        self.vae = Vae()

    def __getattr__(self, name):
        return lambda *a, **k: self.calls.append((name, a, k))


@pytest.mark.parametrize("name, first", [
    ("gpu", ("to", ("cuda:0",), {})),
    ("model-offload", ("enable_model_cpu_offload", (), {"gpu_id": 0})),
    ("sequential-offload", ("enable_sequential_cpu_offload", (), {"gpu_id": 0})),
])
def test_apply_uses_the_diffusers_api(name, first):
    pipe = RecordingPipe()
    p = memory.choose(MACHINES["t4"], name)
    memory.apply(pipe, p)
    assert pipe.calls[0] == first
    assert ("vae.enable_tiling" in pipe.calls) == p.vae_tiling
    assert ("vae.enable_slicing" in pipe.calls) == p.vae_slicing
    assert any(c[0] == "enable_attention_slicing" for c in pipe.calls if isinstance(c, tuple)) == p.attention_slicing


def test_apply_cpu_plan_on_a_real_pipeline(twins):
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(twins["sdxl-base"])
    memory.apply(pipe, memory.choose(MACHINES["cpu"], "auto"))
    assert pipe.device.type == "cpu" and not pipe.vae.use_slicing and not pipe.vae.use_tiling


VIDEO = ["sd15", "animatediff-motion-adapter-v1-5-2"]


@pytest.mark.parametrize("name, models, size, frames, expected, chunk", [
    ("t4", VIDEO, (512, 512), 16, "gpu", 8),
    ("t4", ["svd-xt"], (576, 1024), 25, "gpu-lean", 2),
    ("l4", ["svd-xt"], (576, 1024), 25, "gpu", 8),
    ("gtx1660", VIDEO, (512, 512), 16, "model-offload", 2),
    ("gtx1660", ["svd-xt"], (576, 1024), 25, "sequential-offload", 1),
    ("cpu", ["svd-xt"], (576, 1024), 25, "cpu", None),
])
def test_video_plans(name, models, size, frames, expected, chunk):
    p = plan(MACHINES[name], "auto", models, *size, frames=frames)
    assert (p.name, p.decode_chunk_size) == (expected, chunk)
    assert p.forward_chunking == (expected in ("gpu-lean", "model-offload", "sequential-offload"))
    if expected != "cpu":
        assert p.vae_slicing


def test_more_frames_need_a_leaner_plan():
    t4 = MACHINES["t4"]
    names = [plan(t4, "auto", ["svd-xt"], 576, 1024, frames=f).name for f in (4, 25, 50, 200)]
    assert names == ["gpu", "gpu-lean", "model-offload", "sequential-offload"]


def test_lean_plans_are_for_clips_not_images():
    # an image request that does not fit goes straight to offloading
    assert plan(MACHINES["t4"], "auto", BOTH, 1024, 1024).name == "model-offload"


def test_apply_forward_chunking():
    pipe = RecordingPipe()
    pipe.unet = RecordingPipe()
    memory.apply(pipe, memory.choose(MACHINES["t4"], "gpu-lean", frames=25))
    assert ("enable_forward_chunking", (), {}) in pipe.unet.calls
