"""GPT4Motion's cross-frame attention, pinned to the authors' rule (tests/reference/gpt4motion/facts.json,
``cross_frame_attention``) by a reference written here from those facts, independent of genhelpers' processor: the
identities the facts list, and a differential test on the twins' weights — the authors' sequential scheme (frame 0
first, its keys and values kept per layer and step, then every other frame alone) against our batched processor,
through the same diffusers pipeline, to float rounding."""
import json

import numpy as np
import pytest
import torch

from genhelpers.models import cross_frame
from genhelpers.models import physics_scene as ps

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "gpt4motion" / "facts.json").read_text())
CFA = FACTS["cross_frame_attention"]


def plain(attn, x):
    """Self-attention written out: softmax(Q Kᵀ · scale) V, then the output projection."""
    b, n, _ = x.shape
    h = attn.heads
    q, k, v = (f(x).view(b, n, h, -1).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v))
    out = ((q @ k.transpose(-1, -2) * attn.scale).softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1)
    return attn.to_out[1](attn.to_out[0](out))


def authors_frame(attn, x_i, x_0, alpha):
    """Frame i as the facts describe it: keys [α·K_i ; K_0], values [V_i ; V_0] (concatenated over tokens)."""
    b, n, _ = x_i.shape
    h = attn.heads
    q = attn.to_q(x_i).view(b, n, h, -1).transpose(1, 2)
    k = torch.cat([alpha * attn.to_k(x_i), attn.to_k(x_0)], dim=1).view(b, 2 * n, h, -1).transpose(1, 2)
    v = torch.cat([attn.to_v(x_i), attn.to_v(x_0)], dim=1).view(b, 2 * n, h, -1).transpose(1, 2)
    out = ((q @ k.transpose(-1, -2) * attn.scale).softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1)
    return attn.to_out[1](attn.to_out[0](out))


@pytest.fixture
def layer():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8).eval()


def batch(frames, tokens=6, groups=2, seed=1):
    """Hidden states laid out as diffusers lays out guidance: [uncond f0..fN-1, cond f0..fN-1]."""
    return torch.randn(groups * frames, tokens, 16, generator=torch.Generator().manual_seed(seed))


def halves(x, frames):
    return x.view(-1, frames, *x.shape[1:])


@torch.no_grad()
def test_frame_zero_is_plain_attention_and_never_depends_on_other_frames(layer):
    proc = cross_frame.CrossFrameAttention(alpha=CFA_ALPHA, frames=4)
    x = batch(4)
    out = halves(proc(layer, x), 4)
    assert torch.allclose(out[:, 0], plain(layer, halves(x, 4)[:, 0]), atol=1e-6)
    y = halves(x.clone(), 4)
    y[:, 1:] += 5.0
    assert torch.allclose(halves(proc(layer, y.reshape(x.shape)), 4)[:, 0], out[:, 0], atol=1e-6)


