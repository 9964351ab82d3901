import json
import shutil

import pytest

from genhelpers import ParameterError
from genhelpers.hub.compat import check_motion

ADAPTER = "tiny:animatediff-motion-adapter-v1-5-2"


def test_sd15_base_with_its_adapter_and_sparsectrl_pass():
    check_motion("tiny:sd15", ADAPTER, 16, "tiny:sparsectrl-scribble")
    check_motion("tiny:sd15", ADAPTER, 32)  # the longest clip the module knows


def test_other_family_with_the_same_blocks_is_refused(twins, tmp_path):
    """An SD 2.x-like base: same block widths as SD1.5, but text features of another width."""
    sd2ish = tmp_path / "sd2-like"
    shutil.copytree(twins["sd15"], sd2ish)
    cfg = json.loads((sd2ish / "unet" / "config.json").read_text())
    cfg["cross_attention_dim"] = 48
    (sd2ish / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ParameterError, match="reads text features of width 48, not 32.*only works with SD1.5") as e:
        check_motion(str(sd2ish), ADAPTER, 16)
    assert e.value.parameter == "base_model"


def test_sdxl_base_is_refused():
    with pytest.raises(ParameterError, match="use a Stable Diffusion 1.5 model") as e:
        check_motion("tiny:sdxl-base", ADAPTER, 16)
    assert e.value.parameter == "base_model"


def test_too_many_frames():
    with pytest.raises(ParameterError, match="frames=33 .* at most 32 frames") as e:
        check_motion("tiny:sd15", ADAPTER, 33)
    assert e.value.parameter == "frames"


def test_published_reference_is_the_real_sd15_width():
    from genhelpers.hub.compat import sd15_reference_unet

    assert sd15_reference_unet(twin=False)["cross_attention_dim"] == 768
    assert list(sd15_reference_unet(twin=False)["block_out_channels"]) == [320, 640, 1280, 1280]


def test_the_check_loads_no_weights(monkeypatch):
    import diffusers

    monkeypatch.setattr(diffusers.ModelMixin, "from_pretrained", classmethod(lambda *a, **k: pytest.fail("loaded")))
    check_motion("tiny:sd15", ADAPTER, 16, "tiny:sparsectrl-rgb")


def test_if_safety_checker_still_does_not_load_so_the_catalog_skips_it(twins):
    """Canary for catalog.IF_SKIP: IFSafetyChecker (diffusers) lacks what transformers 5 needs to load it. The day
    this test fails, it loads again: drop the skip so IF runs with its safety checker."""
    from diffusers.pipelines.deepfloyd_if import IFSafetyChecker

    from genhelpers.hub import catalog

    with pytest.raises(AttributeError, match="all_tied_weights_keys"):
        IFSafetyChecker.from_pretrained(twins["if-i-xl"] / "safety_checker")
    assert "safety_checker" in catalog.ENTRIES["if-i-xl"].skip and "safety_checker" in catalog.ENTRIES["if-ii-l"].skip
