"""MVDiffusion pinned to the authors' maths on tiny weights (facts: tests/reference/mvdiffusion).

The reference below is written from the recorded facts only (cameras, correspondence, positional_encoding,
caa_block, placement_in_unet, sampling), independently of genhelpers: the closed-form cameras, homographies by
``torch.inverse`` products, the CAA block as a plain loop over views, neighbours and the nine samples (one
``grid_sample`` each) with an explicit softmax, attached by this file's own hooks to a fresh stock UNet read from
the twin's folder, with the CAA weights read straight from the converted safetensors file; then DDIM with
classifier-free guidance. The authors' code is never run here; a loop written the same way reproduced their
``PanoGenerator.inference`` pixel for pixel (tests/reference/mvdiffusion/README.md). Mistakes in the block move the
reference far from the pipeline (a neighbour's features read at the other neighbour's points, masked tokens
dropped instead of zeroed, the code added to the residual, x and y swapped in the sampling grid): the comparison
sees them. The order of the 18 tokens (neighbour order, dx outer / dy inner) provably does not matter."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

import genhelpers

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "mvdiffusion" / "reference_behaviour.json").read_text())
M, SIZE = 8, 64


def cams(m, size, fov=90.0, offset=0.0, yaws=None):
    f = 0.5 * size / math.tan(math.radians(fov) / 2)
    c = (size - 1) / 2
    K = torch.tensor([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=torch.float32).expand(m, 3, 3).clone()
    angles = yaws if yaws is not None else [(offset + 45 * i) % 360 for i in range(m)]
    R = [[[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]] for t in map(math.radians, angles)]
    return K, torch.tensor(R, dtype=torch.float32)


def dehom(H, pts):
    P = torch.cat([pts, torch.ones_like(pts[..., :1])], -1)
    p = (H @ P.reshape(-1, 3).T).T.reshape(P.shape)
    return p[..., :2] / p[..., 2:]


def code(d, freqs):  # [sin dx f, sin dy f, cos dx f, cos dy f]
    a = d[..., :, None] * freqs
    return torch.cat([a.sin(), a.cos()], -2).flatten(-2)


def caa_reference(w, X, K, R, size, mutation=None):
    """One CAA block (weights ``w``, features X (B, M, C, h, w)) written out from the facts."""
    B, m, C, h, wd = X.shape
    s = size // h
    freqs = w["pe.freq_bands"].flatten()
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(wd), indexing="ij")
    p = torch.stack([xs * s + s // 2, ys * s + s // 2], -1).float()
    out = []
    for i in range(m):
        toks, valid, offs = [], [], []
        pair = ((i + 1) % m, (i - 1) % m) if mutation == "token order" else ((i - 1) % m, (i + 1) % m)
        for j in pair:
            Hij = K[j] @ torch.inverse(R[j]) @ R[i] @ torch.inverse(K[i])
            Hji = K[i] @ torch.inverse(R[i]) @ R[j] @ torch.inverse(K[j])
            g = dehom(Hij, p) / s - 0.5
            source = (2 * i - j) % m if mutation == "neighbours' features swapped" else j
            order = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)] if mutation == "token order" else \
                [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
            for dx, dy in order:
                gg = g + torch.tensor([dx, dy], dtype=torch.float32)
                grid = torch.stack([gg[..., 0] / (wd - 1) * 2 - 1, gg[..., 1] / (h - 1) * 2 - 1], -1)
                if mutation == "x and y swapped in the grid":
                    grid = grid.flip(-1)
                toks.append(F.grid_sample(X[:, source], grid[None].expand(B, h, wd, 2), mode="bilinear",
                                          padding_mode="zeros", align_corners=True))
                q = (gg + 0.5) * s
                valid.append((q[..., 0] > 0) & (q[..., 0] < size) & (q[..., 1] > 0) & (q[..., 1] < size))
                offs.append((dehom(Hji, q) - p) / s)
        kv = torch.stack(toks, 1).permute(0, 3, 4, 1, 2).reshape(B * h * wd, 18, C)
        d = torch.stack(offs).permute(1, 2, 0, 3).reshape(1, h * wd, 18, 2).expand(B, -1, -1, -1).reshape(-1, 18, 2)
        ok = torch.stack(valid).permute(1, 2, 0).reshape(1, h * wd, 18).expand(B, -1, -1).reshape(-1, 18, 1).float()
        kv = (kv + code(d, freqs)) * ok
        x = X[:, i].permute(0, 2, 3, 1).reshape(B * h * wd, 1, C)
        qpe = code(torch.zeros(1, 2), freqs)
        ln1 = lambda t: F.layer_norm(t, (C,), w["transformer.norm1.weight"], w["transformer.norm1.bias"])  # noqa: E731
        nh = C // 32
        Q = (ln1(x + qpe) @ w["transformer.attn1.to_q.weight"].T).view(-1, 1, nh, 32).transpose(1, 2)
        Kt = (ln1(kv) @ w["transformer.attn1.to_k.weight"].T).view(-1, 18, nh, 32).transpose(1, 2)
        V = (ln1(kv) @ w["transformer.attn1.to_v.weight"].T).view(-1, 18, nh, 32).transpose(1, 2)
        logits = Q @ Kt.transpose(-1, -2) / math.sqrt(32)
        if mutation == "masked tokens dropped":
            logits = logits.masked_fill(ok.view(-1, 1, 1, 18) == 0, float("-inf"))
        a = logits.softmax(-1) @ V
        base = x + qpe if mutation == "code in the residual" else x
        x = base + a.transpose(1, 2).reshape(-1, 1, C) @ w["transformer.attn1.to_out.weight"].T \
            + w["transformer.attn1.to_out.bias"]
        u, gate = (F.layer_norm(x, (C,), w["transformer.norm2.weight"], w["transformer.norm2.bias"])
                   @ w["transformer.ff.net.0.proj.weight"].T + w["transformer.ff.net.0.proj.bias"]).chunk(2, -1)
        x = x + (u * F.gelu(gate)) @ w["transformer.ff.net.2.weight"].T + w["transformer.ff.net.2.bias"]
        out.append(x.view(B, h, wd, C).permute(0, 3, 1, 2))
    return torch.stack(out, 1)


def attach(unet, weights, K, R, size, mutation):
    """This file's own hooks, at the recorded points (placement_in_unet.hooks_on_stock_unet)."""
    def block(name):
        w = {k[len(name) + 1:]: v for k, v in weights.items() if k.startswith(name + ".")}
        return lambda x: caa_reference(w, x.view(-1, M, *x.shape[1:]), K, R, size, mutation).flatten(0, 1)

    hs, n = [], len(unet.down_blocks)
    for k, blk in enumerate(unet.down_blocks):
        f = block(f"cp_blocks_encoder.{k}")
        hs.append(blk.downsamplers[0].register_forward_pre_hook(lambda mod, a, f=f: (f(a[0]), *a[1:])) if k < n - 1
                  else blk.register_forward_hook(lambda mod, a, out, f=f: (f(out[0]), out[1])))
    f = block("cp_blocks_mid")
    hs.append(unet.mid_block.attentions[0].register_forward_pre_hook(lambda mod, a, f=f: (f(a[0]), *a[1:])))
    n = len(unet.up_blocks)
    for k, blk in enumerate(unet.up_blocks):
        f = block(f"cp_blocks_decoder.{k}")
        hs.append(blk.upsamplers[0].register_forward_pre_hook(lambda mod, a, f=f: (f(a[0]), *a[1:])) if k < n - 1
                  else blk.register_forward_hook(lambda mod, a, out, f=f: f(out)))
    return hs


