import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import genhelpers
from genhelpers.models import zero123plus as z


@pytest.fixture(scope="module")
def pipe(twins):
    from genhelpers.platform.runtime import detect

    p = genhelpers.load("tiny:zero123plus-v1.2", detect(threads=2), quiet=True)
    p.set_progress_bar_config(disable=True)
    return p


def run(pipe, image, **kw):
    return pipe(image, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np", **kw)


def test_processors_are_a_no_op_when_reference_is_off(pipe):
    """With no reference pass the installed processors compute exactly PyTorch's attention."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0

    plain = UNet2DConditionModel.from_config(pipe.unet.config).eval()
    plain.load_state_dict(pipe.unet.state_dict())
    plain.set_attn_processor(AttnProcessor2_0())
    x, t, text = torch.randn(2, 4, 40, 40), torch.tensor(300), torch.randn(2, 77, 32)
    assert pipe.reference.mode is None
    with torch.no_grad():
        ours = pipe.unet(x, t, encoder_hidden_states=text).sample
        assert torch.equal(ours, plain(x, t, encoder_hidden_states=text).sample)


def test_read_mode_attends_to_the_recorded_tokens(pipe):
    x, t, text = torch.randn(2, 4, 40, 40), torch.tensor(300), torch.randn(2, 77, 32)
    outputs = []
    with torch.no_grad():
        for ref in (torch.randn(2, 4, 40, 40), torch.randn(2, 4, 40, 40)):
            pipe.reference.mode = "write"
            pipe.unet(ref, t, encoder_hidden_states=text)
            assert len(pipe.reference.bank) == 16  # every self-attention layer recorded its input
            pipe.reference.mode = "read"
            outputs.append(pipe.unet(x, t, encoder_hidden_states=text).sample)
            pipe.reference.mode, pipe.reference.bank = None, {}
    assert not torch.allclose(outputs[0], outputs[1])


def test_reference_attention_changes_the_output(pipe):
    ball = z.load_condition(None)
    other = z.prepare_input(Image.new("RGB", (320, 320), (20, 200, 40)))
    a, b = run(pipe, ball), run(pipe, other)
    assert a.shape == (1, 960, 640, 3) and not np.allclose(a, b)
    assert not np.allclose(a, run(pipe, ball, reference_attention=False))
    assert np.array_equal(a, run(pipe, ball))  # seeded: the same again


def test_switching_reference_attention_off_changes_only_the_reference_pass(pipe, monkeypatch):
    """The lesson's on/off comparison is fair: off, the pipeline draws the same random numbers (the reference noise
    included) and runs the UNet once a step instead of twice; nothing else differs."""
    ball = z.load_condition(None)
    draws, calls = {}, {}
    real_randn, real_forward = torch.randn, type(pipe.unet).forward

    for flag in (True, False):
        draws[flag], calls[flag] = [], 0

        def randn(*args, _flag=flag, **kwargs):
            out = real_randn(*args, **kwargs)
            draws[_flag].append(out.clone())
            return out

        def forward(self, *args, _flag=flag, **kwargs):
            calls[_flag] += 1
            return real_forward(self, *args, **kwargs)

        monkeypatch.setattr(torch, "randn", randn)
        monkeypatch.setattr(type(pipe.unet), "forward", forward)
        run(pipe, ball, reference_attention=flag)
    assert len(draws[True]) == len(draws[False]) and all(
        torch.equal(a, b) for a, b in zip(draws[True], draws[False], strict=True))
    assert calls == {True: 4, False: 2}  # 2 steps: write + read passes, or the read pass alone


def test_input_handling():
    rgba = Image.new("RGBA", (400, 400), (255, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (100, 100, 300, 300))
    out = z.prepare_input(rgba)
    assert out.mode == "RGB" and out.getpixel((5, 5)) == (127, 127, 127) and out.getpixel((200, 200)) == (255, 0, 0)
    wide = z.prepare_input(Image.new("RGB", (500, 340), (0, 0, 255)))
    assert wide.size == (500, 500) and wide.getpixel((250, 10)) == (127, 127, 127)
    with pytest.raises(ValueError, match="needs at least 320×320"):
        z.prepare_input(Image.new("RGB", (200, 150)))


def test_condition_errors_name_the_parameter(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (100, 100)).save(small)
    with pytest.raises(genhelpers.ParameterError, match="image is 100×100") as e:
        z.load_condition(str(small))
    assert e.value.parameter == "image"
    with pytest.raises(genhelpers.ParameterError, match="no such file"):
        z.load_condition(str(tmp_path / "missing.png"))


def test_views_and_cameras():
    grid = Image.new("RGB", (640, 960))
    grid.paste((255, 0, 0), (320, 320, 640, 640))  # row 1, column 1 -> view 3
    views = z.split_views(grid)
    assert len(views) == 6 and all(v.size == (320, 320) for v in views)
    assert views[3].getpixel((10, 10)) == (255, 0, 0) and views[2].getpixel((10, 10)) == (0, 0, 0)
    v12, v11 = z.cameras("sudo-ai/zero123plus-v1.2"), z.cameras("tiny:zero123plus-v1.1")
    assert [c["azimuth_deg"] for c in v12] == [30, 90, 150, 210, 270, 330]
    assert [c["elevation_deg"] for c in v12] == [20, -10] * 3 and v12[0]["fov_deg"] == 30
    assert [c["elevation_deg"] for c in v11] == [30, -20] * 3 and v11[0]["fov_deg"] is None


def test_twin_has_the_published_layout(twins):
    folder = twins["zero123plus-v1.2"]
    index = json.loads((folder / "model_index.json").read_text())
    components = {k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0]}
    assert components == {"vae", "text_encoder", "tokenizer", "unet", "scheduler", "vision_encoder",
                          "feature_extractor_clip", "feature_extractor_vae"}
    assert index["_class_name"] == "Zero123PlusPipeline" and len(index["ramping_coefficients"]) == 77
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert (sched["_class_name"], sched["timestep_spacing"], sched["beta_schedule"]) == (
        "EulerAncestralDiscreteScheduler", "trailing", "linear")


def test_wrong_folder_layout_names_the_missing_component(twins, tmp_path, cpu_runtime):
    broken = tmp_path / "zero123plus"
    shutil.copytree(twins["zero123plus-v1.2"], broken)
    shutil.rmtree(broken / "vision_encoder")
    with pytest.raises(ValueError, match="not a complete Zero123PlusPipeline folder: missing .*vision_encoder"):
        genhelpers.load(str(broken), cpu_runtime, pipeline="Zero123PlusPipeline")
    (broken / "model_index.json").unlink()
    with pytest.raises(ValueError, match="has no model_index.json"):
        genhelpers.load(str(broken), cpu_runtime, pipeline="Zero123PlusPipeline")


def test_depth_controlnet_changes_the_views(twins, cpu_runtime):
    cn = genhelpers.load("tiny:controlnet-zp11-depth", cpu_runtime, memory=None, quiet=True)
    p = genhelpers.load("tiny:zero123plus-v1.1", cpu_runtime, quiet=True, allow_pickle=True, controlnet=cn)
    p.set_progress_bar_config(disable=True)
    ball = z.load_condition(None)
    with_depth = run(p, ball, depth_image=z.demo_depth())
    assert with_depth.shape == (1, 960, 640, 3) and not np.allclose(with_depth, run(p, ball))
    plain = genhelpers.load("tiny:zero123plus-v1.1", cpu_runtime, quiet=True, allow_pickle=True)
    with pytest.raises(ValueError, match="depth_image needs the depth ControlNet"):
        plain(ball, num_inference_steps=1, depth_image=z.demo_depth())
