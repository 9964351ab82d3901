import pytest
import torch

from genhelpers.hub import memory
from genhelpers.hub.loader import plan
from genhelpers.platform.runtime import GPU, Runtime, choose_dtype  # noqa: F401


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
    # base + refiner UNets (~10.9 GiB with text_encoder_2 and the VAE shared) do not fit with room to spare:
    # take turns on the GPU (benchmarks/gpu_full_size.json, sdxl-both-t4: 13.2 GiB peak on one GPU)
    ("t4", BOTH, "model-offload"),
    ("2xt4", BOTH, "split"),  # base on the first T4, refiner (with its own copies) on the second
    ("l4", BOTH, "gpu"),
    ("a100", BOTH, "gpu"),
    ("gtx1660", BASE, "sequential-offload"),  # even the UNet alone exceeds 6 GiB
])
def test_auto_plan_by_machine(name, models, expected):
    p = plan(MACHINES[name], "auto", models, 1024, 1024)
    assert p.name == expected
    assert p.device == ("cpu" if name == "cpu" else "cuda:0")
    assert p.estimate or name == "cpu"


def test_auto_plan_grows_with_the_image():
    t4 = MACHINES["t4"]
    assert plan(t4, "auto", BASE, 1024, 1024).name == "gpu"
    assert plan(t4, "auto", BASE, 2048, 2048).name == "model-offload"  # ~10 GiB of activations
    huge = plan(t4, "auto", BASE, 4096, 4096)
    assert huge.name == "sequential-offload" and "reduce the size" in huge.reason


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
    # measured rates (benchmarks/gpu_full_size.json): SVD ~1.1 GiB per frame-megapixel with 8 frames decoded at
    # once, so 25 frames at 1024×576 need the lean plan even on an L4; AnimateDiff ~0.5, so 6 GiB does it lean
    ("l4", ["svd-xt"], (576, 1024), 25, "gpu-lean", 2),
    ("gtx1660", VIDEO, (512, 512), 16, "gpu-lean", 2),
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


def test_split_puts_one_model_per_gpu_with_its_own_copies():
    p = plan(MACHINES["2xt4"], "auto", BOTH, 1024, 1024)
    assert p.devices == {"sdxl-base": "cuda:0", "sdxl-refiner": "cuda:1"}
    assert p.device_for("sdxl-refiner") == "cuda:1" and p.device_for("anything-else") == "cuda:0"
    # GPU 1 holds the refiner standing alone: UNet + its own text_encoder_2 and VAE (3.04 B params in fp16)
    assert p.estimate["cuda:1"] > 3.04e9 * 2 / 1024**3
    assert "cuda:1 (sdxl-refiner)" in p.describe()


def test_one_pipeline_too_big_for_one_gpu_is_spread_with_a_device_map():
    from genhelpers.platform.runtime import GPU, Runtime

    small = GPU(0, "small", 10 * 1024**3, (8, 0))  # the UNet + activations fit one, not everything
    rt = Runtime("local", (small, GPU(1, "small", small.total_memory, (8, 0))), "float16")
    p = plan(rt, "auto", BASE, 1024, 1024)
    assert (p.name, p.device_map, p.devices) == ("split", "balanced", {})


def test_shared_components_count_once_on_one_gpu_twice_when_split():
    from genhelpers.hub.loader import job_need

    both = job_need(MACHINES["t4"], BOTH)
    alone = job_need(MACHINES["t4"], ["sdxl-refiner"])
    shared = (694_659_840 + 83_653_863) * 2
    assert both.weights == job_need(MACHINES["t4"], BASE).weights + alone.weights - shared
    assert both.size("sdxl-refiner") == alone.weights


def test_host_memory_budget():
    from genhelpers.hub.loader import job_need

    need = job_need(MACHINES["t4"], BOTH)
    offload = memory.choose(MACHINES["t4"], "model-offload", need)
    assert memory.host_fits(offload, MACHINES["t4"], need)  # ~10.7 GiB of weights in 29 GiB
    tight = Runtime("kaggle", MACHINES["t4"].gpus, "float16", host_memory=12 * 1024**3)
    assert not memory.host_fits(offload, tight, need)
    assert memory.host_fits(memory.choose(tight, "gpu", need), tight, need)  # only the largest part passes host


def test_machine_profiles():
    from genhelpers.platform.machines import MACHINES as PROFILES
    from genhelpers.platform.machines import runtime_for

    t4x2 = runtime_for("T4x2")
    assert len(t4x2.gpus) == 2 and t4x2.dtype == "float16" and t4x2.host_memory == 29 * 1024**3
    assert runtime_for("A100-80").dtype == "bfloat16" and runtime_for("CPU").gpus == ()
    p100 = runtime_for("P100")
    assert not p100.gpus[0].supported and "P100" in p100.warnings[0]
    assert set(PROFILES) >= {"CPU", "T4", "T4x2", "L4", "P100", "A100-40", "A100-80", "H100"}
    with pytest.raises(ValueError, match="--gpu 'V100' is not a machine.*T4x2"):
        runtime_for("V100")