def reference(base, caa_file, prompts, steps, guidance, seed, offset=0.0, mutation=None, yaws=None):
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel.from_pretrained(base / "unet").eval()
    tok = CLIPTokenizer.from_pretrained(base / "tokenizer")
    te = CLIPTextModel.from_pretrained(base / "text_encoder").eval()
    sched = DDIMScheduler.from_pretrained(base / "scheduler")
    K, R = cams(M, SIZE, offset=offset, yaws=yaws)
    hs = attach(unet, load_file(caa_file), K, R, SIZE, mutation)

    def enc(texts):
        ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        return te(ids)[0]

    try:
        with torch.no_grad():
            ctx = torch.cat([enc([""])] * M + [enc([p]) for p in prompts])  # [uncond views, cond views]
            sched.set_timesteps(steps)
            g = torch.Generator("cpu").manual_seed(seed)
            lat = torch.randn(1, M, 4, SIZE // 8, SIZE // 8, generator=g)
            for t in sched.timesteps:
                eps = unet(torch.cat([lat, lat]).flatten(0, 1), t.repeat(2 * M), encoder_hidden_states=ctx).sample
                u, c = eps.view(2, M, 4, SIZE // 8, SIZE // 8).chunk(2)
                lat = sched.step(u + guidance * (c - u), t, lat).prev_sample
    finally:
        for h in hs:
            h.remove()
    return lat


@pytest.fixture(scope="module")
def mvd():
    from genhelpers.hub.weights import twin_folder
    from genhelpers.models import mvdiffusion_weights
    from genhelpers.platform.runtime import Runtime

    caa = mvdiffusion_weights.load_caa("tiny:mvdiffusion", allow_pickle=True)  # the twin is pickled as published
    pipe = genhelpers.load("tiny:sd2-base", Runtime("local", (), "float32"), memory=None,
                           pipeline="MVDiffusionPipeline", caa=caa, quiet=True)
    pipe.set_progress_bar_config(disable=True)
    folder = caa.genhelpers_info["path"]
    return pipe, twin_folder("sd2-base"), f"{folder}/diffusion_pytorch_model.safetensors"


def ours(pipe, prompt, steps, guidance, seed, offset=0.0, yaws=None):
    return pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, height=SIZE, yaw_offset=offset,
                yaws_deg=yaws, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images


@pytest.mark.parametrize("per_view, offset", [(False, 0.0), (True, 17.0)])
def test_latents_match_the_reference_maths(mvd, per_view, offset):
    pipe, base, caa_file = mvd
    prompts = [f"view {i} of a room" for i in range(M)] if per_view else ["a cozy living room"] * M
    steps, guidance = 2, FACTS["sampling"]["guidance_scale"]
    got = ours(pipe, prompts if per_view else prompts[0], steps, guidance, seed=3, offset=offset)
    want = reference(base, caa_file, prompts, steps, guidance, seed=3, offset=offset)
    assert got.shape == want.shape == (1, M, 4, SIZE // 8, SIZE // 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    plain = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, height=SIZE, yaw_offset=offset,
                 generator=torch.Generator("cpu").manual_seed(3), output_type="latent", use_caa=False).images
    assert (plain - want).abs().max() > 1e-2  # the blocks matter on the twin (non-zero weights)


@pytest.mark.parametrize("mutation", ["neighbours' features swapped", "masked tokens dropped", "code in the residual",
                                      "x and y swapped in the grid"])
def test_the_comparison_sees_each_mistake(mvd, mutation):
    pipe, base, caa_file = mvd
    got = ours(pipe, "a cozy living room", 1, 9.0, seed=3)
    wrong = reference(base, caa_file, ["a cozy living room"] * M, 1, 9.0, seed=3, mutation=mutation)
    assert (got - wrong).abs().max() > 1e-3, mutation


def test_the_order_of_the_18_tokens_does_not_matter(mvd):
    """The recorded order (left neighbour first; dx outer, dy inner) cannot change the result: attention treats
    its keys as a set, and each sample carries its own position code. Reversing both orders changes nothing
    beyond float rounding, so the test pins the samples, not their order."""
    pipe, base, caa_file = mvd
    got = ours(pipe, "a cozy living room", 1, 9.0, seed=3)
    reordered = reference(base, caa_file, ["a cozy living room"] * M, 1, 9.0, seed=3, mutation="token order")
    torch.testing.assert_close(got, reordered, rtol=1e-4, atol=1e-4)


def test_schedule_is_the_authors(mvd):
    pipe = mvd[0]
    pipe.scheduler.set_timesteps(FACTS["sampling"]["num_inference_steps"])
    steps = pipe.scheduler.timesteps.tolist()
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and steps[:2] == [981, 961] and steps[-1] == 1
    assert pipe.scheduler.config.clip_sample is False and pipe.scheduler.config.set_alpha_to_one is False


def test_cameras_and_correspondences_match_the_recorded_values():
    from genhelpers.models.mvdiffusion_caa import Correspondences
    from genhelpers.outputs import panorama

    facts = FACTS["correspondence"]["check_values_64px_fov90_yaw0"]
    K, R = panorama.ring(64)
    assert K[0].tolist() == facts["K_view0"]
    torch.testing.assert_close(torch.tensor(R[1]), torch.tensor(facts["R_view1"]))
    ref_K, ref_R = cams(M, 64)
    assert torch.equal(torch.tensor(K), ref_K) and torch.allclose(torch.tensor(R), ref_R, atol=1e-7)
    geo = Correspondences(K, R, 64)
    for (i, j, x, y), key in [((0, 1, 63, 32), "view0_pixel_(63,32)_in_view1"),
                              ((0, 7, 0, 32), "view0_pixel_(0,32)_in_view7"),
                              ((0, 1, 4, 4), "view0_pixel_(4,4)_in_view1")]:
        got = dehom(geo.homography(i, j), torch.tensor([[float(x), float(y)]]))[0]
        torch.testing.assert_close(got, torch.tensor(facts[key]), atol=1e-3, rtol=1e-5)
