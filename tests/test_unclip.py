"""unCLIP (Karlo): the frozen-pipeline alias, the twins' live conditioning paths, and the helpers' maths checked
against numbers computed independently (numpy, closed forms), not by the code under test."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import genhelpers
from genhelpers.hub import published
from genhelpers.models import unclip

KW = dict(prior_num_inference_steps=2, decoder_num_inference_steps=2, super_res_num_inference_steps=2)


@pytest.fixture(scope="module")
def karlo(twins):
    rt = genhelpers.runtime(threads=2)
    pipe = genhelpers.load("tiny:karlo-v1-alpha", rt, quiet=True)  # safetensors, as published
    var = genhelpers.load("tiny:karlo-v1-alpha-image-variations", rt, allow_pickle=True, quiet=True)  # pickles
    return pipe, var


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_published_layout_names_the_old_module_and_plain_diffusers_cannot_load_it(twins):
    """The fact the alias exists for (a canary: when diffusers resolves the old name itself, this fails and the
    alias can go): a published-layout folder names text_proj by module "unclip", which diffusers 0.42 rejects."""
    folder = twins["karlo-v1-alpha"]
    assert json.loads((folder / "model_index.json").read_text())["text_proj"] == ["unclip", "UnCLIPTextProjModel"]
    code = ("import diffusers, sys\n"
            f"try:\n    diffusers.UnCLIPPipeline.from_pretrained({str(folder)!r})\n"
            "except ValueError as e:\n    print('REFUSED', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "REFUSED unclip is not one of the libraries" in done.stdout, done.stdout + done.stderr[-2000:]


def test_the_alias_maps_the_old_name_to_diffusers_own_module(karlo):
    import diffusers.pipelines

    from genhelpers.hub.loader import frozen_pipeline_modules

    assert frozen_pipeline_modules()["unclip"].__name__ == "diffusers.pipelines.deprecated.unclip"
    assert diffusers.pipelines.unclip.UnCLIPTextProjModel is type(karlo[0].text_proj)


def test_full_size_counts_from_the_recorded_configs():
    """Karlo's parts at published size on the meta device: ~3.4 B in all, as the model card says; the variations
    repository = Karlo without the prior + CLIP ViT-L/14's vision tower with projection (303,179,776 + 768×1024)."""
    counts = {c: published.count("karlo-v1-alpha", c) for c in published.configs("karlo-v1-alpha")}
    assert 3.3e9 < sum(counts.values()) < 3.5e9
    assert counts["text_encoder"] == 123_060_480 + 768 * 768  # SD 1.5's CLIP ViT-L/14 text tower + projection
    assert counts["text_proj"] == 7_878_400
    var = {c: published.count("karlo-v1-alpha-image-variations", c)
           for c in published.configs("karlo-v1-alpha-image-variations")}
    assert var["image_encoder"] == 303_179_776 + 1024 * 768
    assert {k: v for k, v in var.items() if k != "image_encoder"} == {k: v for k, v in counts.items() if k != "prior"}
    assert genhelpers.hub.catalog.ENTRIES["karlo-v1-alpha"].params == counts


def test_the_image_encoder_comes_from_clip_as_diffusers_built_the_variations_repository(karlo, twins):
    """clip_image_encoder reads CLIP ViT-L/14's vision tower with projection out of a whole-CLIP checkpoint. At
    published size (meta device, the recorded CLIPModel config) it is the variations repository's image encoder,
    projection 768 wide (the vision sub-config says 512: the whole model's width is the one that counts). On the
    twins, the variations repository's encoder is the CLIP twin's tower weight for weight, as the published one is
    openai's, so both give the same embeddings."""
    from transformers import CLIPConfig, CLIPVisionModelWithProjection

    whole = CLIPConfig.from_dict(published.configs("clip-vit-large-patch14")["clip"])
    assert (whole.projection_dim, whole.vision_config.projection_dim) == (768, 512)
    with torch.device("meta"):
        tower = CLIPVisionModelWithProjection(unclip.vision_config(whole))
    assert sum(p.numel() for p in tower.parameters()) == published.count("karlo-v1-alpha-image-variations",
                                                                         "image_encoder") == 303_966_208
    encoder, processor = unclip.clip_image_encoder("tiny:clip-vit-large-patch14")
    _, var = karlo
    pixels = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        ours, published_one = encoder(pixel_values=pixels), var.image_encoder(pixel_values=pixels)
    assert torch.equal(ours.image_embeds, published_one.image_embeds)
    theirs = var.feature_extractor
    assert (processor.crop_size, processor.image_mean, processor.image_std) == (theirs.crop_size, theirs.image_mean,
                                                                              theirs.image_std)