@torch.no_grad()
def test_alpha_one_on_identical_frames_is_plain_attention(layer):
    """Duplicated keys and values do not change a softmax average (the facts' first identity)."""
    proc = cross_frame.CrossFrameAttention(alpha=1.0, frames=3)
    one = batch(1)
    same = halves(one, 1).repeat(1, 3, 1, 1).reshape(6, *one.shape[1:])
    assert torch.allclose(proc(layer, same), plain(layer, same), atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("alpha", [0.9, 0.5])
def test_every_later_frame_follows_the_authors_rule(layer, alpha):
    proc = cross_frame.CrossFrameAttention(alpha=alpha, frames=3)
    x = batch(3)
    out, xs = halves(proc(layer, x), 3), halves(x, 3)
    for i in (1, 2):
        assert torch.allclose(out[:, i], authors_frame(layer, xs[:, i], xs[:, 0], alpha), atol=1e-6)
    off = cross_frame.CrossFrameAttention(alpha=alpha, frames=3, enabled=False)
    assert torch.allclose(off(layer, x), plain(layer, x), atol=1e-6)
    assert (out[:, 1:] - halves(plain(layer, x), 3)[:, 1:]).abs().max() > 1e-3  # it does something


def test_a_batch_that_does_not_hold_the_frames_is_refused(layer):
    with pytest.raises(ValueError, match="not a multiple of frames=4"):
        cross_frame.CrossFrameAttention(frames=4)(layer, batch(3, groups=2))


def test_chunks_start_with_frame_zero():
    assert cross_frame.chunks(7, 4) == [[0, 1, 2, 3, 4], [0, 5, 6]]
    assert cross_frame.chunks(1, 4) == [[0]] and cross_frame.chunks(5, 4) == [[0, 1, 2, 3, 4]]


def test_background_change_counts_only_background_in_both_frames():
    frames = np.zeros((3, 2, 2, 3))
    frames[1, 0, 0] = 1.0  # a change on a pixel that is background in both frames 0 and 1
    frames[2, 1, 1] = 1.0  # a change where frame 2 has an object: not counted
    background = np.ones((3, 2, 2), bool)
    background[2, 1, 1] = False
    assert cross_frame.background_change(frames, background) == [0.25, pytest.approx(1 / 3, abs=1e-5)]


# ------------------------------------------------------------------------------------------------ on the twins
CFA_ALPHA = FACTS["video_generation"]["cfa_alpha"]


class Bank:
    def __init__(self, alpha):
        self.alpha, self.mode, self.kv = alpha, "cache", {}


class AuthorsProcessor:
    """The authors' scheme, from the facts: in "cache" mode (frame 0, made first) plain self-attention that keeps
    each step's K and V (both guidance halves); in "use" mode (any later frame, made alone) keys [α·K_i ; K_0[step]]
    and values [V_i ; V_0[step]]; a per-layer step counter reset before every frame."""

    def __init__(self, name, bank):
        self.name, self.bank, self.step = name, bank, 0

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b, n, _ = hidden_states.shape
        h = attn.heads
        q, k, v = (f(hidden_states).view(b, n, h, -1).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v))
        if self.bank.mode == "cache":
            self.bank.kv[self.name, self.step] = (k, v)
            keys, values = k, v
        else:
            k0, v0 = self.bank.kv[self.name, self.step]
            keys, values = torch.cat([self.bank.alpha * k, k0], dim=2), torch.cat([v, v0], dim=2)
        self.step += 1
        out = ((q @ keys.transpose(-1, -2) * attn.scale).softmax(-1) @ values).transpose(1, 2).reshape(b, n, -1)
        return attn.to_out[1](attn.to_out[0](out))


@pytest.fixture(scope="module")
def setup(twins):
    from diffusers import ControlNetModel, DDIMScheduler, MultiControlNetModel, StableDiffusionXLControlNetPipeline

    nets = MultiControlNetModel([ControlNetModel.from_pretrained(twins["controlnet-depth-sdxl-1.0"]),
                                 ControlNetModel.from_pretrained(twins["controlnet-canny-sdxl-1.0"])])
    pipe = StableDiffusionXLControlNetPipeline.from_pretrained(twins["sdxl-base"], controlnet=nets)
    pipe.set_progress_bar_config(disable=True)
    cfg = {k: v for k, v in FACTS["video_generation"]["scheduler"].items() if k not in ("class", "eta")}
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **cfg)
    plan = ps.default_plan(objects=[ps.default_object(size=0.9, z=3.0, vx=1.5, spin=4.0)])
    sim = ps.simulate(plan, 4, 6)
    maps = ps.render(plan, sim, 64, 64)
    depth = torch.from_numpy(ps.depth_maps(maps["depth"]))[:, None].repeat(1, 3, 1, 1)
    edges = torch.from_numpy(ps.edge_maps(maps["labels"])).float()[:, None].repeat(1, 3, 1, 1)
    embeds = pipe.encode_prompt("a ball bouncing on a court", negative_prompt="blurry")
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(FACTS["video_generation"]["seed"]))
    defaults = dict(pipe.unet.attn_processors)

    @torch.no_grad()
    def run(idx, images=None):
        n = len(idx)
        e, ne, p, npl = embeds
        return pipe(prompt_embeds=e.repeat(n, 1, 1), negative_prompt_embeds=ne.repeat(n, 1, 1),
                    pooled_prompt_embeds=p.repeat(n, 1), negative_pooled_prompt_embeds=npl.repeat(n, 1),
                    image=images or [depth[idx], edges[idx]], controlnet_conditioning_scale=[0.8, 0.6],
                    num_inference_steps=3, guidance_scale=5.0, eta=0.0, latents=noise.repeat(n, 1, 1, 1),
                    output_type="latent").images

    run.maps = depth, edges

    return pipe, run, defaults


