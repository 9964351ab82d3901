"""Animate Anyone: our pipeline pinned to Moore-AnimateAnyone's own forward on tiny weights, the converter of its
published pickles (and its opt-in), every conditioning input alive on the twins, the drawn pose pictures, and the
download of exactly the published files from a local hub."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import genhelpers
from genhelpers.errors import ParameterError

from . import fixture_rule
from .conftest import REFERENCE

FIXTURE = json.loads((REFERENCE / "animate_anyone" / "moore_tiny_fixture.json").read_text())
FACTS = json.loads((REFERENCE / "animate_anyone" / "facts.json").read_text())


# ------------------------------------------------------------------------------- the authors' forward, pinned
def rule_weights(shapes: dict, tag: str) -> dict:
    """moore_tiny_fixture.json's rule (tests/fixture_rule.py); the motion modules' sinusoidal tables are computed."""
    return fixture_rule.rule_weights(shapes, tag, skip_suffixes=("pos_encoder.pe",))


@pytest.fixture(scope="module")
def fixture_pipe():
    """Our pipeline's parts on the fixture's tiny weights: stock diffusers UNets loaded with the rule's tensors
    under Moore's key names, our pose guider, processors, hook and per-frame GroupNorm."""
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    from genhelpers.models.animate_anyone import AnimateAnyonePipeline, PoseGuider

    cfg = FIXTURE["tiny_reference_unet_config"]
    shapes = {k: list(v.shape) for k, v in UNet2DConditionModel(**cfg).state_dict().items()}
    reference = UNet2DConditionModel(**cfg).eval()
    missing = reference.load_state_dict(rule_weights({k: v for k, v in shapes.items() if not k.startswith(
        ("conv_norm_out.", "conv_out."))}, "reference_unet"), strict=False).missing_keys
    assert sorted(missing) == ["conv_norm_out.bias", "conv_norm_out.weight", "conv_out.bias", "conv_out.weight"]
    unet2d = UNet2DConditionModel(**cfg).eval()
    unet2d.load_state_dict(rule_weights(shapes, "denoising_unet"), strict=True)
    adapter = MotionAdapter(**FIXTURE["diffusers_motion_adapter_equivalent"]).eval()
    motion = convert_animatediff_checkpoint_to_diffusers(rule_weights(FIXTURE["motion_module_keys"], "motion_module"))
    left = adapter.load_state_dict(motion, strict=False)
    assert not left.unexpected_keys and all(k.endswith("pos_embed.pe") for k in left.missing_keys)
    kw = FIXTURE["pose_guider_kwargs"]
    guider = PoseGuider(kw["conditioning_embedding_channels"], 3, tuple(kw["block_out_channels"])).eval()
    guider.load_state_dict(rule_weights(FIXTURE["pose_guider_keys"], "pose_guider"), strict=True)
    return AnimateAnyonePipeline(vae=None, image_encoder=None, feature_extractor=None, reference_unet=reference,
                                 unet=UNetMotionModel.from_unet2d(unet2d, adapter).eval(), pose_guider=guider,
                                 scheduler=None)


def fixture_inputs():
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    frames = FIXTURE["frames"]
    return (torch.randn(1, 4, 8, 8, generator=g(1)), torch.randn(1, 4, frames, 8, 8, generator=g(2)),
            torch.rand(1, 3, frames, 64, 64, generator=g(3)), torch.randn(1, 1, 16, generator=g(4)))


def expected(name):
    e = FIXTURE["expected"]
    return torch.tensor(e[name]).reshape(e["denoiser_output_shape"])


@torch.no_grad()
def test_the_pose_guider_matches_moore(fixture_pipe):
    _, _, poses, _ = fixture_inputs()
    features = fixture_pipe.pose_guider(poses)
    e = FIXTURE["expected"]
    assert list(features.shape) == e["pose_features_shape"]
    assert torch.allclose(features.flatten()[:64], torch.tensor(e["pose_features_first_64_flat"]), atol=1e-5)
    assert abs(float(features.sum()) - e["pose_features_sum"]) < 1e-2
    assert abs(float(features.abs().sum()) - e["pose_features_abs_sum"]) < 1e-2


