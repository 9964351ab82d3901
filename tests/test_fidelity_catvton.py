"""CatVTON: our pipeline pinned to the authors' sampling, written here from the recorded facts
(tests/reference/virtual_tryon/reference_behaviour.json; the authors' code is neither copied nor run).

The reference below uses only stock diffusers classes loaded from the twins' folders, its own plain-softmax
self-attention and skip processor, its own resolution of the attention file's keys (from the recorded block
order and aliases), tensor inputs, and a DDIM loop. It draws its random numbers in our pipeline's order (the
two VAE samples from the generator, then the starting noise, then DDIM's eta noise): the authors take the VAE
samples from torch's global generator, a difference we make on purpose. Checked once by the brief's author: a
loop written from the same facts matched the authors' CatVTONPipeline.__call__ to 3.8e-6.

The mutated references (cross-attention returning zeros instead of its input, the canvas joined along the width,
no zeroed garment in the unconditional branch) must NOT match: the test can tell those mistakes apart."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import genhelpers

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "virtual_tryon" / "reference_behaviour.json").read_text())
BASES = {name: int(i) for i, name in FACTS["attention_checkpoint"]["block_order_and_base_index"].items()}


def aliases(b: int) -> dict[str, list[str]]:
    """attention_checkpoint.aliases_of_one_tensor, for the block with base index b."""
    return {"to_q.weight": [f"{b}.to_q.weight", f"{b + 1}.weight"],
            "to_k.weight": [f"{b}.to_k.weight", f"{b + 2}.weight"],
            "to_v.weight": [f"{b}.to_v.weight", f"{b + 3}.weight"],
            "to_out.0.weight": [f"{b}.to_out.0.weight", f"{b + 4}.0.weight", f"{b + 5}.weight"],
            "to_out.0.bias": [f"{b}.to_out.0.bias", f"{b + 4}.0.bias", f"{b + 5}.bias"]}


class PlainSelfAttention:
    """Standard SD self-attention, written out: softmax(q k^T / sqrt(d)) v, then to_out."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b, n, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        h = attn.heads
        q, k, v = (x.view(b, -1, h, x.shape[-1] // h).transpose(1, 2) for x in (q, k, v))
        weights = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)
        return attn.to_out[1](attn.to_out[0]((weights @ v).transpose(1, 2).reshape(b, n, -1)))


class Skip:  # attention_processors.cross_attention_attn2: returns its hidden_states argument unchanged
    def __call__(self, attn, hidden_states, *args, **kwargs):
        return hidden_states


class Zeros:  # a mutation: "removing" cross-attention
    def __call__(self, attn, hidden_states, *args, **kwargs):
        return torch.zeros_like(hidden_states)


def reference_parts(twins, attention_file, cross=Skip):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import load_file

    base = twins["sd15-inpainting"]
    unet = UNet2DConditionModel.from_pretrained(base / "unet", variant="fp16", dtype=torch.float32).eval()
    unet.set_attn_processor({n: cross() if n.endswith("attn2.processor") else PlainSelfAttention()
                             for n in unet.attn_processors})
    stored = load_file(attention_file)
    params = dict(unet.named_parameters())
    copied = 0
    with torch.no_grad():
        for block, b in BASES.items():
            for name, forms in aliases(b).items():
                present = [f for f in forms if f in stored]
                assert len(present) == 1, (block, name, present)
                params[f"{block}.{name}"].copy_(stored[present[0]])
                copied += 1
    assert copied == len(stored) == 80
    vae = AutoencoderKL.from_pretrained(twins["sd-vae-ft-mse"]).eval()
    scheduler = DDIMScheduler.from_pretrained(base / "scheduler")
    return unet, vae, scheduler


def pixels(image):  # inputs.pixel_range: uint8 / 127.5 - 1
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1


@torch.no_grad()
def reference(parts, person, garment, mask, steps, guidance, seed, axis=-2, zero_garment=True):
    unet, vae, scheduler = parts
    sf = vae.config.scaling_factor
    m = (torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None] / 255 >= 0.5).float()
    g = torch.Generator().manual_seed(seed)
    masked = vae.encode(pixels(person) * (m < 0.5)).latent_dist.sample(generator=g) * sf
    cloth = vae.encode(pixels(garment)).latent_dist.sample(generator=g) * sf
    m_lat = F.interpolate(m, size=masked.shape[-2:], mode="nearest")
    cond = torch.cat([masked, cloth], axis)
    mask_cat = torch.cat([m_lat, torch.zeros_like(m_lat)], axis)
    uncond = torch.cat([masked, torch.zeros_like(cloth) if zero_garment else cloth], axis)
    scheduler.set_timesteps(steps)
    lat = torch.randn(cond.shape, generator=g) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        if guidance > 1:
            x = torch.cat([torch.cat([lat, mask_cat, uncond], 1), torch.cat([lat, mask_cat, cond], 1)])
            u, c = unet(x, t, encoder_hidden_states=None).sample.chunk(2)
            eps = u + guidance * (c - u)
        else:
            eps = unet(torch.cat([lat, mask_cat, cond], 1), t, encoder_hidden_states=None).sample
        lat = scheduler.step(eps, t, lat, eta=1.0, generator=g).prev_sample
    return lat[..., : masked.shape[-2], :] if axis == -2 else lat[..., : masked.shape[-1]]


