"""MVDream: our multi-view UNet against the published layout, the cameras against the published numbers, the
twin in the published folder layout, the coupling of the views, the converter, and bad input."""
import json
import shutil

import numpy as np
import pytest
import torch

import genhelpers
from genhelpers.models import mvdream as mv

from .conftest import REFERENCE

REF = REFERENCE / "mvdream"


def reference(name):
    return json.loads((REF / name).read_text())


def meta_unet(config):
    with torch.device("meta"):
        return mv.MultiViewUNetModel(**{k: v for k, v in config.items() if not k.startswith("_")})


@pytest.mark.parametrize("name", ["unet_sd21_4view_state_dict.json", "unet_imagedream_state_dict.json"])
def test_full_size_unet_has_the_published_names_and_shapes(name):
    ref = reference(name)
    unet = meta_unet(ref["config"])
    sd = unet.state_dict()
    assert list(sd) == list(ref["tensors"])  # same names, same order
    assert {k: list(v.shape) for k, v in sd.items()} == ref["tensors"]
    assert sum(p.numel() for p in unet.parameters()) == ref["total_params"]
    assert not list(unet.buffers())


def test_published_checkpoint_loads_strictly_into_our_unet():
    """The original checkpoint's keys (prefix model.diffusion_model., beside VAE and text keys) load with
    strict=True at the published config, without allocating the 0.87 B parameters."""
    ref = reference("unet_sd21_4view_state_dict.json")
    with torch.device("meta"):
        original = {mv.ORIGINAL_PREFIX + k: torch.empty(shape) for k, shape in ref["tensors"].items()}
        original["first_stage_model.encoder.conv_in.weight"] = torch.empty(128, 3, 3, 3)
    unet = mv.unet_from_original(original)
    assert unet.config.ip_dim == 0 and unet.config.model_channels == 320
    del original[mv.ORIGINAL_PREFIX + "camera_embed.0.weight"]
    with pytest.raises(RuntimeError, match="camera_embed.0.weight"):
        mv.unet_from_original(original)


def test_catalog_counts_are_the_published_unet():
    from genhelpers.hub import catalog, published

    assert catalog.ENTRIES["mvdream"].params["unet"] == reference("unet_sd21_4view_state_dict.json")["total_params"]
    assert published.count("mvdream", "vae") == reference("vae_state_dict.json")["total_params"]
    layout = reference("pipeline_layout.json")
    assert published.configs("mvdream")["unet"] == layout["mvdream_sd21"]["unet/config.json"]


@pytest.mark.parametrize("case", range(3))
def test_cameras_equal_the_published_matrices(case):
    c = reference("camera_reference.json")["cases"][case]
    i = c["inputs"]
    got = mv.cameras(i["num_frames"], i["elevation_deg"], i["azimuth_start_deg"], i["azimuth_span_deg"],
                     i["blender_coord"])
    assert got.dtype == torch.float32 and got.shape == (4, 16)
    assert torch.allclose(got, torch.tensor(c["matrix_4x16"]), atol=1e-6, rtol=0)


