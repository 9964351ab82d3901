import yaml

from genhelpers import cli
from genhelpers.platform.machines import runtime_for
from genhelpers.runs import doctor

from .conftest import NOTEBOOKS

PROFILES = yaml.safe_load((NOTEBOOKS / "profiles.yaml").read_text())


def rows(machine):
    return {r["notebook"]: r for r in doctor.table(PROFILES, runtime_for(machine))}


def test_every_notebook_fits_kaggles_t4x2():
    table = rows("T4x2")
    assert set(table) == set(PROFILES)
    assert all(r["fits"] for r in table.values()), {n: r["advice"] for n, r in table.items() if not r["fits"]}
    assert table["sdxl"]["plan"] == "split"  # base and refiner each on a T4
    assert table["diffusion_from_scratch"]["plan"] == "cpu"


def test_single_t4_needs_offload_for_base_plus_refiner():
    table = rows("T4")
    assert table["sdxl"]["plan"] == "model-offload" and "slower" in table["sdxl"]["advice"]
    assert table["svd"]["plan"] == "gpu-lean" and table["svd"]["frames"] == 25


def test_unsupported_gpu_and_cpu_say_what_to_do():
    assert "choose 'GPU T4 x2'" in rows("P100")["sdxl"]["advice"]
    cpu = rows("CPU")
    assert not cpu["sdxl"]["fits"] and "smoke profile" in cpu["sdxl"]["advice"]
    assert cpu["diffusion_from_scratch"]["fits"]


def test_sizes_come_from_the_profile():
    refs, size = doctor.job({"model": "svd-xt", "frames": 25, "height": 576, "width": 1024})
    assert refs == ["svd-xt"] and (size["frames"], size["width"]) == (25, 1024)
    refs, _ = doctor.job({"base_model": "sd15", "adapter": "x", "sparsectrl": False, "sparsectrl_model": "y"})
    assert refs == ["sd15", "x"]  # SparseCtrl only counts when switched on
    refs, _ = doctor.job({"mode": "text", "text_model": "shap-e", "image_model": "shap-e-img2img"})
    assert refs == ["shap-e"]


def test_cli_doctor_table(capsys):
    assert cli.main(["doctor", "--gpu", "T4x2"]) == 0
    out = capsys.readouterr().out
    assert "described machine T4x2: kaggle · 2× Tesla T4" in out
    assert "| sdxl | 1024×1024 | split |" in out and "| svd | 1024×576 × 25 frames |" in out
    assert cli.main(["doctor", "--gpu", "V100"]) == 2


def test_zero123plus_row_uses_its_fixed_output_size():
    table = rows("T4")
    assert (table["zero123plus"]["width"], table["zero123plus"]["height"]) == (640, 960)
    assert table["zero123plus"]["plan"] == "gpu"
    refs, _ = doctor.job({"model": "zero123plus-v1.1", "controlnet": True, "controlnet_model": "controlnet-zp11-depth"})
    assert refs == ["zero123plus-v1.1", "controlnet-zp11-depth"]


def test_deepfloyd_if_is_planned_stage_by_stage():
    """T5-XXL (8.9 GiB in fp16) + the IF-I-XL UNet (8.0 GiB) do not fit one T4 together: on two T4s they are
    split, on one they take turns (model offload, measured 8.9 GiB peak under a T4's memory)."""
    assert rows("T4x2")["deepfloyd_if"]["plan"] == "split"
    assert rows("T4")["deepfloyd_if"]["plan"] == "model-offload" and rows("T4")["deepfloyd_if"]["fits"]
    assert rows("T4x2")["deepfloyd_if"]["models"] == ["DeepFloyd/IF-I-XL-v1.0", "DeepFloyd/IF-II-L-v1.0",
                                                      "stabilityai/stable-diffusion-x4-upscaler"]
    assert rows("A100-40")["deepfloyd_if"]["plan"] == "gpu"


def test_tune_a_video_counts_training_memory():
    """Weights + the trained parameters' float32 copy, gradients and AdamW state + activations: measured 8.2 GiB
    for the full-size SD 1.5 at 8 × 256² with checkpointing (benchmarks/gpu_full_size.json)."""
    row = rows("T4")["tune_a_video"]
    assert row["plan"] == "gpu" and row["fits"] and 7.0 <= row["gpu_gib"] <= 9.5, row
    assert "optimizer" not in row["advice"] and "trained" in row["advice"]
    big = doctor.row("tune_a_video", {**PROFILES["tune_a_video"]["kaggle-t4"], "frames": 24, "size": 512,
                                      "gradient_checkpointing": False}, runtime_for("T4"))
    assert not big["fits"] and "use_8bit_adam=True" in big["advice"]


def test_stylecrafter_counts_the_ip_adapter_and_its_image_encoder():
    """stylecrafter: SD 1.5 + the motion module + IP-Adapter with its ViT-H/14 encoder (632 M parameters, 1.2 GiB
    in fp16) on one T4 at full speed; the IP-Adapter keeps the motion module's activation rate."""
    refs, size = doctor.job(PROFILES["stylecrafter"]["kaggle-t4"])
    assert refs == ["stable-diffusion-v1-5/stable-diffusion-v1-5", "guoyww/animatediff-motion-adapter-v1-5-2",
                    "h94/IP-Adapter"] and size["frames"] == 16
    params = PROFILES["stylecrafter"]["kaggle-t4"]
    with_ip = rows("T4")["stylecrafter"]
    without = doctor.row("stylecrafter", {k: v for k, v in params.items() if k != "ip_adapter"}, runtime_for("T4"))
    assert with_ip["plan"] == "gpu" and with_ip["fits"]
    assert 1.1 < with_ip["gpu_gib"] - without["gpu_gib"] < 1.3  # 654 M parameters in fp16, no new activations