def authors_clip(pipe, run, defaults, frames):
    bank = Bank(CFA_ALPHA)
    procs = {name: AuthorsProcessor(name, bank) for name in defaults if name.endswith("attn1.processor")}
    pipe.unet.set_attn_processor({name: procs.get(name, p) for name, p in defaults.items()})
    out = []
    for i in range(frames):
        bank.mode = "cache" if i == 0 else "use"
        for p in procs.values():
            p.step = 0
        out.append(run([i])[0])
    pipe.unet.set_attn_processor(dict(defaults))  # (diffusers empties the dict it is given)
    return torch.stack(out)


def test_batched_cross_frame_attention_equals_the_authors_sequential_cache(setup):
    pipe, run, defaults = setup
    reference = authors_clip(pipe, run, defaults, 4)
    cfa = cross_frame.install(pipe.unet, CFA_ALPHA)
    try:
        touched = [n for n, p in pipe.unet.attn_processors.items() if p is cfa]
        assert touched and all(n.endswith("attn1.processor") for n in touched)
        assert len(touched) == len([n for n in defaults if n.endswith("attn1.processor")])
        assert all(not isinstance(p, cross_frame.CrossFrameAttention)
                   for net in pipe.controlnet.nets for p in net.attn_processors.values())  # ControlNets untouched
        cfa.frames = 4
        ours = run([0, 1, 2, 3])
        cfa.enabled = False
        without = run([0, 1, 2, 3])
    finally:
        pipe.unet.set_attn_processor(dict(defaults))  # (diffusers empties the dict it is given)
    assert (ours - reference).abs().max() < 1e-5
    assert (ours[1:] - without[1:]).abs().max() > 100 * (ours - reference).abs().max()  # the effect is real
    assert (ours[0] - without[0]).abs().max() < 1e-5  # frame 0 never sees the others


def test_chunks_that_start_with_frame_zero_equal_one_call(setup):
    pipe, run, defaults = setup
    cfa = cross_frame.install(pipe.unet, CFA_ALPHA)
    try:
        cfa.frames = 4
        whole = run([0, 1, 2, 3])
        parts = []
        for idx in cross_frame.chunks(4, 2):
            cfa.frames = len(idx)
            made = run(idx)
            parts += list(made if not parts else made[1:])
    finally:
        pipe.unet.set_attn_processor(dict(defaults))  # (diffusers empties the dict it is given)
    assert (torch.stack(parts) - whole).abs().max() < 1e-5


def test_the_depth_and_the_edge_maps_each_change_the_frames(setup):
    """No dead conditioning path on the twins: the depth map alone, and the edge map alone, move the result."""
    _, run, _ = setup
    depth, edges = run.maps
    base = run([1])
    moved_depth = run([1], images=[depth[[3]], edges[[1]]])
    moved_edges = run([1], images=[depth[[1]], edges[[3]]])
    assert (moved_depth - base).abs().max() > 1e-3 and (moved_edges - base).abs().max() > 1e-3