@torch.no_grad()
def test_one_denoiser_step_with_the_reference_matches_moore(fixture_pipe):
    """Moore's pose guider + ReferenceNet write + denoiser read under guidance, on the fixture's weights and inputs:
    ours matches to float rounding (Moore rounds the recorded features to float16, we keep float32: 1.3e-4)."""
    ref_latent, latents, poses, clip = fixture_inputs()
    fixture_pipe.record_reference(ref_latent, clip)
    out = fixture_pipe.predict_noise(latents, torch.tensor(500), clip, fixture_pipe.pose_guider(poses), guided=True,
                                     reference=True)
    assert (out - expected("denoiser_output_bank_fp32")).abs().max() < 1e-4
    assert (out - expected("denoiser_output_bank_fp16")).abs().max() < 3e-4


@torch.no_grad()
def test_the_fixture_sees_each_piece(fixture_pipe):
    """The comparison above is sensitive: without the per-frame GroupNorm, or without the reference, it fails;
    the unconditional half never reads the reference."""
    from genhelpers.models.animate_anyone import PerFrameGroupNorm

    ref_latent, latents, poses, clip = fixture_inputs()
    features = fixture_pipe.pose_guider(poses)
    fixture_pipe.record_reference(ref_latent, clip)
    e32 = expected("denoiser_output_bank_fp32")
    no_ref = fixture_pipe.predict_noise(latents, torch.tensor(500), clip, features, guided=True, reference=False)
    assert (no_ref[1] - e32[1]).abs().max() > 0.1 and (no_ref[0] - e32[0]).abs().max() < 1e-4
    norms = [m for n, m in fixture_pipe.unet.named_modules() if isinstance(m, PerFrameGroupNorm)]
    assert len(norms) == 21  # every motion module: 2 per down block, 3 per up block, 1 in the middle
    try:
        for m in norms:
            m.__class__ = torch.nn.GroupNorm
        joint = fixture_pipe.predict_noise(latents, torch.tensor(500), clip, features, guided=True, reference=True)
    finally:
        for m in norms:
            m.__class__ = PerFrameGroupNorm
    assert (joint - e32).abs().max() > 0.1


def test_the_scheduler_is_moores():
    from genhelpers.models.animate_anyone_weights import SCHEDULER

    facts = FACTS["moore_maths"]["scheduler"]
    assert {k: facts[k] for k in SCHEDULER} == SCHEDULER


# ------------------------------------------------------------------------------- the converter and its opt-in
@pytest.fixture(scope="module")
def converted():
    from genhelpers.models import animate_anyone_weights as aw

    return aw.convert(aw.TWIN, "tiny:sd-image-variations", "tiny:sd-vae-ft-mse", allow_pickle=True, dtype="float32")


def test_the_pickles_need_the_opt_in(tmp_path):
    """A folder of Moore's files (an attached Kaggle dataset, say) not converted yet: refused, nothing written."""
    from genhelpers.hub.weights import twin_folder
    from genhelpers.models import animate_anyone_weights as aw

    shutil.copytree(twin_folder("animate-anyone"), tmp_path / "moore")
    with pytest.raises(ParameterError, match="pickles only.*set allow_pickle=True") as e:
        aw.convert(str(tmp_path / "moore"), "tiny:sd-image-variations", "tiny:sd-vae-ft-mse", allow_pickle=False,
                   dtype="float32")
    assert e.value.parameter == "allow_pickle"
    assert not aw.converted_dir(str(tmp_path / "moore"), "float32").exists()  # nothing converted, nothing written


def test_a_folder_without_the_files_is_refused(tmp_path):
    from genhelpers.models.animate_anyone_weights import check_source

    with pytest.raises(ParameterError, match="holds neither Moore-AnimateAnyone's files"):
        check_source("model", str(tmp_path))


def test_the_converted_folder_holds_moores_weights(converted):
    """Converted once: every tensor of the pickles, under diffusers' names; the reference UNet's missing head is
    zeros; a second call returns the same folder without reading a pickle."""
    from safetensors.torch import load_file

    from genhelpers.hub.weights import twin_folder
    from genhelpers.models import animate_anyone_weights as aw

    assert sorted(p.name for p in converted.iterdir()) == sorted(
        ["converted.json", "model_index.json", "feature_extractor", "image_encoder", "pose_guider", "reference_unet",
         "scheduler", "unet", "vae"])
    moore = twin_folder("animate-anyone")
    den = torch.load(moore / "denoising_unet.pth", weights_only=True)
    mm = torch.load(moore / "motion_module.pth", weights_only=True)
    unet = load_file(converted / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(unet[k], v) for k, v in den.items())
    key = next(k for k in mm if k.endswith("attention_blocks.1.to_v.weight"))
    new = key.replace(".temporal_transformer", "").replace("attention_blocks.1", "attn2")
    assert torch.equal(unet[new], mm[key])
    ref = load_file(converted / "reference_unet" / "diffusion_pytorch_model.safetensors")
    assert not ref["conv_out.weight"].any() and torch.equal(ref["conv_norm_out.weight"], torch.ones(8))
    assert aw.convert(aw.TWIN, allow_pickle=False, dtype="float32") == converted  # no opt-in needed any more