def test_imagedream_extra_view_and_opengl_frame():
    example = reference("camera_reference.json")["imagedream_extra_view_example"]
    got = mv.cameras(4, 0, extra_view=True)
    assert torch.allclose(got, torch.tensor(example["matrix_5x16"]), atol=1e-6, rtol=0)
    gl = mv.cameras(8, 30, 45, blender_coord=False).double().reshape(8, 4, 4)
    rot, pos = gl[:, :3, :3], gl[:, :3, 3]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(8, 3, 3), atol=1e-6)
    assert torch.allclose(pos.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(pos[:, 1], torch.full((8,), 0.5, dtype=torch.float64), atol=1e-6)  # y-up: height sin 30°
    assert torch.allclose(rot[:, :, 2], pos, atol=1e-6)  # the camera looks at the origin (its back axis points out)


# --------------------------------------------------------------------------------------------- the twin
def quiet_twin(key):
    from genhelpers.platform.runtime import detect

    p = genhelpers.load(f"tiny:{key}", detect(threads=2), quiet=True)
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def pipe(twins):
    return quiet_twin("mvdream")


def test_twin_has_the_published_folder_layout(twins):
    folder, layout = twins["mvdream"], reference("pipeline_layout.json")
    index = json.loads((folder / "model_index.json").read_text())
    published_index = layout["mvdream_sd21"]["model_index.json"]
    assert {k: v for k, v in index.items() if k != "_diffusers_version"} == \
        {k: v for k, v in published_index.items() if k != "_diffusers_version"}
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    assert set(unet_config) - {"_diffusers_version"} == set(layout["mvdream_sd21"]["unet/config.json"]) - {
        "_diffusers_version"}
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    for k, v in layout["scheduler/scheduler_config.json"].items():
        if k != "_diffusers_version":
            assert scheduler[k] == v, k
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.py"))


def test_twin_loads_through_genhelpers_load(pipe):
    assert type(pipe).__name__ == "MVDreamPipeline" and type(pipe.unet) is mv.MultiViewUNetModel
    assert pipe.genhelpers_info["source"] == "tiny" and pipe.vae_scale_factor == 8


def test_hub_code_in_the_folder_is_never_run(twins, tmp_path, cpu_runtime):
    """The hub copy may carry the port's own files and a hand-edited index naming them; we read the folder
    with known classes and never import those files."""
    folder = tmp_path / "mvdream-hub"
    shutil.copytree(twins["mvdream"], folder)
    trap = "raise SystemExit('remote code was executed')\n"
    (folder / "pipeline_mvdream.py").write_text(trap)
    (folder / "unet" / "mv_unet.py").write_text(trap)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = ["pipeline_mvdream", "MVDreamPipeline"]
    (folder / "model_index.json").write_text(json.dumps(index))
    loaded = genhelpers.load(str(folder), cpu_runtime, quiet=True)
    assert type(loaded).__name__ == "MVDreamPipeline"


def test_pipeline_code_we_do_not_have_is_refused(twins, tmp_path, cpu_runtime):
    folder = tmp_path / "other"
    shutil.copytree(twins["mvdream"], folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = ["pipeline_other", "OtherPipeline"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="never runs code from a model repository"):
        genhelpers.load(str(folder), cpu_runtime, quiet=True)


def run(pipe, **kw):
    kw = {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(0), "output_type": "np", **kw}
    return pipe("a toy robot", **kw)


def test_four_views_reproducible_and_steered_by_the_cameras(pipe):
    a = run(pipe)
    assert a.shape == (4, 256, 256, 3) and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, run(pipe))  # seeded: the same again
    assert not np.allclose(a, run(pipe, elevation=30.0))  # the camera embedding reaches the pictures
    assert not np.allclose(a, run(pipe, guidance_scale=1.0))
    two = run(pipe, num_frames=2, height=128, width=128)
    assert two.shape == (2, 128, 128, 3)
    images = run(pipe, output_type="pil")
    assert len(images) == 4 and images[0].size == (256, 256)


def test_multiview_attention_couples_the_views(pipe):
    unet = pipe.unet
    x, t = torch.randn(4, 4, 32, 32), torch.tensor(500)
    text, camera = torch.randn(4, 77, 32), mv.cameras(4, 15)
    changed = x.clone()
    changed[0] += torch.randn(4, 32, 32)
    with torch.no_grad():
        joint = unet(x, t, text, camera=camera, num_frames=4), unet(changed, t, text, camera=camera, num_frames=4)
        apart = unet(x, t, text, camera=camera, num_frames=1), unet(changed, t, text, camera=camera, num_frames=1)
    assert not torch.allclose(joint[0][1:], joint[1][1:])  # one view changed: the other three answer differently
    assert torch.equal(apart[0][1:], apart[1][1:])  # four separate objects: the others are untouched
    assert not torch.allclose(joint[0], apart[0])


def test_joint_attention_off_lets_each_view_see_only_itself(pipe, monkeypatch):
    """The notebook's on/off comparison: off, the UNet is told each picture is its own object (num_frames=1), so
    self-attention stays within a view; the cameras, the seed and everything else are unchanged."""
    seen = []
    real = type(pipe.unet).forward

    def forward(self, x, timesteps, context, camera=None, num_frames=1, **kwargs):
        seen.append((num_frames, camera.clone()))
        return real(self, x, timesteps, context, camera=camera, num_frames=num_frames, **kwargs)

    monkeypatch.setattr(type(pipe.unet), "forward", forward)
    on, off = run(pipe), run(pipe, joint_attention=False)
    assert [n for n, _ in seen] == [4, 4, 1, 1]  # two steps each
    assert torch.equal(seen[0][1], seen[2][1])  # the same cameras
    assert not np.allclose(on, off)


def test_one_view_is_ordinary_self_attention(pipe):
    attn = pipe.unet.input_blocks[1][1].transformer_blocks[0].attn1
    x = torch.randn(3, 50, attn.to_q.in_features)
    with torch.no_grad():
        q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
        h = attn.heads
        split = lambda a: a.reshape(3, 50, h, -1).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / split(q).shape[-1] ** 0.5, dim=-1)
        expected = attn.to_out((weights @ split(v)).transpose(1, 2).reshape(3, 50, -1))
        assert torch.allclose(attn(x, num_frames=1), expected, atol=1e-5)
        # and across views it is the same attention over the views' tokens joined into one sequence
        joined = attn(x.reshape(1, 150, -1), num_frames=1).reshape(3, 50, -1)
        assert torch.allclose(attn(x, num_frames=3), joined, atol=1e-5)