def test_the_notebook_route_opens_no_pickle(karlo):
    """Every weighted part handed in: the variations twin (pickles, as published) is read for its scheduler
    settings only, so no opt-in is needed, and the pipeline paints from the CLIP tower it was given."""
    pipe, _ = karlo
    encoder, processor = unclip.clip_image_encoder("tiny:clip-vit-large-patch14")
    with pytest.raises(ValueError, match="image_encoder, .* publish pickle weights only"):
        genhelpers.load("tiny:karlo-v1-alpha-image-variations", memory=None, quiet=True, decoder=pipe.decoder)
    var = genhelpers.load("tiny:karlo-v1-alpha-image-variations", memory=None, quiet=True, decoder=pipe.decoder,
                          text_proj=pipe.text_proj, super_res_first=pipe.super_res_first,
                          super_res_last=pipe.super_res_last, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                          image_encoder=encoder, feature_extractor=processor)
    assert var.image_encoder is encoder and var.decoder is pipe.decoder
    picture = var(image=Image.new("RGB", (64, 64), (220, 30, 30)), generator=g(), decoder_num_inference_steps=2,
                  super_res_num_inference_steps=2).images[0]
    assert picture.size == (64, 64)


def test_every_conditioning_input_changes_the_picture(karlo):
    pipe, var = karlo
    a = np.asarray(pipe("a red frog", generator=g(), **KW).images[0], float)
    b = np.asarray(pipe("a lighthouse", generator=g(), **KW).images[0], float)
    assert np.abs(a - b).mean() > 1  # the caption reaches the picture (through the prior and the decoder)
    red, blue = Image.new("RGB", (64, 64), (220, 30, 30)), Image.new("RGB", (64, 64), (30, 30, 220))
    vk = dict(decoder_num_inference_steps=2, super_res_num_inference_steps=2)
    va = np.asarray(var(image=red, generator=g(), **vk).images[0], float)
    vb = np.asarray(var(image=blue, generator=g(), **vk).images[0], float)
    assert np.abs(va - vb).mean() > 0.5  # the picture reaches the variations
    e = unclip.image_embeddings(var, [red])
    ea = np.asarray(var(image_embeddings=e, generator=g(), **vk).images[0], float)
    eb = np.asarray(var(image_embeddings=-e, generator=g(), **vk).images[0], float)
    assert np.abs(ea - eb).mean() > 0.5 and np.abs(ea - va).max() == 0  # an embedding stands for its picture


def test_capture_sees_the_prior_output_and_the_caption_embedding(karlo):
    pipe, _ = karlo
    with unclip.capture_embeddings(pipe) as one:
        pipe("a red frog", generator=g(), **KW)
    with unclip.capture_embeddings(pipe) as two:
        pipe("a lighthouse", generator=g(), **KW)
    ids = pipe.tokenizer(["a red frog"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        direct = pipe.text_encoder(ids.input_ids, attention_mask=ids.attention_mask).text_embeds
    assert torch.allclose(one["text"], direct, atol=1e-5)  # the conditional half, not the empty caption's
    assert one["image"].shape == (1, 32) and not torch.allclose(one["image"], two["image"])
    assert not torch.allclose(one["image"], one["text"])
    assert not pipe.text_proj._forward_pre_hooks  # the hook is gone after the block


def test_cosine_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    want = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.allclose(unclip.cosine(torch.tensor(a), torch.tensor(b)), want, atol=1e-4)


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    assert torch.allclose(unclip.slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(unclip.slerp(a, b, 1.0), b, atol=1e-6)
    mid = unclip.slerp(a, b, 0.5)  # 45° between the two, length halfway (1.5)
    assert torch.allclose(mid, torch.tensor([[1.5 * math.cos(math.pi / 4), 1.5 * math.sin(math.pi / 4), 0.0]]),
                          atol=1e-6)
    third = unclip.slerp(a, b, 1 / 3)  # constant angular speed: 30° after a third of the way
    assert math.isclose(math.degrees(math.atan2(third[0, 1], third[0, 0])), 30.0, abs_tol=1e-4)
    same = unclip.slerp(a, 3 * a, 0.5)  # parallel: a straight line, no division by sin(0)
    assert torch.allclose(same, 2 * a)
