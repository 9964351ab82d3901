import pytest
import torch

from genhelpers.platform.runtime import (
    GPU,
    Runtime,
    _arch_supported,
    choose_dtype,
    detect,
    detect_platform,
    gpu_warnings,
)

GIB = 1024**3
T4 = GPU(0, "Tesla T4", 15_828_320_256, (7, 5))
A100 = GPU(0, "NVIDIA A100-SXM4-40GB", 42_505_273_344, (8, 0))
P100 = GPU(0, "Tesla P100-PCIE-16GB", 17_071_734_784, (6, 0), supported=False)


@pytest.mark.parametrize("env, modules, expected", [
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, {}, "kaggle"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "COLAB_RELEASE_TAG": "x"}, {}, "kaggle"),
    ({"COLAB_RELEASE_TAG": "release-colab_2026"}, {}, "colab"),
    ({}, {"google.colab": object()}, "colab"),
    ({}, {}, "local"),
])
def test_platform_detection(env, modules, expected):
    assert detect_platform(env, modules) == expected


@pytest.mark.parametrize("gpus, expected", [
    ((), "float32"),
    ((T4,), "float16"),  # torch says bf16 is "supported" on sm_75, but it is emulated: fp16 is right
    ((T4, GPU(1, "Tesla T4", T4.total_memory, (7, 5))), "float16"),
    ((A100,), "bfloat16"),
    ((GPU(0, "NVIDIA L4", 23_034_462_208, (8, 9)),), "bfloat16"),
    ((T4, A100), "float16"),  # the weakest card decides
])
def test_dtype_choice(gpus, expected):
    assert choose_dtype(gpus) == expected


def test_dtype_request_is_honoured_and_checked():
    assert choose_dtype((T4,), "float32") == "float32"
    with pytest.raises(ValueError, match="dtype='half'.*'float16'"):
        choose_dtype((T4,), "half")


def test_arch_support_flags_only_cards_older_than_the_build():
    build = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    assert not _arch_supported((6, 0), build)  # P100 on a build without sm_60
    assert _arch_supported((7, 5), build)
    assert _arch_supported((12, 0), build)  # a newer card runs through PTX
    assert _arch_supported((6, 0), [])  # unknown build: no false alarm


def test_p100_warns_with_the_fix():
    rt = Runtime("kaggle", (P100,), choose_dtype((P100,)), warnings=gpu_warnings((P100,)))
    text = rt.summary()
    assert "⚠" in text and "P100" in text and "sm_60" in text and "GPU T4 x2" in text


def test_summary_of_two_t4():
    rt = Runtime("kaggle", (T4, GPU(1, "Tesla T4", T4.total_memory, (7, 5))), "float16", threads=4,
                 host_memory=32 * GIB)
    assert rt.summary() == "kaggle · 2× Tesla T4 (14.7 GiB, sm_75) · float16 · host RAM 32 GiB"
    assert rt.device == "cuda" and rt.torch_dtype is torch.float16
    d = rt.as_dict()
    assert [g["capability"] for g in d["gpus"]] == ["sm_75", "sm_75"] and d["device"] == "cuda"


def test_detect_this_machine_fixes_threads():
    before = torch.get_num_threads()
    try:
        rt = detect(threads=1, environ={})
        assert torch.get_num_threads() == 1 and rt.threads == 1
        assert rt.platform == "local" and rt.gpus == () and rt.dtype == "float32" and rt.device == "cpu"
        assert "CPU only (1 threads)" in rt.summary()
    finally:
        torch.set_num_threads(before)


def test_detect_with_described_gpus():
    rt = detect(environ={"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, gpus=(A100,))
    assert (rt.platform, rt.dtype, rt.device) == ("kaggle", "bfloat16", "cuda")


def test_bad_thread_count():
    with pytest.raises(ValueError, match="cpu_threads=0"):
        detect(threads=0)
