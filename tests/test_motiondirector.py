"""MotionDirector's dual-path LoRA (genhelpers.models.motiondirector, motiondirector_lora) pinned to the authors'
behaviour recorded in tests/reference/motion_director/ (facts.json, lora_list_order.json, tiny_lora_fixture.json:
their traversal and their forward on tiny weights, outputs only; their code is neither copied nor run here).

Each reference below is written from the recorded facts, independently of the module: the debiased loss from its
formula, the LoRA placement from the authors' own module list, the published list format from the authors'
forward, the training step's two paths from the recorded per-step order."""
import json
import math
import re
import zlib

import pytest
import torch

from genhelpers.errors import ParameterError
from genhelpers.models import motiondirector as md
from genhelpers.models import motiondirector_lora as mdl

from .conftest import REFERENCE
from .fixture_rule import rule_weights  # tiny_lora_fixture.json's rule

FACTS = json.loads((REFERENCE / "motion_director" / "facts.json").read_text())
ORDER = json.loads((REFERENCE / "motion_director" / "lora_list_order.json").read_text())
FIXTURE = json.loads((REFERENCE / "motion_director" / "tiny_lora_fixture.json").read_text())
TARGETS = FACTS["lora_targets"]


def seeded(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ the loss
def test_debiased_loss_is_the_recorded_example():
    """facts.json's numeric example, and the formula written out here from its words (α = √(β² + 1), β = 1)."""
    ex = FACTS["training"]["debiased_loss"]["numeric_example"]
    pred, target = torch.randn(1, 4, 5, 3, 3, generator=seeded(21)), torch.randn(1, 4, 5, 3, 3, generator=seeded(22))
    a = ex["anchor"]
    alpha = math.sqrt(2.0)
    reference = ((alpha * pred - pred[:, :, a:a + 1]) - (alpha * target - target[:, :, a:a + 1])).pow(2).mean()
    mse, ad = md.debiased_loss(pred, target, a)
    assert mse.item() == pytest.approx(ex["mse"], abs=1e-6)
    assert ad.item() == pytest.approx(ex["L_ad"], abs=1e-6) and reference.item() == pytest.approx(ex["L_ad"], abs=1e-6)
    assert (mse + ad).item() == pytest.approx(ex["total"], abs=1e-6)


# ------------------------------------------------------------------------------------------------ placement
@pytest.fixture(scope="module")
def published_unet():
    """The published UNet3D (zeroscope_v2_576w's recorded config) on the meta device."""
    from genhelpers.hub import published

    with torch.device("meta"):
        return published.meta_model("zeroscope-v2-576w", "unet")


@pytest.mark.parametrize("path", ["spatial", "temporal"])
def test_lora_placement_is_the_authors_module_list(published_unet, path):
    """Our regexes select exactly the layers the authors' traversal lists, in their order (the order of the
    published list files), with their shapes at rank 32; so do the regexes recorded in facts.json."""
    ours = md.selected(published_unet, path)
    theirs = [name for name, _, _ in ORDER[path]]
    assert ours == theirs and len(ours) == TARGETS["counts_zeroscope"][f"{path}_layers"]
    rx = re.compile(TARGETS[f"peft_regex_{path}"])
    assert [n for n, m in published_unet.named_modules() if isinstance(m, torch.nn.Linear) and rx.match(n)] == ours
    for name, up, down in ORDER[path]:
        layer = published_unet.get_submodule(name)
        assert up == [layer.out_features, 32] and down == [32, layer.in_features]
    # no layer on both paths; the spatial path never on a temporal transformer nor on the text cross-attention
    assert not set(md.selected(published_unet, "spatial")) & set(md.selected(published_unet, "temporal"))
    if path == "spatial":
        assert not any("temp_attentions" in n or "transformer_in" in n or ".attn2." in n for n in ours)


def test_the_lora_sizes_are_the_published_files():
    """At rank 32 in float32, both LoRAs weigh what the published files weigh (35.2 MB and 50 MB)."""
    c = md.counts("zeroscope-v2-576w", 32)
    assert 4 * c["spatial"] == ORDER["counts"]["spatial_bytes_fp32"] == 35_143_680
    assert 4 * c["temporal"] == ORDER["counts"]["temporal_bytes_fp32"] == 49_889_280


def test_other_targets_narrow_the_selection(published_unet):
    only_attention = md.selected(published_unet, "temporal", ["attn1", "attn2"])
    assert len(only_attention) == 17 * 8 and all(".ff." not in n for n in only_attention)
    with_text = md.selected(published_unet, "spatial", ["attn2"])
    assert with_text and all(".attn2." in n for n in with_text)


# ------------------------------------------------------------------------------------------------ the authors' forward
@pytest.fixture(scope="module")
def fixture_unet():
    from diffusers import UNet3DConditionModel

    unet = UNet3DConditionModel(**FIXTURE["tiny_unet3d_config"]).eval()
    unet.load_state_dict(rule_weights({k: list(v.shape) for k, v in unet.state_dict().items()}, "unet"))
    return unet


def fixture_inputs():
    return (torch.randn(1, 4, 3, 8, 8, generator=seeded(11)), torch.tensor(FIXTURE["inputs"]["timestep"]),
            torch.randn(1, 5, 16, generator=seeded(12)))


def authors_list_file(unet, path):
    """The authors' file for the fixture: [up_0, down_0, …] as a pickled list of Parameters."""
    shapes = {}
    for name in FIXTURE["order"]:
        layer = unet.get_submodule(name)
        layer = getattr(layer, "base_layer", layer)
        shapes[f"{name}.lora_up.weight"] = [layer.out_features, FIXTURE["lora_rank"]]
        shapes[f"{name}.lora_down.weight"] = [FIXTURE["lora_rank"], layer.in_features]
    w = rule_weights(shapes, "lora")
    tensors = []
    for name in FIXTURE["order"]:
        tensors += [torch.nn.Parameter(w[f"{name}.lora_up.weight"]), torch.nn.Parameter(w[f"{name}.lora_down.weight"])]
    torch.save(tensors, path)
    return path


def test_a_published_list_file_reproduces_the_authors_forward(fixture_unet, tmp_path):
    """The authors' save format on tiny weights → our converter → diffusers 0.42 + peft: the authors' output (their
    UNet3D copy with their LoRA injector, recorded in tiny_lora_fixture.json), with the LoRA and without."""
    assert md.selected(fixture_unet, "temporal") == FIXTURE["order"]
    file = authors_list_file(fixture_unet, tmp_path / "unet.pt")
    with pytest.raises(ParameterError, match="allow_pickle=True"):
        mdl.load(fixture_unet, str(file))  # a pickle: refused without the opt-in
    facts = mdl.load(fixture_unet, str(file), allow_pickle=True)
    assert facts["rank"] == FIXTURE["lora_rank"] and facts["layers"] == len(FIXTURE["order"]) and facts["pickle"]
    expected = torch.tensor(FIXTURE["expected_output_with_temporal_lora"]).reshape(FIXTURE["output_shape"])
    without = torch.tensor(FIXTURE["expected_output_without"]).reshape(FIXTURE["output_shape"])
    with torch.no_grad():
        md.use(fixture_unet, "published")
        got = fixture_unet(*fixture_inputs()).sample
        md.use(fixture_unet)
        plain = fixture_unet(*fixture_inputs()).sample
    assert torch.allclose(got, expected, atol=1e-5) and torch.allclose(plain, without, atol=1e-5)
    assert (expected - without).abs().max() > 1e-2  # the LoRA matters in the authors' forward too


# ------------------------------------------------------------------------------------------------ the twin's UNet
@pytest.fixture
def twin_unet():
    """The text-to-video twin's UNet3D with both LoRAs, their up-projections made non-zero (as trained)."""
    from diffusers import UNet3DConditionModel

    from genhelpers.twins import registry

    unet = UNet3DConditionModel.from_pretrained(registry.build("modelscope-t2v") / "unet").eval()
    md.inject(unet, 4, seed=0)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.2, generator=seeded(zlib.crc32(name.encode())))
    return unet