def test_a_file_in_another_layout_is_refused(tmp_path):
    from genhelpers.hub.weights import twin_folder
    from genhelpers.models import animate_anyone_weights as aw

    for f in aw.FILES:
        shutil.copy(twin_folder("animate-anyone") / f, tmp_path / f)
    state = torch.load(tmp_path / "motion_module.pth", weights_only=True)
    state = {k.replace("attention_blocks.0", "attention_blocks.9"): v for k, v in state.items()}
    torch.save(state, tmp_path / "motion_module.pth")
    with pytest.raises(ValueError, match="motion_module.pth: the file's keys are not the layout"):
        aw.denoising_unet(tmp_path, *aw.base_configs(aw.TWIN), torch.float32)


def test_the_loaded_pipeline_has_the_fixes(converted):
    from genhelpers.models.animate_anyone import PerFrameGroupNorm, ReferenceReader, ReferenceWriter
    from genhelpers.platform.runtime import Runtime

    pipe = genhelpers.load(str(converted), Runtime("local", (), "float32"), memory=None, quiet=True)
    assert type(pipe).__name__ == "AnimateAnyonePipeline"
    assert sum(isinstance(m, PerFrameGroupNorm) for m in pipe.unet.modules()) == 21
    readers = [p for p in pipe.unet.attn_processors.values() if isinstance(p, ReferenceReader)]
    writers = [p for p in pipe.reference_unet.attn_processors.values() if isinstance(p, ReferenceWriter)]
    assert len(readers) == len(writers) == 16 and {r.name for r in readers} == {w.name for w in writers}
    pipe.enable_attention_slicing()  # the lean plans slice attention: the reference layers must survive it
    assert sum(isinstance(p, ReferenceReader) for p in pipe.unet.attn_processors.values()) == 16
    sched = pipe.scheduler.config
    assert sched.prediction_type == "v_prediction" and sched.rescale_betas_zero_snr
    assert sched.timestep_spacing == "trailing"


