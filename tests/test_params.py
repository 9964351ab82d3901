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