def test_imagedream_unet_uses_the_image_tokens():
    torch.manual_seed(0)
    unet = mv.MultiViewUNetModel(model_channels=32, channel_mult=(1, 2), num_head_channels=16, context_dim=64,
                                 ip_dim=4, attention_resolutions=(1, 2)).eval()
    # the resampler takes ViT-H/14 hidden states (1280 wide); ImageDream runs 4 views + 1 reference frame
    x, text, cam = torch.randn(5, 4, 16, 16), torch.randn(5, 77, 64), mv.cameras(4, 0, extra_view=True)
    ref = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        a = unet(x, 10, text, camera=cam, num_frames=5, ip=torch.randn(5, 257, 1280), ip_img=ref)
        b = unet(x, 10, text, camera=cam, num_frames=5, ip=torch.randn(5, 257, 1280), ip_img=ref)
        c = unet(x, 10, text, camera=cam, num_frames=5, ip=torch.zeros(5, 257, 1280), ip_img=torch.zeros(1, 4, 16, 16))
    assert a.shape == (5, 4, 16, 16) and not torch.allclose(a, b) and not torch.allclose(a, c)
    with pytest.raises(ValueError, match="pass ip="):
        unet(x, 10, text, camera=cam, num_frames=5)


# ------------------------------------------------------------------------------------------- ImageDream
@pytest.fixture(scope="module")
def image_pipe(twins):
    return quiet_twin("imagedream")


def test_imagedream_refuses_joint_attention_off(image_pipe):
    """ImageDream's picture reaches the views only through the joint attention: switching it off is refused."""
    from PIL import Image

    with pytest.raises(ValueError, match="joint_attention=False is for text"):
        image_pipe("x", image=Image.new("RGB", (64, 64)), joint_attention=False, num_inference_steps=1)


def test_imagedream_twin_has_the_published_index(twins):
    index = json.loads((twins["imagedream"] / "model_index.json").read_text())
    published_index = reference("pipeline_layout.json")["imagedream_ipmv"]["model_index.json"]
    assert {k: v for k, v in index.items() if k != "_diffusers_version"} == \
        {k: v for k, v in published_index.items() if k != "_diffusers_version"}
    assert json.loads((twins["imagedream"] / "unet" / "config.json").read_text())["ip_dim"] == 16