# ------------------------------------------------------------------------------- no dead paths
@pytest.fixture(scope="module")
def twin_pipe(converted):
    from genhelpers.platform.runtime import Runtime

    pipe = genhelpers.load(str(converted), Runtime("local", (), "float32"), memory=None, quiet=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _character(colour=(200, 40, 40)):
    from genhelpers.classroom.poses import demo_character

    im = demo_character(64, 64)
    arr = np.asarray(im).copy()
    arr[(arr == (200, 40, 40)).all(-1)] = colour  # the shirt
    return Image.fromarray(arr)


def _latents(pipe, **kw):
    from genhelpers.classroom.poses import pose_strip

    args = dict(reference_image=_character(), pose_images=pose_strip("wave", 3, 64, 64), num_inference_steps=2,
                height=64, width=64, output_type="latent", generator=torch.Generator().manual_seed(0))
    return pipe(**{**args, **kw})


@pytest.mark.parametrize("change", ["reference_image", "pose_images", "reference_attention", "guidance_scale"])
def test_every_conditioning_input_changes_the_clip(twin_pipe, change):
    from genhelpers.classroom.poses import pose_strip

    other = {"reference_image": _character((40, 200, 40)), "pose_images": pose_strip("jump", 3, 64, 64),
             "reference_attention": False, "guidance_scale": 1.0}[change]
    assert (_latents(twin_pipe) - _latents(twin_pipe, **{change: other})).abs().max() > 1e-3


def test_the_motion_modules_couple_the_frames(twin_pipe):
    """Changing frame 0's starting noise changes frame 2's result: the frames attend to each other."""
    noise = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    changed = noise.clone()
    changed[:, :, 0] = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    a, b = _latents(twin_pipe, latents=noise), _latents(twin_pipe, latents=changed)
    assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 1e-3


def test_the_moore_twin_has_no_dead_layer(converted):
    """The twin health checks, on the folder the twin converts to (the published layout is raw state dicts)."""
    from .test_twin_health import modules_of

    for name, model in modules_of(converted):
        for mod_name, m in model.named_modules():
            if isinstance(m, torch.nn.GroupNorm):
                assert m.num_channels // m.num_groups >= 2, f"{name}.{mod_name}"
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.numel() > 1 and not (
                    name == "reference_unet" and mod_name == "conv_out"):  # the published head is absent: zeros
                assert m.weight.abs().sum() > 0, f"{name}.{mod_name} is all zero"


@pytest.fixture(scope="module")
def stock(twins):
    from diffusers import AnimateDiffControlNetPipeline

    from genhelpers.models.ip_adapter import load_ip_adapter
    from genhelpers.platform.runtime import Runtime

    cpu = Runtime("local", (), "float32")
    base = genhelpers.load("tiny:sd15", cpu, memory=None, quiet=True, pipeline="AnimateDiffPipeline",
                           motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")
    load_ip_adapter(base, "tiny:ip-adapter-sd15", "tiny:ip-adapter-image-encoder")
    controlnet = genhelpers.load("tiny:controlnet-openpose", cpu, memory=None, quiet=True)
    pipe = AnimateDiffControlNetPipeline.from_pipe(base, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("change", ["conditioning_frames", "ip_adapter_image", "ip_adapter_scale"])
def test_the_stock_routes_inputs_change_the_clip(stock, change):
    from genhelpers.classroom.poses import pose_strip

    def run(scale=0.7, **kw):
        stock.set_ip_adapter_scale(scale)
        args = dict(prompt="a boy", num_frames=3, height=64, width=64, num_inference_steps=2, output_type="np",
                    conditioning_frames=pose_strip("wave", 3, 64, 64), ip_adapter_image=_character(),
                    generator=torch.Generator().manual_seed(0))
        return stock(**{**args, **kw}).frames[0]

    other = {"conditioning_frames": {"conditioning_frames": pose_strip("jump", 3, 64, 64)},
             "ip_adapter_image": {"ip_adapter_image": Image.new("RGB", (64, 64), (0, 0, 255))},
             "ip_adapter_scale": {"scale": 0.0}}[change]
    assert np.abs(run() - run(**other)).max() > 1e-3
    assert sum("IPAdapter" in type(p).__name__ for p in stock.unet.attn_processors.values()) == 16


# ------------------------------------------------------------------------------- pose pictures
def test_the_mapping_and_the_projection_follow_the_recorded_facts():
    from genhelpers.classroom import poses

    mapping = FACTS["humanml3d22_to_openpose18"]["as_list"]
    assert [None if k == 1 else j for k, j in enumerate(poses.FROM_JOINT)] == mapping
    assert [list(pair) for pair in poses.LIMBS] == FACTS["openpose18"]["limbs_drawn_0_based"]
    assert [list(c) for c in poses.COLOURS] == FACTS["openpose18"]["colors_rgb"]
    kp = poses.keypoints(poses.motion_joints("wave", 8, seed=0))  # variant 0: the left arm
    assert kp[-1, 7, 0] > kp[-1, 4, 0] and kp[-1, 7, 1] < kp[-1, 1, 1]  # left wrist: image right, above the neck
    joints = poses.motion_joints("walk", 4, seed=1)
    kp = poses.keypoints(joints)
    assert np.allclose(kp[:, 1, 1], -(joints[:, 16, 1] + joints[:, 17, 1]) / 2)  # the neck: mean of the shoulders


def test_the_face_is_left_out_when_the_figure_faces_away():
    from genhelpers.classroom import poses

    joints = poses.motion_joints("walk", 2, seed=0)
    turned = joints.copy()
    turned[1] = joints[0] * np.array([-1, 1, -1])  # the same pose, turned half round about the vertical
    kp = poses.keypoints(turned)
    assert not np.isnan(kp[0, 14:]).any() and np.isnan(kp[1, 14:]).all()


def test_the_drawing_is_openpose_style():
    from genhelpers.classroom import poses

    strip = poses.pose_strip("jump", 4, 96, 128)
    assert len(strip) == 4 and strip[0].size == (96, 128)
    arr = np.asarray(strip[0])
    assert (arr[0, 0] == 0).all()  # black background
    colours = {tuple(c) for c in arr.reshape(-1, 3)}
    assert (153, 0, 0) in colours  # limb 0 (neck-right shoulder), dimmed to 60 % with truncation
    assert (255, 0, 0) in colours  # keypoint 0 (nose) at full colour, drawn after the dimming
    kp = poses.fit(poses.keypoints(poses.motion_joints("jump", 8, seed=0)), 96, 128)
    assert np.nanmin(kp[..., 0]) >= 0 and np.nanmax(kp[..., 1]) <= 128  # one scale keeps the clip in the frame


def test_user_pose_pictures_are_read_and_resized(tmp_path):
    from genhelpers.classroom import poses

    Image.new("RGB", (30, 40), (9, 9, 9)).save(tmp_path / "p.png")
    assert poses.load_poses([tmp_path / "p.png"], 64, 32)[0].size == (64, 32)
    with pytest.raises(ParameterError, match=r"pose_images\[1\]"):
        poses.load_poses([tmp_path / "p.png", tmp_path / "missing.png"], 64, 32)


# ------------------------------------------------------------------------------- the published files, downloaded
TREES = json.loads((REFERENCE / "animate_anyone" / "hub_trees.json").read_text())["repos"]


@pytest.fixture
def hub(twins, tmp_path, monkeypatch):
    """A local hub serving the five repositories' listings with the twins' bytes, to the real client."""

    from genhelpers.hub.weights import twin_folder
    from genhelpers.models import animate_anyone_weights as aw

    from .local_hub import Hub

    configs = aw.base_configs(aw.TWIN)  # the twin's bytes are served: its (tiny) configs go with them
    h94 = tmp_path / "h94"
    for key in ("ip-adapter-sd15", "ip-adapter-image-encoder"):
        shutil.copytree(twin_folder(key), h94, dirs_exist_ok=True)
    served = {"patrolli/AnimateAnyone": twin_folder("animate-anyone"),
              "lambdalabs/sd-image-variations-diffusers": twin_folder("sd-image-variations"),
              "stabilityai/sd-vae-ft-mse": twin_folder("sd-vae-ft-mse"),
              "lllyasviel/control_v11p_sd15_openpose": twin_folder("controlnet-openpose"), "h94/IP-Adapter": h94}
    with Hub({r: {"files": t["files"]} for r, t in TREES.items()}, served) as h:
        h.twin_configs = configs
        h.point_client(monkeypatch, tmp_path / "hub")
        monkeypatch.setenv("GENHELPERS_CACHE", str(tmp_path / "cache"))
        yield h


def files_of(hub, repo):
    return sorted(p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in hub.requests
                  if m == "GET" and p.startswith(f"/{repo}/resolve/"))


def test_moores_files_are_downloaded_only_with_the_opt_in(hub, monkeypatch):
    """Refused before any download without the opt-in; with it, exactly Moore's four files (at the pinned
    revision), the image encoder's folder of the image-variations repository and the VAE's safetensors."""
    from genhelpers.models import animate_anyone_weights as aw

    monkeypatch.setattr(aw, "base_configs", lambda ref: hub.twin_configs)
    with pytest.raises(ParameterError, match="allow_pickle"):
        aw.convert(aw.REPO, allow_pickle=False, dtype="float32")
    assert not [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    folder = aw.convert(aw.REPO, allow_pickle=True, dtype="float32")
    assert files_of(hub, aw.REPO) == sorted(aw.FILES)
    assert any(f"/{aw.REPO}/resolve/{aw.REVISION}/" in p for m, p in hub.requests)
    assert files_of(hub, "lambdalabs/sd-image-variations-diffusers") == [
        "image_encoder/config.json", "image_encoder/pytorch_model.bin", "model_index.json"]
    assert files_of(hub, "stabilityai/sd-vae-ft-mse") == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert json.loads((folder / "converted.json").read_text())["revision"] == aw.REVISION


def test_the_controlnet_and_vae_load_from_their_published_listings(hub):
    from genhelpers.platform.runtime import Runtime

    cn = genhelpers.load("lllyasviel/control_v11p_sd15_openpose", Runtime("local", (), "float32"), memory=None,
                         quiet=True)
    assert type(cn).__name__ == "ControlNetModel"
    assert files_of(hub, "lllyasviel/control_v11p_sd15_openpose") == ["config.json",
                                                                     "diffusion_pytorch_model.safetensors"]


def test_the_doctor_plans_both_routes():
    from genhelpers.platform.machines import runtime_for
    from genhelpers.runs import doctor

    from .notebooks.common import PROFILES

    row = doctor.row("animate_anyone", PROFILES["animate_anyone"]["kaggle-t4"], runtime_for("T4"))
    assert row["fits"] and row["frames"] == 16 and "patrolli/AnimateAnyone" in row["models"]
    assert "two routes" in row["advice"] and "h94/IP-Adapter" not in row["models"]