def twin_inputs(frames=3):
    return (torch.randn(1, 4, frames, 8, 8, generator=seeded(1)), torch.tensor(500),
            torch.randn(1, 77, 32, generator=seeded(2)))


def no_dropout(unet):
    for m in unet.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def test_each_adapter_switches_on_alone_despite_peft(twin_unet):
    """peft leaves only the last injected adapter active on every layer (facts: the active-adapter trap); use()
    sets each layer's adapters, so each LoRA changes the output alone and together they differ again."""
    placed = md.placed(twin_unet)
    assert len(placed["spatial"]) == 60 and len(placed["temporal"]) == 110
    assert not set(placed["spatial"]) & set(placed["temporal"])
    out = {}
    with torch.no_grad():
        for key in [(), ("temporal",), ("spatial",), ("spatial", "temporal")]:
            md.use(twin_unet, *key)
            out[key] = twin_unet(*twin_inputs()).sample
    for key in [("temporal",), ("spatial",), ("spatial", "temporal")]:
        assert (out[key] - out[()]).abs().max() > 1e-3, key
    assert (out[("spatial", "temporal")] - out[("temporal",)]).abs().max() > 1e-3
    md.use(twin_unet, "spatial", "temporal")
    layer = twin_unet.get_submodule(placed["spatial"][0])
    assert layer.active_adapters == ["spatial"]