def test_fallback_order_and_history():
    t4 = MACHINES["t4"]
    p = memory.choose(t4, "gpu")
    seen = [p.name]
    while True:
        try:
            p = memory.fallback(p, t4, error="CUDA out of memory")
        except RuntimeError as e:
            assert "no leaner plan" in str(e)
            break
        seen.append(p.name)
    assert seen == ["gpu", "gpu-lean", "model-offload", "sequential-offload"]  # split needs two GPUs
    assert [f["plan"] for f in p.fallbacks] == seen[:-1]
    assert memory.fallback(memory.choose(MACHINES["2xt4"], "gpu"), MACHINES["2xt4"]).name == "split"


class OOMOnce(RecordingPipe):
    def __init__(self, failures=1, error=None):
        super().__init__()
        self.failures, self.error, self.calls_made = failures, error, 0
        self.genhelpers_info = {}

    def remove_all_hooks(self):
        self.calls.append("remove_all_hooks")

    def generate(self):
        self.calls_made += 1
        if self.calls_made <= self.failures:
            raise self.error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "images"


def test_out_of_memory_moves_to_the_next_plan_and_retries(capsys):
    from genhelpers.hub.loader import retry_on_oom

    t4 = MACHINES["t4"]
    pipe = OOMOnce(failures=2)
    pipe.genhelpers_plan = memory.choose(t4, "gpu")
    assert retry_on_oom(pipe, t4)(pipe.generate)() == "images"
    assert pipe.calls_made == 3 and pipe.genhelpers_plan.name == "model-offload"
    assert ("enable_model_cpu_offload", (), {"gpu_id": 0}) in pipe.calls
    assert [f["plan"] for f in pipe.genhelpers_info["memory_plan"]["fallbacks"]] == ["gpu", "gpu-lean"]
    assert "OutOfMemoryError" in pipe.genhelpers_info["memory_plan"]["fallbacks"][0]["error"]
    assert "retrying with memory plan 'gpu-lean'" in capsys.readouterr().out


def test_other_errors_are_not_retried():
    from genhelpers.hub.loader import retry_on_oom

    pipe = OOMOnce(error=ValueError("height must be divisible by 8"))
    pipe.genhelpers_plan = memory.choose(MACHINES["t4"], "gpu")
    with pytest.raises(ValueError, match="divisible"):
        retry_on_oom(pipe, MACHINES["t4"])(pipe.generate)()
    assert pipe.calls_made == 1


def test_the_decorated_call_keeps_its_arguments_and_no_pipeline_means_no_net():
    from genhelpers.hub.loader import retry_on_oom

    pipe = OOMOnce(failures=1)
    pipe.genhelpers_plan = memory.choose(MACHINES["t4"], "gpu")

    @retry_on_oom(pipe, MACHINES["t4"])
    def generate(prompt, steps=1):
        """the diffusers call"""
        return f"{pipe.generate()} of {prompt!r} in {steps} steps"

    assert generate("a fox", steps=3) == "images of 'a fox' in 3 steps" and pipe.calls_made == 2
    assert generate.__doc__ == "the diffusers call"

    def plain():
        return "untouched"

    assert retry_on_oom(None, MACHINES["t4"])(plain) is plain  # e.g. SDXL without a refiner


def test_no_leaner_plan_left():
    from genhelpers.hub.loader import retry_on_oom

    pipe = OOMOnce(failures=5)
    pipe.genhelpers_plan = memory.choose(MACHINES["t4"], "sequential-offload")
    with pytest.raises(RuntimeError, match="no leaner plan is left: reduce the size"):
        retry_on_oom(pipe, MACHINES["t4"])(pipe.generate)()


def test_eager_attention_needs_more():
    t4 = MACHINES["t4"]
    sdpa = plan(t4, "auto", BASE, 1024, 1024)
    eager = plan(t4, "auto", BASE, 1024, 1024, attention="eager")
    assert sdpa.name == "gpu" and eager.estimate["cuda:0"] > sdpa.estimate["cuda:0"]


def test_the_motion_adapter_stays_off_the_gpu_once_copied_into_the_unet(monkeypatch):
    from genhelpers import load

    pipe = load("tiny:sd15", MACHINES["cpu"], memory=None, pipeline="AnimateDiffPipeline", quiet=True,
                motion_adapter=load("tiny:animatediff-motion-adapter-v1-5-2", MACHINES["cpu"], memory=None, quiet=True))
    moved = []
    monkeypatch.setattr(type(pipe), "to", lambda self, *a, **k: moved.append(("pipe", a)))
    monkeypatch.setattr(type(pipe.motion_adapter), "to", lambda self, *a, **k: moved.append(("adapter", a)))
    memory.apply(pipe, memory.named("gpu", MACHINES["t4"], frames=16))
    assert moved == [("pipe", ("cuda:0",)), ("adapter", ("cpu",))]
    assert type(pipe.unet).__name__ == "UNetMotionModel"
