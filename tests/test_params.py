import pytest

from genhelpers import ParameterError, check

GOOD = dict(model="tiny:sdxl-base", refiner=None, vae="auto", prompt="a fox", negative_prompt="", steps=2,
            guidance=5.0, height=64, width=64, seed=0, num_images=1, high_noise_frac=0.8, memory="auto",
            cpu_threads=2)


def test_good_parameters_come_back_as_the_record(tmp_path):
    out = check(**GOOD, output_dir=str(tmp_path / "out"), widgets=False)
    assert out == {**GOOD, "output_dir": str(tmp_path / "out"), "widgets": False}
    assert (tmp_path / "out").is_dir() and list((tmp_path / "out").iterdir()) == []  # probe file removed


@pytest.mark.parametrize("bad, parameter, message", [
    ({"height": 500}, "height", r"height=500 must be a multiple of 8 .*try 496 or 504"),
    ({"width": 1001}, "width", r"width=1001 must be a multiple of 8 .*try 1000 or 1008"),
    ({"width": 4}, "width", r"try 8"),
    ({"height": 0}, "height", "positive whole number"),
    ({"height": 512.0}, "height", "positive whole number"),
    ({"steps": 0}, "steps", r"steps=0 must be a whole number ≥ 1"),
    ({"steps": -3}, "steps", "steps=-3"),
    ({"guidance": -1}, "guidance", r"guidance=-1 must be a number ≥ 0"),
    ({"high_noise_frac": 1.0}, "high_noise_frac", "strictly between 0 and 1.*0.8 is usual"),
    ({"high_noise_frac": 0}, "high_noise_frac", "strictly between 0 and 1"),
    ({"num_images": 0}, "num_images", "num_images=0"),
    ({"seed": -1}, "seed", "seed=-1"),
    ({"prompt": "  "}, "prompt", "is empty: describe what to generate"),
    ({"model": "stable-diffusion-xl"}, "model", "model='stable-diffusion-xl' is not a model reference"),
    ({"refiner": "tiny:nope"}, "refiner", "refiner='tiny:nope': no tiny twin"),
    ({"memory": "max"}, "memory", "memory='max' is not a plan"),
    ({"cpu_threads": 0}, "cpu_threads", "cpu_threads=0"),
])
def test_bad_input_names_the_parameter_and_the_fix(tmp_path, bad, parameter, message):
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=message) as e:
        check(**{**GOOD, **bad}, output_dir=str(out))
    assert e.value.parameter == parameter
    assert not out.exists()  # output_dir is checked last: nothing was created


def test_output_dir_that_cannot_be_written(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    expected = r"output_dir=.*a-file/sub' is not writable .*e.g. output_dir='outputs'"
    with pytest.raises(ParameterError, match=expected) as e:
        check(**GOOD, output_dir=str(target / "sub"))
    assert e.value.parameter == "output_dir"
    with pytest.raises(ParameterError, match="is not writable"):
        check(**GOOD, output_dir="/proc/genhelpers-outputs")


def test_kaggle_hint_points_to_working(monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    with pytest.raises(ParameterError, match="/kaggle/working/outputs"):
        check(output_dir="/proc/nope")


VIDEO = dict(frames=16, fps=8, conditioning_frames=[0, 8, 15], conditioning_images=None, min_guidance=1.0,
             max_guidance=3.0, decode_chunk_size=None, motion_bucket_id=127, noise_aug_strength=0.02, sparsectrl=True)


@pytest.mark.parametrize("bad, parameter, message", [
    ({"conditioning_frames": [0, 16]}, "conditioning_frames", r"frame\(s\) \[16\] lie outside .*\(use 0 to 15\)"),
    ({"conditioning_frames": [3, 3]}, "conditioning_frames", "distinct frame numbers"),
    ({"conditioning_frames": []}, "conditioning_frames", "distinct frame numbers"),
    ({"min_guidance": 5.0}, "min_guidance", "above max_guidance"),
    ({"decode_chunk_size": 0}, "decode_chunk_size", "decode_chunk_size=0"),
    ({"motion_bucket_id": -1}, "motion_bucket_id", "whole number ≥ 0"),
    ({"sparsectrl": "yes"}, "sparsectrl", "True or False"),
    ({"conditioning_images": ["a.png"]}, "conditioning_images[0]", "no such file"),
    ({"fps": 0}, "fps", "fps=0 must be a number > 0"),
])
def test_video_parameters(bad, parameter, message):
    with pytest.raises(ParameterError, match=message) as e:
        check(**{**VIDEO, **bad})
    assert e.value.parameter == parameter


def test_one_key_image_per_conditioning_frame(tmp_path):
    from PIL import Image

    img = tmp_path / "k.png"
    Image.new("RGB", (8, 8)).save(img)
    check(**{**VIDEO, "conditioning_images": [str(img)] * 3})
    with pytest.raises(ParameterError, match="has 1 image.*names 3 frame") as e:
        check(**{**VIDEO, "conditioning_images": [str(img)]})
    assert e.value.parameter == "conditioning_images"


@pytest.mark.parametrize("value, message", [(100, "try 96 or 128"), (16, "try 32 or 64"), (0, "try 32 or 64")])
def test_shap_e_frame_size(value, message):
    with pytest.raises(ParameterError, match=f"frame_size={value} is not supported.*{message}"):
        check(frame_size=value)
    check(frame_size=256)


def test_a_pickle_only_model_asks_for_the_opt_in_before_anything_loads():
    """Where a notebook has the allow_pickle switch, a model the catalog knows as pickle-only is refused by the
    inputs check (named parameter, the fix in the message), whether named by hub id or by its twin."""
    for model in ("sudo-ai/zero123plus-v1.1", "tiny:zero123plus-v1.1", "cerspense/zeroscope_v2_576w"):
        with pytest.raises(ParameterError, match=r"repository publishes pickle weights only.*allow_pickle=True") as e:
            check(model=model, allow_pickle=False)
        assert e.value.parameter == "allow_pickle"
        assert check(model=model, allow_pickle=True)["allow_pickle"] is True
    assert check(model="sudo-ai/zero123plus-v1.2", allow_pickle=False)  # safetensors: nothing to allow
    assert check(model="kakaobrain/karlo-v1-alpha", allow_pickle=False)  # safetensors beside its pickles
    assert check(model="sudo-ai/zero123plus-v1.1")  # no switch in the notebook: the loader's own check decides