def test_the_spatial_lora_lives_only_where_frames_are_seen_alone(twin_unet):
    """The spatial LoRA sits only in the spatial transformers (never on a layer that mixes frames), and its
    training path, a one-frame clip, runs."""
    spatial = md.placed(twin_unet)["spatial"]
    assert all(re.search(r"\.attentions\.\d+\.transformer_blocks\.", n) and "temp_" not in n for n in spatial)
    md.use(twin_unet, "spatial")
    with torch.no_grad():
        x, t, text = twin_inputs()
        assert twin_unet(x[:, :, :1], t, text).sample.shape == (1, 4, 1, 8, 8)


def test_the_two_paths_follow_the_recorded_step(twin_unet):
    """The spatial loss: one frame, spatial LoRA alone, MSE against that frame's noise. The temporal loss: the whole
    clip with both LoRAs (temporal alone when masked), MSE + the debiased term. References written from the facts'
    per-step order, switching peft's layers directly."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    latents, _, text = twin_inputs(4)
    d = {"t": torch.tensor([300]), "noise": torch.randn(latents.shape, generator=seeded(3)), "masked": False,
         "frame": 2, "anchor": 1}
    noisy = scheduler.add_noise(latents, d["noise"], d["t"])

    def switch(*names):
        for m in md.lora_layers(twin_unet):
            m.set_adapter([n for n in names if n in m.lora_A])

    with torch.no_grad():
        switch("spatial")
        ref_s = (twin_unet(noisy[:, :, 2:3], d["t"], text).sample[:, :, 0] - d["noise"][:, :, 2]).pow(2).mean()
        switch("spatial", "temporal")
        pred = twin_unet(noisy, d["t"], text).sample
        r2 = math.sqrt(2)
        ref_t = (pred - d["noise"]).pow(2).mean() + ((r2 * pred - pred[:, :, 1:2])
                                                      - (r2 * d["noise"] - d["noise"][:, :, 1:2])).pow(2).mean()
        switch("temporal")
        pred = twin_unet(noisy, d["t"], text).sample
        ref_masked = (pred - d["noise"]).pow(2).mean()
        assert md.spatial_loss(twin_unet, scheduler, latents, text, d).item() == pytest.approx(ref_s.item(), rel=1e-5)
        assert md.temporal_loss(twin_unet, scheduler, latents, text, d)[0].item() == pytest.approx(ref_t.item(),
                                                                                                rel=1e-5)
        masked = {**d, "masked": True}
        assert md.spatial_loss(twin_unet, scheduler, latents, text, masked) is None
        assert md.temporal_loss(twin_unet, scheduler, latents, text, masked, debias=False)[0].item() == \
            pytest.approx(ref_masked.item(), rel=1e-5)


def test_each_lora_learns_only_from_its_own_path(twin_unet, monkeypatch):
    """One training step: AdamW's first step moves each weight against the sign of its gradient. The spatial
    LoRA moves as the spatial loss's gradient says, the temporal LoRA as the temporal loss's (the spatial LoRA's
    share of the temporal gradient is dropped, as the authors' step does)."""
    from diffusers import DDIMScheduler

    monkeypatch.setattr(md, "SPATIAL_MASK_P", 0.0)  # this step trains both paths
    no_dropout(twin_unet)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    latents, _, text = twin_inputs(4)
    g = seeded(5)
    fixed = [md.draw(g, latents, 1000) for _ in range(2)]  # what train() draws first (its probes)
    d = md.draw(g, latents, 1000)
    assert fixed
    spatial, temporal = md.parameters(twin_unet, "spatial"), md.parameters(twin_unet, "temporal")
    for p in spatial + temporal:
        p.requires_grad_(True)
    grad_s = torch.autograd.grad(md.spatial_loss(twin_unet, scheduler, latents, text, d), spatial)
    md.use(twin_unet, "spatial", "temporal")
    grad_t = torch.autograd.grad(md.temporal_loss(twin_unet, scheduler, latents, text, d)[0], temporal)
    before = [p.detach().clone() for p in spatial + temporal]
    lr = 1e-3
    md.train(twin_unet, latents, text, scheduler, 1, lr, seed=5, probes=2, progress=False)
    for p, b, grad in zip(spatial + temporal, before, grad_s + grad_t, strict=True):
        step = p.detach() - b * (1 - lr * md.WEIGHT_DECAY)  # AdamW: decoupled decay, then −lr·m/(√v + ε)
        big = grad.abs() > 1e-6
        assert torch.equal(torch.sign(step[big]), -torch.sign(grad[big]))


def test_block_checkpointing_gives_the_same_gradients(twin_unet):
    no_dropout(twin_unet)
    md.use(twin_unet, "spatial", "temporal")
    params = md.parameters(twin_unet, "temporal") + md.parameters(twin_unet, "spatial")
    for p in params:
        p.requires_grad_(True)
    twin_unet.train()

    def grads():
        return torch.autograd.grad(twin_unet(*twin_inputs()).sample.square().mean(), params)

    plain = grads()
    with md.block_checkpointing(twin_unet):
        assert all("forward" in vars(b) for b in twin_unet.down_blocks)
        checkpointed = grads()
    assert not any("forward" in vars(b) for b in [*twin_unet.down_blocks, twin_unet.mid_block, *twin_unet.up_blocks])
    assert max((a - b).abs().max().item() for a, b in zip(plain, checkpointed, strict=True)) < 1e-6


def test_the_training_clip_changes_the_lora():
    """Every input matters: two different clips tune different temporal LoRAs; and tuning lowers the probe loss."""
    from diffusers import DDIMScheduler, UNet3DConditionModel

    from genhelpers.twins import registry

    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    text = torch.randn(1, 77, 32, generator=seeded(2))
    loras = []
    for clip_seed in (1, 2):
        unet = UNet3DConditionModel.from_pretrained(registry.build("modelscope-t2v") / "unet").eval()
        md.inject(unet, 4, seed=0)
        latents = torch.randn(1, 4, 3, 8, 8, generator=seeded(clip_seed))
        result = md.train(unet, latents, text, scheduler, 3, 1e-2, seed=0, probes=2, progress=False)
        assert len(result["losses"]["temporal"]) == 3
        assert not any(m.training for m in unet.modules())  # back in eval mode: no dropout when generating
        loras.append(torch.cat([p.flatten() for p in md.parameters(unet, "temporal")]))
    assert (loras[0] - loras[1]).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------ LoRA files
def test_our_lora_file_round_trips_without_pickle(twin_unet, tmp_path):
    from diffusers import UNet3DConditionModel

    from genhelpers.twins import registry

    path = mdl.save_lora(twin_unet, "temporal", tmp_path / "temporal_lora.safetensors")
    fresh = UNet3DConditionModel.from_pretrained(registry.build("modelscope-t2v") / "unet").eval()
    assert not mdl.is_pickle(str(path))
    facts = mdl.load(fresh, str(path))  # no opt-in needed
    assert facts == {"rank": 4, "layers": 110, "file": path.name, "source": str(path), "pickle": False}
    with torch.no_grad():
        md.use(twin_unet, "temporal")
        md.use(fresh, "published")
        assert torch.allclose(twin_unet(*twin_inputs()).sample, fresh(*twin_inputs()).sample, atol=1e-6)


def test_the_converter_refuses_what_it_cannot_place(twin_unet):
    spatial = [torch.zeros(1)] * (2 * 60)
    with pytest.raises(ValueError, match="spatial \\(appearance\\) LoRA"):
        mdl.from_list(twin_unet, spatial)
    with pytest.raises(ValueError, match="not a MotionDirector temporal LoRA"):
        mdl.from_list(twin_unet, [torch.zeros(1)] * 7)
    wrong = [torch.zeros(5, 4), torch.zeros(4, 3)] * 110
    with pytest.raises(ValueError, match="made for another model"):
        mdl.from_list(twin_unet, wrong)


def test_a_pickle_that_is_not_a_list_is_refused(tmp_path, twin_unet):
    torch.save({"state": torch.zeros(2)}, tmp_path / "unet.pt")
    with pytest.raises(ValueError, match="not MotionDirector's list"):
        mdl.read(tmp_path / "unet.pt", twin_unet)


def test_the_lora_twin_changes_the_clip_of_both_text_to_video_twins():
    """The published-LoRA twin fits the ModelScope and ZeroScope twins' UNet3D, and changes its output."""
    from diffusers import UNet3DConditionModel

    from genhelpers.twins import registry

    for key in ("modelscope-t2v", "zeroscope-v2-576w"):
        folder = registry.build(key) / "unet"
        unet = UNet3DConditionModel.from_pretrained(folder, use_safetensors=False if key.startswith("zero") else
                                                    None).eval()
        facts = mdl.load(unet, f"{mdl.TWIN}:zoom_in", allow_pickle=True)
        assert facts["file"] == "150_unet.pt" and facts["rank"] == 4
        with torch.no_grad():
            plain = unet(*twin_inputs()).sample
            md.use(unet, "published")
            assert (unet(*twin_inputs()).sample - plain).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------------ inputs
@pytest.mark.parametrize("name, value, message", [
    ("lora_rank", 0, "lora_rank=0 must be a whole number from 1"),
    ("lora_rank", 2.5, "lora_rank=2.5"),
    ("spatial_targets", ["attn3"], "unknown layer(s) ['attn3']"),
    ("temporal_targets", [], "must be a non-empty list"),
    ("temporal_targets", ["ff", "ff"], "distinct"),
    ("motion_lora", "ruizhaocv/MotionDirector:moonwalk", "has no motion 'moonwalk'"),
    ("motion_lora", "/nowhere/unet.pt", "is not a file or folder here"),
])
def test_bad_lora_parameters_teach(name, value, message):
    import genhelpers

    with pytest.raises(ParameterError, match=re.escape(message)):
        genhelpers.check(**{name: value})


def test_a_published_lora_needs_the_pickle_opt_in_before_anything_loads():
    import genhelpers

    with pytest.raises(ParameterError, match="allow_pickle=True"):
        genhelpers.check(motion_lora="ruizhaocv/MotionDirector:orbit", allow_pickle=False)
    genhelpers.check(motion_lora="ruizhaocv/MotionDirector:orbit", allow_pickle=True)
    genhelpers.check(motion_lora=None, allow_pickle=False)


def test_a_clip_that_is_not_a_clip_is_refused(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(ParameterError, match="could not be read as a clip"):
        md.check_clip(str(tmp_path / "notes.mp4"), 4)
    (tmp_path / "frames").mkdir()
    with pytest.raises(ParameterError, match="has 0 frame\\(s\\), fewer than frames=4"):
        md.check_clip(str(tmp_path / "frames"), 4)
    with pytest.raises(ParameterError, match="frames=1: a motion needs at least 2 frames"):
        md.check_clip(None, 1)
    from genhelpers.models import tuneavideo

    for i, frame in enumerate(tuneavideo.demo_clip(4, 64)):
        frame.save(tmp_path / "frames" / f"{i:03d}.png")
    md.check_clip(str(tmp_path / "frames"), 4)


def test_allow_pickle_permits_pickles_without_requiring_them(cpu_runtime):
    """A safetensors model still loads with allow_pickle=True (the notebook's smoke run opts in for the LoRA)."""
    import genhelpers

    pipe = genhelpers.load("tiny:modelscope-t2v", cpu_runtime, memory=None, quiet=True, allow_pickle=True)
    assert type(pipe.unet).__name__ == "UNet3DConditionModel"


# ------------------------------------------------------------------------------------------------ the hub
@pytest.fixture
def lora_hub(monkeypatch, tmp_path):
    """The published LoRA repository's listing (hub_tree_additions.json) served to the real huggingface_hub
    client, the files' bytes from the LoRA twin (same layout)."""

    from genhelpers.twins import registry

    from .local_hub import Hub

    listing = json.loads((REFERENCE / "hub_tree_additions.json").read_text())["new_repos"]
    repo = "ruizhaocv/MotionDirector"
    with Hub({repo: {"files": listing[repo]["files"], "gated": False}},
             {repo: registry.build("motiondirector-lora")}) as hub:
        hub.point_client(monkeypatch, tmp_path / "hub")
        yield hub


def test_a_published_lora_downloads_one_file_and_loads(lora_hub, twin_unet):
    with pytest.raises(ParameterError, match="allow_pickle=True"):
        mdl.locate("ruizhaocv/MotionDirector:zoom_in")
    assert lora_hub.requests == []  # refused before anything was asked of the hub
    facts = mdl.load(twin_unet, "ruizhaocv/MotionDirector:zoom_in", allow_pickle=True)
    downloads = [p for m, p in lora_hub.requests if m == "GET" and "/resolve/" in p]
    assert len(downloads) == 1 and downloads[0].endswith("zoom_in/checkpoint-default/temporal/lora/150_unet.pt")
    assert facts["file"] == "150_unet.pt" and facts["layers"] == 110


# ------------------------------------------------------------------------------------------------ memory
def test_doctor_plans_the_training_on_a_t4():
    """The kaggle-t4 profile's training fits one T4: frozen float16 model + float32 LoRAs with AdamW + activations."""
    import yaml

    from genhelpers.platform.machines import runtime_for
    from genhelpers.runs import doctor

    from .conftest import NOTEBOOKS

    params = yaml.safe_load((NOTEBOOKS / "profiles.yaml").read_text())["motion_director"]["kaggle-t4"]
    row = doctor.row("motion_director", params, runtime_for("T4x2"))
    assert row["fits"] and row["plan"] == "gpu" and 3 < row["gpu_gib"] < 15 and "LoRA" in row["advice"]
    lean = doctor.row("motion_director", {**params, "frames": 64, "size": 512, "gradient_checkpointing": False},
                      runtime_for("T4x2"))
    assert not lean["fits"] and "gradient_checkpointing" in lean["advice"]
    cpu = doctor.row("motion_director", params, runtime_for("CPU"))
    assert cpu["plan"] == "cpu" and not cpu["fits"]
