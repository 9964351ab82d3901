"""CatVTON: the attention file's key map (against the recorded enumeration and the full-size UNet on the meta
device), the loader's teaching errors, "skip" is not "remove", every input of the twins matters, the authors'
input preparation and repaint, the mask checks, and the three repositories served by a local hub (only the files
needed are fetched, never a pickle)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import genhelpers
from genhelpers.errors import ParameterError
from genhelpers.hub import published, weights
from genhelpers.models import catvton
from genhelpers.outputs import tryon
from genhelpers.platform.runtime import Runtime

from .conftest import REFERENCE
from .local_hub import Hub

FACTS = json.loads((REFERENCE / "virtual_tryon" / "reference_behaviour.json").read_text())
CPU = Runtime("local", (), "float32")
KEYS = ("sd15-inpainting", "sd-vae-ft-mse", "catvton")


@pytest.fixture(scope="module")
def tryon_twins():
    """Only the try-on twins (the session's `twins` fixture builds every twin), in the session's cache."""
    from genhelpers.twins import registry

    return {key: registry.build(key) for key in KEYS}


@pytest.fixture(scope="module")
def pipe(tryon_twins):
    p = genhelpers.load("tiny:sd15-inpainting", CPU, memory=None, pipeline="CatVTONPipeline",
                        vae="tiny:sd-vae-ft-mse", quiet=True)
    p.set_progress_bar_config(disable=True)
    catvton.load_catvton_attention(p.unet, catvton.attention_file("tiny:catvton", "vitonhd"))
    return p


def pictures(seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    w, h = size
    return (Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)),
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)),
            tryon.box_mask(size, (0.2, 0.25, 0.8, 0.75)))


def run(pipe, person, garment, mask, steps=2, guidance=2.5, seed=3):
    return pipe(person=person, garment=garment, mask=mask, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator().manual_seed(seed), output_type="latent")


# ------------------------------------------------------------------------------------------ the key map
def test_the_full_size_enumeration_is_the_recorded_one():
    """On the meta device: 16 self-attention blocks in the recorded order (mid block last, base index 120), 80
    tensors, 49,574,080 parameters, 198,296,320 bytes in float32; the UNet 859,535,364."""
    unet = published.meta_model("sd15-inpainting", "unet")
    recorded = FACTS["attention_checkpoint"]["block_order_and_base_index"]
    assert {str(8 * i): b for i, b in enumerate(catvton.attention_blocks(unet))} == recorded
    keys = catvton.attention_keys(unet)
    targets = set(keys.values())
    params = dict(unet.named_parameters())
    assert len(targets) == 80 and sum(params[t].numel() for t in targets) == 49_574_080
    assert sum(params[t].numel() for t in targets) * 4 == 198_296_320
    assert sum(p.numel() for p in unet.parameters()) == FACTS["base_and_vae_repositories"]["unet_parameter_count"]
    assert targets == {n for n in params if ".attn1." in n}  # every trained tensor, nothing else


def test_every_alias_of_a_block_names_one_parameter():
    """attention_checkpoint.aliases_of_one_tensor and names_in_the_published_file (b = 8: to_k is '8.to_k.weight'
    and '10.weight', to_out '12.0.weight' and '13.weight')."""
    unet = published.meta_model("sd15-inpainting", "unet")
    keys = catvton.attention_keys(unet)
    block = "down_blocks.0.attentions.1.transformer_blocks.0.attn1"
    assert keys["8.to_k.weight"] == keys["10.weight"] == f"{block}.to_k.weight"
    assert keys["8.to_out.0.bias"] == keys["12.0.bias"] == keys["13.bias"] == f"{block}.to_out.0.bias"
    assert keys["121.weight"] == "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert len(keys) == 16 * 12 and not any(k.startswith(("14.", "15.")) for k in keys)  # dropout, processor


@pytest.mark.parametrize("version, first", [("mix", "0.to_k.weight"), ("dresscode", "1.weight")])
def test_the_loader_says_where_each_key_lands(pipe, version, first):
    report = catvton.load_catvton_attention(pipe.unet, catvton.attention_file("tiny:catvton", version))
    assert (report["keys"], report["tensors"], len(report["blocks"])) == (80, 80, 16)
    assert report["metadata"]["format"] == "pt" and report["first_keys"][0] == first
    assert report["blocks"][-1]["block"].startswith("mid_block") and report["blocks"][-1]["keys"][0] in (
        "120.to_q.weight", "121.weight")


def _rewrite(tryon_twins, tmp_path, change):
    from safetensors.torch import load_file, save_file

    file = tryon_twins["catvton"] / "vitonhd-16k-512" / "attention" / "model.safetensors"
    tensors = load_file(file)
    change(tensors)
    out = tmp_path / "model.safetensors"
    save_file(tensors, out, metadata={"format": "pt"})
    return out


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update({"3.to_q.weight": torch.zeros(1)}), r"key '3.to_q.weight' names no self-attention weight"),
    (lambda t: t.pop("16.to_v.weight"), r"1 of 80 self-attention tensors are missing, the first is "
                                         r"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v.weight"),
    (lambda t: t.update({"2.weight": t["0.to_k.weight"].clone()}), r"'2.weight' and '0.to_k.weight' both set"),
    (lambda t: t.update({"0.to_q.weight": torch.zeros(3, 3)}), r"has shape \(3, 3\) but .*another UNet"),
])
def test_a_wrong_file_is_refused_with_the_reason(pipe, tryon_twins, tmp_path, change, message):
    before = catvton.attention_state(pipe.unet)
    with pytest.raises(ValueError, match=message):
        catvton.load_catvton_attention(pipe.unet, _rewrite(tryon_twins, tmp_path, change))
    after = catvton.attention_state(pipe.unet)
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded


def test_the_header_is_read_without_unpickling(tryon_twins, tmp_path):
    header = catvton.read_header(tryon_twins["catvton"] / "mix-48k-1024" / "attention" / "model.safetensors")
    assert header["__metadata__"]["format"] == "pt" and header["0.to_q.weight"]["dtype"] == "F32"
    bad = tmp_path / "model.safetensors"
    torch.save({"x": torch.zeros(1)}, bad)  # a pickle under the safetensors name: refused, never unpickled
    with pytest.raises(ValueError, match="is not a safetensors file"):
        catvton.read_header(bad)


# ------------------------------------------------------------------------------------------ the processors
def test_skipping_cross_attention_is_not_removing_it(pipe):
    """attention_processors.what_skip_means: the block adds norm2(h); a processor returning zeros differs."""
    x = torch.randn(2, 9, 16, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        skipped = pipe.unet(x, 500, encoder_hidden_states=None).sample
        procs = pipe.unet.attn_processors
        zeros = {n: (lambda attn, hidden_states, *a, **k: torch.zeros_like(hidden_states))
                 if n.endswith("attn2.processor") else p for n, p in procs.items()}
        pipe.unet.set_attn_processor(zeros)
        removed = pipe.unet(x, 500, encoder_hidden_states=None).sample
        pipe.unet.set_attn_processor(procs)
    assert (skipped - removed).abs().max() > 1e-3
    kinds = {type(p).__name__ for n, p in pipe.unet.attn_processors.items() if n.endswith("attn2.processor")}
    assert kinds == {"SkipCrossAttention"}


def test_attention_slicing_keeps_cross_attention_skipped(pipe):
    pipe.enable_attention_slicing()
    try:
        kinds = {n.rsplit(".", 2)[-2]: type(p).__name__ for n, p in pipe.unet.attn_processors.items()}
        assert kinds == {"attn1": "SlicedAttnProcessor", "attn2": "SkipCrossAttention"}
        assert run(pipe, *pictures(), steps=1).shape == (1, 4, 8, 6)
    finally:
        catvton.install_processors(pipe.unet)


def test_a_text_to_image_unet_is_refused(tryon_twins):
    with pytest.raises(ValueError, match="needs an inpainting UNet .* this one has 4"):
        genhelpers.load("tiny:sd15", CPU, memory=None, pipeline="CatVTONPipeline", vae="tiny:sd-vae-ft-mse",
                        quiet=True)


# ------------------------------------------------------------------------------------------ every input matters
@pytest.mark.parametrize("which", ["person", "garment", "mask", "seed", "attention"])
def test_every_input_changes_the_result(pipe, which):
    """twin_guidance.sensitivity: the garment, the mask, the person (and the seed, and CatVTON's weights) each
    move the result; the garment reaches the person half only through self-attention over the canvas."""
    person, garment, mask = pictures()
    base = run(pipe, person, garment, mask)
    if which == "person":
        other = run(pipe, pictures(1)[0], garment, mask)
    elif which == "garment":
        other = run(pipe, person, pictures(2)[1], mask)
    elif which == "mask":
        other = run(pipe, person, garment, tryon.box_mask((48, 64), (0.1, 0.1, 0.6, 0.5)))
    elif which == "seed":
        other = run(pipe, person, garment, mask, seed=4)
    else:
        stock = {n: torch.randn(t.shape, generator=torch.Generator().manual_seed(9)) * 0.1
                 for n, t in catvton.attention_state(pipe.unet).items()}
        with catvton.attention_swapped(pipe.unet, stock):
            other = run(pipe, person, garment, mask)
        assert torch.equal(run(pipe, person, garment, mask), base)  # swapped back
    assert (other - base).abs().max() > 1e-2


def test_the_garment_matters_even_without_guidance(pipe):
    """At guidance 1 only the conditional branch runs: the garment still steers the person half."""
    person, garment, mask = pictures()
    a = run(pipe, person, garment, mask, guidance=1.0)
    b = run(pipe, person, pictures(2)[1], mask, guidance=1.0)
    assert (a - b).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------ pictures
def test_the_authors_preparation():
    """inputs.person / garment / mask: centre crop to the aspect ratio, fit on white, binarise at 0.5."""
    assert tryon.crop_box((1000, 1000), 384, 512) == (125, 0, 875, 1000)
    assert tryon.crop_box((768, 512), 384, 512) == (192, 0, 576, 512)
    assert tryon.fit_person(Image.new("RGB", (1000, 1000)), 384, 512).size == (384, 512)
    garment = tryon.pad_garment(Image.new("RGB", (200, 100), (10, 20, 30)), 48, 64)
    assert garment.size == (48, 64) and garment.getpixel((0, 0)) == (255, 255, 255)
    assert garment.getpixel((24, 32)) == (10, 20, 30)  # 48 x 24 in the middle
    grey = Image.new("L", (48, 64), 127)
    grey.paste(128, (0, 0, 24, 64))
    m = np.asarray(tryon.prepare_mask(grey, 48, 64))
    assert set(np.unique(m)) == {0, 255} and m[:, :20].min() == 255 and m[:, 28:].max() == 0


def test_repaint_keeps_the_person_where_the_blurred_mask_is_zero():
    """output.repaint_inference_py: radius H // 50 made odd, person·(1 − m) + result·m."""
    person, result, _ = pictures(5, size=(96, 128))
    mask = tryon.box_mask((96, 128), (0.3, 0.3, 0.7, 0.7))
    out, outside = tryon.repaint(person, result, mask)
    p, r, o = (np.asarray(x) for x in (person, result, out))
    assert outside.any() and (o[outside] == p[outside]).all()
    inner = np.zeros((128, 96), bool)
    inner[48:80, 38:58] = True  # far inside the box: the result
    assert (o[inner] == r[inner]).all()
    assert tryon.change(person, out, mask)["exact_share"] > 0.8 > tryon.change(person, result, mask)["exact_share"]


def test_the_helpers_make_masks_of_the_persons_size():
    assert tryon.upper_body_mask((384, 512)).size == (384, 512)
    share = np.asarray(tryon.upper_body_mask((384, 512))).mean() / 255
    assert 0.2 < share < 0.35
    assert np.asarray(tryon.box_mask((100, 100), (0.5, 0.5, 1.0, 1.0))).sum() == 50 * 50 * 255


@pytest.mark.parametrize("kwargs, message", [
    ({"mask": "small.png"}, r"mask='.*small.png' is 20×30 but the drawn demo person \(person=None\) is 384×512"),
    ({"mask": "black.png", "person": "person.png"}, r"marks no pixel at 48×64"),
    ({"mask": "box", "mask_box": [0, 0, 1, 1]}, r"marks every pixel"),
    ({"mask_box": [0.5, 0.2, 0.4, 0.9]}, r"mask_box=\[0.5, 0.2, 0.4, 0.9\] must be \[x0, y0, x1, y1\]"),
    ({"mask": "oval"}, r"mask='oval': no such file.*mask='upper_body'"),
    ({"attention_version": "viton"}, r"attention_version='viton' must be one of 'mix', 'vitonhd', 'dresscode'"),
    ({"person": "missing.png"}, r"person='missing.png': no such file"),
])
def test_bad_inputs_name_the_parameter_and_the_fix(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (20, 30), 255).save("small.png")
    Image.new("L", (48, 64), 0).save("black.png")
    Image.new("RGB", (48, 64)).save("person.png")
    base = dict(person=None, garment=None, mask="upper_body", mask_box=[0.2, 0.2, 0.8, 0.6], height=64, width=48,
                attention_version="vitonhd")
    with pytest.raises(ParameterError, match=message):
        genhelpers.check(**{**base, **kwargs})


# ------------------------------------------------------------------------------------------ the local hub
@pytest.fixture
def served(tryon_twins, monkeypatch, tmp_path):
    """The three repositories as tests/reference/hub_tree_additions.json lists them, the twins' bytes where the
    twins have the file, placeholders elsewhere (a placeholder can never load)."""
    import sys


    listing = json.loads((REFERENCE / "hub_tree_additions.json").read_text())["new_repos"]
    repos = {r: {"files": listing[r]["files"], "gated": False} for r in
             ("stable-diffusion-v1-5/stable-diffusion-inpainting", "stabilityai/sd-vae-ft-mse", "zhengchong/CatVTON")}
    twins = dict(zip(repos, (tryon_twins[k] for k in KEYS), strict=True))
    with Hub(repos, twins) as hub:
        hub.point_client(monkeypatch, tmp_path / "hub")
        monkeypatch.setitem(sys.modules, "kaggle_secrets", None)
        monkeypatch.setitem(sys.modules, "google.colab", None)
        yield hub


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_the_three_repositories_give_only_what_catvton_needs(served, dtype):
    pipe = genhelpers.load("stable-diffusion-v1-5/stable-diffusion-inpainting", CPU, memory=None, dtype=dtype,
                           pipeline="CatVTONPipeline", vae="stabilityai/sd-vae-ft-mse", quiet=True)
    file = catvton.attention_file("zhengchong/CatVTON", "vitonhd")
    report = catvton.load_catvton_attention(pipe.unet, file)
    fetched = {p.split("/resolve/")[0].strip("/") + ":" + p.split("/resolve/")[1].split("/", 1)[1]
               for m, p in served.requests if m == "GET" and "/resolve/" in p}
    assert fetched == {
        "stable-diffusion-v1-5/stable-diffusion-inpainting:model_index.json",
        "stable-diffusion-v1-5/stable-diffusion-inpainting:scheduler/scheduler_config.json",
        "stable-diffusion-v1-5/stable-diffusion-inpainting:unet/config.json",
        "stable-diffusion-v1-5/stable-diffusion-inpainting:unet/diffusion_pytorch_model.fp16.safetensors",
        "stabilityai/sd-vae-ft-mse:config.json", "stabilityai/sd-vae-ft-mse:diffusion_pytorch_model.safetensors",
        "zhengchong/CatVTON:vitonhd-16k-512/attention/model.safetensors"}, sorted(fetched)
    assert str(pipe.unet.dtype) == f"torch.{dtype}" and report["tensors"] == 80  # fp16 files upcast for float32
    person, garment, mask = pictures()
    assert run(pipe, person, garment, mask, steps=1).shape == (1, 4, 8, 6)


def test_offline_without_the_file_says_how_to_get_it(tryon_twins):
    with pytest.raises(weights.WeightsNotFound, match=r"(?s)vitonhd-16k-512/attention/model.safetensors.*Internet "
                                                      r"on.*attention_model='tiny:catvton'"):
        catvton.attention_file("zhengchong/CatVTON", "vitonhd")