def test_imagedream_views_follow_the_picture(image_pipe):
    from PIL import Image

    red, blue = Image.new("RGB", (300, 300), (220, 30, 30)), Image.new("RGB", (300, 300), (30, 30, 220))
    a = run(image_pipe, image=red)
    assert a.shape == (4, 256, 256, 3)  # the reference frame is dropped
    assert np.array_equal(a, run(image_pipe, image=red))
    assert not np.allclose(a, run(image_pipe, image=blue))
    assert image_pipe("", image=red, num_inference_steps=1, output_type="np").shape == (4, 256, 256, 3)
    with pytest.raises(ValueError, match="ImageDream model: pass image="):
        run(image_pipe)


def test_an_image_needs_imagedream(pipe):
    from PIL import Image

    with pytest.raises(ValueError, match="image= needs an ImageDream model"):
        run(pipe, image=Image.new("RGB", (64, 64)))


# ----------------------------------------------------------------------------------------------- errors
def test_bad_input_is_refused_before_any_work(pipe):
    with pytest.raises(ValueError, match=r"camera has shape \(3, 16\) but num_frames=4"):
        run(pipe, camera=mv.cameras(3))
    with pytest.raises(ValueError, match="height=250 must be a positive multiple of 8"):
        run(pipe, height=250)
    with pytest.raises(ValueError, match="prompt='' is empty"):
        pipe("", num_inference_steps=1)
    with pytest.raises(ValueError, match="not a whole number of objects of num_frames=3"):
        pipe.unet(torch.randn(4, 4, 8, 8), 1, torch.randn(4, 77, 32), num_frames=3)
    with pytest.raises(ValueError, match="camera has 2 rows for 4 pictures"):
        pipe.unet(torch.randn(4, 4, 8, 8), 1, torch.randn(4, 77, 32), camera=mv.cameras(2), num_frames=4)


def test_missing_component_is_named(twins, tmp_path, cpu_runtime):
    folder = tmp_path / "broken"
    shutil.copytree(twins["mvdream"], folder)
    shutil.rmtree(folder / "unet")
    with pytest.raises(ValueError, match=r"missing component\(s\) unet"):
        genhelpers.load(str(folder), cpu_runtime, quiet=True)


# -------------------------------------------------------------------------------------------- converter
def test_converter_writes_the_published_layout_from_the_original_checkpoint(pipe, tmp_path, cpu_runtime):
    from safetensors.torch import save_file

    original = {mv.ORIGINAL_PREFIX + k: v.clone() for k, v in pipe.unet.state_dict().items()}
    original["first_stage_model.decoder.conv_out.bias"] = torch.zeros(3)  # the single file holds more than the UNet
    save_file(original, tmp_path / "sd-v2.1-base-4view.safetensors")
    torch.save({"state_dict": original}, tmp_path / "sd-v2.1-base-4view.pt")
    config = dict(pipe.unet.config)
    for suffix in ("safetensors", "pt"):
        out = tmp_path / f"converted-{suffix}"
        unet = mv.unet_from_original(mv.read_checkpoint(tmp_path / f"sd-v2.1-base-4view.{suffix}"),
                                     {k: v for k, v in config.items() if not k.startswith("_")})
        assert all(torch.equal(unet.state_dict()[k], v) for k, v in pipe.unet.state_dict().items())
    # the whole folder, at the twin's (toy) config
    pipe_config = {k: v for k, v in config.items() if not k.startswith("_")}
    out = mv.convert_original(tmp_path / "sd-v2.1-base-4view.safetensors", pipe, tmp_path / "converted",
                              half=False, unet_config=pipe_config)
    index = json.loads((out / "model_index.json").read_text())
    assert index["unet"] == ["mv_unet", "MultiViewUNetModel"]
    assert not list(tmp_path.glob(".converted-*"))  # no half-written folder left behind
    again = genhelpers.load(str(out), cpu_runtime, quiet=True)
    again.set_progress_bar_config(disable=True)
    assert np.array_equal(run(again), run(pipe))
    with pytest.raises(FileExistsError, match="exists"):
        mv.convert_original(tmp_path / "sd-v2.1-base-4view.safetensors", pipe, out)
    with pytest.raises(ValueError, match="not an original MVDream checkpoint"):
        mv.unet_from_original({"unet.conv_in.weight": torch.zeros(1)})