@pytest.fixture(scope="module")
def twins():
    """Only the try-on twins (the session's `twins` fixture builds every twin), in the session's cache."""
    from genhelpers.twins import registry

    return {key: registry.build(key) for key in ("sd15-inpainting", "sd-vae-ft-mse", "catvton")}


@pytest.fixture(scope="module")
def tryon_case(twins):
    from genhelpers.outputs import tryon
    from genhelpers.platform.runtime import detect

    pipe = genhelpers.load("tiny:sd15-inpainting", detect(threads=2), memory=None, pipeline="CatVTONPipeline",
                           vae="tiny:sd-vae-ft-mse", quiet=True)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    person = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    garment = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    mask = tryon.box_mask((48, 64), (0.2, 0.25, 0.8, 0.75))
    return pipe, person, garment, mask


def ours(pipe, person, garment, mask, steps, guidance, seed):
    return pipe(person=person, garment=garment, mask=mask, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator().manual_seed(seed), output_type="latent")


@pytest.mark.parametrize("version, steps, guidance", [("vitonhd", 2, 2.5), ("dresscode", 2, 2.5), ("mix", 1, 1.0)])
def test_catvton_matches_the_reference_maths(twins, tryon_case, version, steps, guidance):
    from genhelpers.models import catvton

    pipe, person, garment, mask = tryon_case
    file = catvton.attention_file("tiny:catvton", version)  # dresscode: the other aliases (1.weight, 5.bias, …)
    catvton.load_catvton_attention(pipe.unet, file)
    got = ours(pipe, person, garment, mask, steps, guidance, seed=7)
    want = reference(reference_parts(twins, file), person, garment, mask, steps, guidance, seed=7)
    assert got.shape == want.shape == (1, 4, 8, 6)  # the top half of a 16 x 6 canvas
    assert (got - want).abs().max() < 1e-5


@pytest.mark.parametrize("mutation", ["cross_attention_returns_zeros", "width_concatenation",
                                      "garment_kept_in_the_unconditional_branch"])
def test_the_reference_tells_each_mistake_apart(twins, tryon_case, mutation):
    from genhelpers.models import catvton

    pipe, person, garment, mask = tryon_case
    file = catvton.attention_file("tiny:catvton", "vitonhd")
    catvton.load_catvton_attention(pipe.unet, file)
    got = ours(pipe, person, garment, mask, 2, 2.5, seed=7)
    parts = reference_parts(twins, file, cross=Zeros if mutation.startswith("cross") else Skip)
    wrong = reference(parts, person, garment, mask, 2, 2.5, seed=7, axis=-1 if mutation.startswith("width") else -2,
                      zero_garment=not mutation.startswith("garment"))
    assert wrong.shape != got.shape or (got - wrong).abs().max() > 1e-3
