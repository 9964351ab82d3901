import hashlib
import json
import os
import time

import numpy as np
import pytest
import torch

from genhelpers.twins import common, registry


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


PUBLISHED_SDXL_LAYOUT = [
    "model_index.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
    "text_encoder_2/config.json", "text_encoder_2/model.safetensors", "text_encoder_2/model.fp16.safetensors",
    "tokenizer/merges.txt", "tokenizer/vocab.json", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer_2/merges.txt", "tokenizer_2/vocab.json", "tokenizer_2/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
]


def test_sdxl_base_twin_has_the_published_layout(twins):
    folder = twins["sdxl-base"]
    files = sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())
    assert files == sorted(PUBLISHED_SDXL_LAYOUT)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["text_encoder_2"] == ["transformers", "CLIPTextModelWithProjection"]
    assert index["force_zeros_for_empty_prompt"] is True


def test_refiner_twin_has_the_published_layout(twins):
    index = json.loads((twins["sdxl-refiner"] / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLImg2ImgPipeline"
    assert index["text_encoder"] == [None, None] and index["tokenizer"] == [None, None]
    assert index["requires_aesthetics_score"] is True and index["force_zeros_for_empty_prompt"] is False


def test_vae_twin_is_a_single_model_folder(twins):
    folder = twins["sdxl-vae-fp16-fix"]
    assert sorted(f.name for f in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderKL" and config["force_upcast"] is False


def test_twins_are_deterministic(tmp_path, twins):
    again = registry.build("sdxl-base", root=tmp_path)
    assert digest(again) == digest(twins["sdxl-base"])


def test_build_is_cached_and_atomic(tmp_path, monkeypatch):
    first = registry.build("sdxl-vae-fp16-fix", root=tmp_path)
    stamp = (first / "config.json").stat().st_mtime_ns
    assert (registry.build("sdxl-vae-fp16-fix", root=tmp_path) / "config.json").stat().st_mtime_ns == stamp  # cached

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(registry, "_write_twin", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        registry.build("sdxl-base", root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no half-built folder left


def test_unknown_twin():
    with pytest.raises(ValueError, match="no tiny twin named 'sd14'.*sdxl-base"):
        registry.build("sd14")


def test_tokenizer_matches_clip_conventions(twins):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(twins["sdxl-base"] / "tokenizer")
    tok2 = CLIPTokenizer.from_pretrained(twins["sdxl-base"] / "tokenizer_2")
    ids = tok("a photo of an astronaut riding a horse on the moon").input_ids
    assert ids[0] == tok.bos_token_id == 998 and ids[-1] == tok.eos_token_id == 999
    assert max(ids) < common.VOCAB_SIZE and len(tok) == common.VOCAB_SIZE
    assert len(ids) < 16  # merges were learned: words are not spelled out byte by byte
    assert tok.pad_token == "<|endoftext|>" and tok2.pad_token == "!"  # as in the published tokenizers
    assert tok.decode(ids, skip_special_tokens=True).strip() == "a photo of an astronaut riding a horse on the moon"


def test_twins_load_with_diffusers_offline_and_generate(twins):
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(twins["sdxl-base"])
    assert type(pipe).__name__ == "StableDiffusionXLPipeline" and pipe.vae_scale_factor == 8
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(0)
    out = pipe("a fox", num_inference_steps=2, height=64, width=48, generator=g, output_type="np").images
    assert out.shape == (1, 64, 48, 3) and np.isfinite(out).all()
    latents = pipe("a fox", num_inference_steps=2, height=64, width=64, generator=g, output_type="latent").images
    assert latents.shape == (1, 4, 8, 8)  # scale factor 8, as for the published VAE
    refiner = DiffusionPipeline.from_pretrained(twins["sdxl-refiner"], text_encoder_2=pipe.text_encoder_2, vae=pipe.vae)
    refiner.set_progress_bar_config(disable=True)
    refined = refiner("a fox", image=latents, num_inference_steps=4, denoising_start=0.5, generator=g,
                      output_type="np").images
    assert refined.shape == (1, 64, 64, 3)


def test_refiner_twin_shares_the_base_weights(twins):
    from safetensors.torch import load_file

    for comp in ("text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        a, b = load_file(twins["sdxl-base"] / comp), load_file(twins["sdxl-refiner"] / comp)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fp16_variant_files_hold_half_precision(twins):
    from safetensors.torch import load_file

    t = load_file(twins["sdxl-base"] / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    full = load_file(twins["sdxl-base"] / "unet" / "diffusion_pytorch_model.safetensors")
    assert {v.dtype for v in t.values()} == {torch.float16} and t.keys() == full.keys()


@pytest.mark.parametrize("key, expected", [
    ("shap-e", {"prior": ["diffusers", "PriorTransformer"], "scheduler": ["diffusers", "HeunDiscreteScheduler"],
                "shap_e_renderer": ["shap_e", "ShapERenderer"],
                "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
                "tokenizer": ["transformers", "CLIPTokenizer"]}),
    ("shap-e-img2img", {"prior": ["diffusers", "PriorTransformer"], "scheduler": ["diffusers", "HeunDiscreteScheduler"],
                        "shap_e_renderer": ["shap_e", "ShapERenderer"],
                        "image_encoder": ["transformers", "CLIPVisionModel"],
                        "image_processor": ["transformers", "CLIPImageProcessor"]}),
])
def test_shap_e_twins_have_the_published_layout(twins, key, expected):
    folder = twins[key]
    index = json.loads((folder / "model_index.json").read_text())
    assert {k: v for k, v in index.items() if not k.startswith("_")} == expected
    for comp in expected:
        assert (folder / comp).is_dir()


def test_shap_e_image_encoder_keeps_the_published_token_count(twins):
    from transformers import CLIPVisionConfig

    cfg = CLIPVisionConfig.from_pretrained(twins["shap-e-img2img"] / "image_encoder")
    assert (cfg.image_size // cfg.patch_size) ** 2 == 256  # the prior sees 256 patch tokens, as published


@pytest.mark.parametrize("key, components", [
    ("sd15", {"feature_extractor": ["transformers", "CLIPImageProcessor"],
              "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
              "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
              "vae": ["diffusers", "AutoencoderKL"]}),
    ("svd", {"feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
             "vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}),
])
def test_video_pipeline_twins_have_the_published_layout(twins, key, components):
    index = json.loads((twins[key] / "model_index.json").read_text())
    # current diffusers also writes absent optional components as [null, null]; they load the same way
    present = {k: v for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None}
    assert present == components


@pytest.mark.parametrize("key, cls", [("animatediff-motion-adapter-v1-5-2", "MotionAdapter"),
                                      ("sparsectrl-rgb", "SparseControlNetModel"),
                                      ("sparsectrl-scribble", "SparseControlNetModel")])
def test_video_model_twins_are_single_model_folders(twins, key, cls):
    cfg = json.loads((twins[key] / "config.json").read_text())
    assert cfg["_class_name"] == cls and cfg["motion_max_seq_length"] == 32
    assert list(cfg["block_out_channels"]) == list(common.SD15_CHANNELS)  # they plug into the SD1.5 twin


def test_svd_twins_differ_only_in_clip_length(twins):
    a = json.loads((twins["svd"] / "unet" / "config.json").read_text())
    b = json.loads((twins["svd-xt"] / "unet" / "config.json").read_text())
    assert (a.pop("num_frames"), b.pop("num_frames")) == (14, 25) and a == b


@pytest.mark.parametrize("key", sorted(registry.BUILDERS))
def test_fp16_files_exactly_where_the_published_repository_has_them(twins, key):
    from genhelpers.hub import catalog

    has_fp16 = any(twins[key].rglob("*.fp16.safetensors"))
    assert has_fp16 == ("fp16" in catalog.ENTRIES[key].variants)


def test_a_twin_is_cached_under_the_fingerprint_of_what_built_it(tmp_path, monkeypatch):
    """No version number to bump: another library version (or another line of genhelpers) gives another folder,
    so a kept cache never serves a stale twin. The folder of another fingerprint is left alone while it is in use
    (another environment sharing the cache, such as the Kaggle-image rehearsal, reads it), and cleared away once
    it has gone a week unused."""
    first = registry.build("sdxl-vae-fp16-fix", root=tmp_path)
    assert first.name == f"sdxl-vae-fp16-fix-{registry.fingerprint()}"
    assert registry.build("sdxl-vae-fp16-fix", root=tmp_path) == first  # cached

    def other_environment():
        registry.fingerprint.cache_clear()
        monkeypatch.setattr(registry, "WRITTEN_BY", (*registry.WRITTEN_BY, "pillow"))
        try:
            return registry.build("sdxl-vae-fp16-fix", root=tmp_path, force=True)
        finally:
            monkeypatch.undo()
            registry.fingerprint.cache_clear()

    second = other_environment()
    assert second != first and second.is_dir() and first.is_dir()  # both environments keep their twin
    assert registry.build("sdxl-vae-fp16-fix", root=tmp_path) == first
    month_ago = time.time() - 30 * 24 * 3600
    os.utime(first, (month_ago, month_ago))
    second = other_environment()
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name]  # the month-old one is gone
