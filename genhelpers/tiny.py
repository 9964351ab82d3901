"""Tiny random-weight twins of the published models, built offline.

A twin uses the same diffusers/transformers classes as the published checkpoint, with small widths and layer
counts, random weights from a fixed seed, and is written with ``save_pretrained`` in the published folder layout
(model_index.json, one subfolder per component, the ``.fp16`` variant files beside the full-precision ones).
It is then loaded exactly like the real model: ``genhelpers.load("tiny:sdxl-base")``.

What is kept real on purpose: the VAE has four blocks, hence the real scale factor 8 (1024 px -> 128 latents);
the UNets keep the published block types, added conditioning and cross-attention wiring; the tokenizer is a
byte-level BPE CLIP tokenizer whose special tokens sit at the top of the id range like the real ones.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TWIN_VERSION = 11  # bump when a builder changes, so cached twins are rebuilt
SEED = 0

# ----------------------------------------------------------------------------------------------- tokenizer
VOCAB_SIZE = 1000
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_CORPUS = """
a photo of an astronaut riding a horse on the moon, a watercolor painting of a fox in a snowy forest,
portrait of an old sailor with a pipe, cinematic lighting, highly detailed, sharp focus, 8k, trending,
a cozy cabin by a lake at sunset, studio photo of a red sports car, a bowl of ramen, oil painting,
an isometric 3d render of a tiny castle, low quality, blurry, worst quality, deformed, watermark, text,
a cat wearing sunglasses on the beach, a robot reading a book in a library, neon city street at night,
a teapot shaped like a pumpkin, a dragon flying over the mountains, macro photo of a dew drop on a leaf
"""


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map, as a list indexed by byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _learn_merges(text: str, count: int) -> list[tuple[str, str]]:
    symbols = _byte_symbols()
    words = collections.Counter()
    for w in text.replace(",", " ").lower().split():
        seq = [symbols[b] for b in w.encode("utf-8")]
        seq[-1] += "</w>"
        words[tuple(seq)] += 1
    merges = []
    while len(merges) < count:
        pairs = collections.Counter()
        for seq, n in words.items():
            for pair in zip(seq, seq[1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, ties broken alphabetically
        merges.append(best)
        merged = collections.Counter()
        for seq, n in words.items():
            out, i = [], 0
            while i < len(seq):
                if seq[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def write_clip_tokenizer(folder: str | os.PathLike, pad_token: str = EOS, model_max_length: int = 77) -> Path:
    """Write a CLIP byte-level BPE tokenizer (vocab.json, merges.txt, configs) of VOCAB_SIZE ids.

    Ids 0-255 are the byte symbols, 256-511 their end-of-word forms, then learned merges, and the two special
    tokens last (998, 999) -- so the end token has the highest id, which CLIP's pooling relies on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    merges = _learn_merges(_CORPUS, VOCAB_SIZE - len(vocab) - 2)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    filler = 0
    while len(vocab) < VOCAB_SIZE - 2:  # a short corpus may run out of merges
        vocab[f"unused{filler}</w>"] = len(vocab)
        filler += 1
    vocab[BOS], vocab[EOS] = VOCAB_SIZE - 2, VOCAB_SIZE - 1
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length, "do_lower_case": True,
              **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def clip_tokenizer(pad_token: str = EOS):
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as d:
        return CLIPTokenizer.from_pretrained(write_clip_tokenizer(d, pad_token=pad_token))


# ----------------------------------------------------------------------------------------------- components
def _liven(model, std: float = 0.05):
    """Give every all-zero convolution/linear weight small random values (from the seeded stream). A fresh
    ControlNet or SparseCtrl starts its conditioning embedding and output convolutions at zero, so a twin built
    that way ignores its conditioning input: a dead path no test could see. Trained weights are not zero."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)) and not m.weight.any():
                m.weight.normal_(0, std)
    return model


def _checker_config():
    """The tiny CLIP a twin's safety checker is built on (SD 1.5's and DeepFloyd IF's checkers are CLIP towers)."""
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={"vocab_size": VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 4},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 14},
        projection_dim=32)


def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def text_encoder(projection: bool = False, seed: int = SEED):
    """CLIP text transformer, hidden 32. bos/eos ids as in the published configs (eos_token_id=2 makes
    transformers pool at the highest id, i.e. at <|endoftext|>, exactly as for the real checkpoints)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=37, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=77, projection_dim=32, hidden_act="gelu",
                         bos_token_id=0, eos_token_id=2, pad_token_id=1)
    _seeded(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def vae(seed: int = SEED, scaling_factor: float = 0.13025, sample_size: int = 1024, force_upcast: bool = True):
    """Four blocks like the real VAEs -> scale factor 8 (SDXL scales latents by 0.13025, SD1.5 by 0.18215)."""
    from diffusers import AutoencoderKL

    _seeded(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=sample_size,
                         scaling_factor=scaling_factor, force_upcast=force_upcast).eval()


def sdxl_vae(seed: int = SEED, force_upcast: bool = True):
    return vae(seed, 0.13025, 1024, force_upcast)


def sdxl_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="scaled_linear", prediction_type="epsilon", steps_offset=1,
                                  timestep_spacing="leading", interpolation_type="linear", use_karras_sigmas=False)


def sdxl_unet(refiner: bool = False, seed: int = SEED):
    """The published block layout at toy width. Base: 3 levels, cross-attention width = both encoders'
    hidden sizes, added (size, crop) ids. Refiner: 4 levels, only the second encoder, plus aesthetic score."""
    from diffusers import UNet2DConditionModel

    time_dim = 8
    if refiner:
        blocks = dict(block_out_channels=(8, 16, 16, 16),
                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                      up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                      attention_head_dim=(2, 2, 4, 4), transformer_layers_per_block=2, cross_attention_dim=32,
                      projection_class_embeddings_input_dim=5 * time_dim + 32)
    else:
        blocks = dict(block_out_channels=(8, 16, 32),
                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                      up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                      attention_head_dim=(2, 2, 4), transformer_layers_per_block=(1, 1, 2), cross_attention_dim=64,
                      projection_class_embeddings_input_dim=6 * time_dim + 32)
    _seeded(seed)
    return UNet2DConditionModel(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                                norm_num_groups=4, use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=time_dim, **blocks).eval()


# ----------------------------------------------------------------------------------------------- twins
def sdxl_base():
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(
        vae=sdxl_vae(), text_encoder=text_encoder(), text_encoder_2=text_encoder(projection=True, seed=SEED + 1),
        tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(pad_token="!"), unet=sdxl_unet(),
        scheduler=sdxl_scheduler(), force_zeros_for_empty_prompt=True)


def sdxl_refiner():
    """Shares the base twin's text_encoder_2 and VAE weights (same seeds), as the published refiner does."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    return StableDiffusionXLImg2ImgPipeline(
        vae=sdxl_vae(), text_encoder=None, text_encoder_2=text_encoder(projection=True, seed=SEED + 1),
        tokenizer=None, tokenizer_2=clip_tokenizer(pad_token="!"), unet=sdxl_unet(refiner=True, seed=SEED + 2),
        scheduler=sdxl_scheduler(), requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)


def sdxl_vae_fp16_fix():
    return sdxl_vae(seed=SEED + 3, force_upcast=False)


# Shap-E: a prior (transformer over latent tokens), a conditioning encoder, and a renderer whose small MLP gets
# its weights from the latents. Twin latents: 32 tokens of width 32 (published: 1024 x 1024).
def _shap_e_prior(image: bool, seed: int = SEED):
    from diffusers import PriorTransformer

    _seeded(seed)
    return PriorTransformer(num_attention_heads=2, attention_head_dim=16, num_layers=1, embedding_dim=32,
                            num_embeddings=32, additional_embeddings=0, time_embed_dim=128, time_embed_act_fn="gelu",
                            embedding_proj_dim=32, clip_embed_dim=64, norm_in_type="layer",
                            embedding_proj_norm_type="layer" if image else None, encoder_hid_proj_type=None,
                            added_emb_type=None).eval()


def _shap_e_renderer(seed: int = SEED):
    """The published renderer at toy width, with the marching-cubes tables real checkpoints carry. Random
    weights give no surface and an invisible (zero-density) volume, so the output layer, which the latents do
    not overwrite, is offset: the SDF is positive throughout (the mesh is the closed box of the volume) and
    the density too (the views show that box, coloured by the latents, turning)."""
    import torch
    from diffusers.pipelines.shap_e import ShapERenderer

    from . import marching_cubes

    _seeded(seed)
    r = ShapERenderer(param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)), d_latent=32, d_hidden=8, n_output=12,
                      n_hidden_layers=6, act_fn="swish", insert_direction_at=4)
    marching_cubes.install(r)
    with torch.no_grad():
        out = r.mlp.mlp[-1]  # outputs: 0 signed distance, 1-2 coarse/fine density, then colours
        out.weight[:3].mul_(0.05)
        out.bias[:3] = torch.tensor([0.3, 2.0, 2.0])
    return r.eval()


def _shap_e_scheduler():
    from diffusers import HeunDiscreteScheduler

    return HeunDiscreteScheduler(num_train_timesteps=1024, beta_schedule="exp", prediction_type="sample",
                                 use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)


def shap_e():
    from diffusers import ShapEPipeline

    return ShapEPipeline(prior=_shap_e_prior(image=False), text_encoder=text_encoder(projection=True),
                         tokenizer=clip_tokenizer(), shap_e_renderer=_shap_e_renderer(), scheduler=_shap_e_scheduler())


def shap_e_img2img():
    """The image encoder keeps the published geometry (224 px, 14 px patches -> 256 tokens for the prior)."""
    from diffusers import ShapEImg2ImgPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    _seeded(SEED + 4)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                               num_attention_heads=4, image_size=224, patch_size=14,
                                               projection_dim=32)).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
                                   image_mean=[0.48145466, 0.4578275, 0.40821073],
                                   image_std=[0.26862954, 0.26130258, 0.27577711])
    return ShapEImg2ImgPipeline(prior=_shap_e_prior(image=True), image_encoder=encoder, image_processor=processor,
                                shap_e_renderer=_shap_e_renderer(), scheduler=_shap_e_scheduler())


# Stable Diffusion 1.5 and the video models built on it. The SD1.5 UNet keeps the published four levels so that
# motion modules and SparseCtrl (whose block widths must equal the UNet's) plug into it as into the real one.
SD15_CHANNELS = (8, 16, 16, 16)


def sd15():
    """The stable-diffusion-v1-5 layout, safety checker and feature extractor included."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    _seeded(SEED)
    unet = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32).eval()
    _seeded(SEED + 5)
    checker = StableDiffusionSafetyChecker(_checker_config()).eval()
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    return StableDiffusionPipeline(vae=vae(scaling_factor=0.18215, sample_size=512), text_encoder=text_encoder(),
                                   tokenizer=clip_tokenizer(), unet=unet, scheduler=scheduler, safety_checker=checker,
                                   feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
                                   requires_safety_checker=True)


def _sd21(v_prediction: bool, seed: int):
    """Stable Diffusion 2.1 in the published layout: the SD2 UNet (linear projections, per-level head sizes),
    the OpenCLIP text tower (gelu, pad token "!"), no safety checker; 2.1-base samples with PNDM and predicts the
    noise (epsilon), 2.1 (768 px) with DDIM and predicts v (a mix of noise and image)."""
    from diffusers import DDIMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor

    _seeded(seed)
    unet = UNet2DConditionModel(sample_size=96 if v_prediction else 64, in_channels=4, out_channels=4,
                                layers_per_block=2, block_out_channels=SD15_CHANNELS, norm_num_groups=4,
                                attention_head_dim=(2, 2, 4, 4), use_linear_projection=True,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32).eval()
    common = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                  set_alpha_to_one=False)
    scheduler = (DDIMScheduler(**common, clip_sample=False, prediction_type="v_prediction") if v_prediction
                 else PNDMScheduler(**common, skip_prk_steps=True, prediction_type="epsilon"))
    return StableDiffusionPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=768 if v_prediction else 512),
                                   text_encoder=text_encoder(seed=seed), tokenizer=clip_tokenizer(pad_token="!"),
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
                                   requires_safety_checker=False)


def sd21_base():
    return _sd21(v_prediction=False, seed=SEED + 15)


def sd21():
    return _sd21(v_prediction=True, seed=SEED + 16)


MOTION = dict(motion_max_seq_length=32, motion_num_attention_heads=2)  # 32 frames at most, as published


def motion_adapter():
    from diffusers import MotionAdapter

    _seeded(SEED + 6)
    return MotionAdapter(block_out_channels=SD15_CHANNELS, motion_layers_per_block=2, motion_norm_num_groups=4,
                         use_motion_mid_block=True, **MOTION).eval()


def _sparsectrl(rgb: bool):
    """RGB SparseCtrl takes VAE latents of the key frames (+ a mask channel); scribble takes the drawings
    through its own small convolutional embedding."""
    from diffusers import SparseControlNetModel

    _seeded(SEED + (7 if rgb else 8))
    return _liven(SparseControlNetModel(block_out_channels=SD15_CHANNELS, layers_per_block=2, norm_num_groups=4,
                                        cross_attention_dim=32, attention_head_dim=8,
                                        conditioning_embedding_out_channels=(8, 8, 8, 8),
                                        conditioning_channels=4 if rgb else 3, use_simplified_condition_embedding=rgb,
                                        concat_conditioning_mask=True, **MOTION).eval(), std=0.3)


def sparsectrl_rgb():
    return _sparsectrl(rgb=True)


def sparsectrl_scribble():
    return _sparsectrl(rgb=False)


def _svd(num_frames: int):
    """Stable Video Diffusion's layout; its UNet and temporal VAE fix 32 normalisation groups, hence width 64
    (two channels per group: with one, float rounding is amplified and comparisons on the twin mean nothing)."""
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    _seeded(SEED)
    unet = UNetSpatioTemporalConditionModel(sample_size=96, in_channels=8, out_channels=4, layers_per_block=2,
                                            block_out_channels=(64, 64, 64, 64), num_attention_heads=(1, 2, 2, 2),
                                            cross_attention_dim=32, addition_time_embed_dim=8,
                                            projection_class_embeddings_input_dim=3 * 8, num_frames=num_frames).eval()
    _seeded(SEED + 1)
    decoder = AutoencoderKLTemporalDecoder(block_out_channels=(64, 64, 64, 64), layers_per_block=1,
                                           down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4,
                                           sample_size=768, scaling_factor=0.18215, force_upcast=True).eval()
    _seeded(SEED + 2)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                             num_attention_heads=4, image_size=224, patch_size=14,
                                                             projection_dim=32)).eval()
    scheduler = EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", prediction_type="v_prediction",
                                       interpolation_type="linear", sigma_min=0.002, sigma_max=700.0, steps_offset=1,
                                       timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True)
    return StableVideoDiffusionPipeline(vae=decoder, image_encoder=encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))


def svd():
    return _svd(num_frames=14)


def svd_xt():
    return _svd(num_frames=25)


class _ModelFolder:
    """A transformers model published together with its tokenizer and image processor in one folder (CLIP's
    byte-level BPE tokenizer is written in its published form; a full processor saves its own tokenizer)."""

    def __init__(self, model, processor, clip_tokenizer: bool = True):
        self.model, self.processor, self.clip_tokenizer = model, processor, clip_tokenizer

    def save_pretrained(self, folder, **kwargs):
        self.model.save_pretrained(folder, **kwargs)
        self.processor.save_pretrained(folder)
        if not self.clip_tokenizer:
            return
        write_clip_tokenizer(folder)
        from transformers import CLIPTokenizer  # written back once: tokenizer.json too, as the published repo has

        CLIPTokenizer.from_pretrained(folder).save_pretrained(folder)


# the text tower of the CLIP-family twins (CLIP, X-CLIP): published special-token ids, toy width
TOY_CLIP_TEXT = {"vocab_size": VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 2,
                 "pad_token_id": 1}


def clip_vit_large_patch14():
    """openai/clip-vit-large-patch14 at toy width: CLIPModel + tokenizer + 224-px image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    _seeded(SEED + 9)
    model = CLIPModel(CLIPConfig(
        text_config=TOY_CLIP_TEXT,
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 14},
        projection_dim=32)).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   image_mean=[0.48145466, 0.4578275, 0.40821073],
                                   image_std=[0.26862954, 0.26130258, 0.27577711])
    return _ModelFolder(model, processor)


# Zero123++: a Stable Diffusion 2 UNet (text width 1024 -> 32 here), the SD2 OpenCLIP text tower, a CLIP ViT-H
# vision tower whose projection has the text width (its embedding is added to the text encoding), two image
# processors (224 px for CLIP, 320 px in [-1, 1] for the VAE) and 77 ramping coefficients in the config.
def _zero123plus_unet(seed):
    from diffusers import UNet2DConditionModel

    _seeded(seed)
    return UNet2DConditionModel(sample_size=40, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=(2, 2, 4, 4),
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32, use_linear_projection=True).eval()


def _zero123plus(version: str):
    from diffusers import EulerAncestralDiscreteScheduler
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from .pipelines import Zero123PlusPipeline

    seed = SEED + (10 if version == "v1.1" else 11)
    _seeded(seed)
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                            num_attention_heads=4, image_size=224, patch_size=14,
                                                            projection_dim=32)).eval()
    scheduler = EulerAncestralDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                                beta_schedule="linear", prediction_type="v_prediction",
                                                timestep_spacing="trailing", steps_offset=1)
    clip_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    vae_processor = CLIPImageProcessor(size={"shortest_edge": 320}, crop_size={"height": 320, "width": 320},
                                       image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    ramp = [round(0.1 + 0.9 * i / 76, 6) for i in range(77)]  # a plain ramp: the published values are learned
    return Zero123PlusPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=768),
                               text_encoder=text_encoder(seed=seed),
                               tokenizer=clip_tokenizer(pad_token="!"), unet=_zero123plus_unet(seed),
                               scheduler=scheduler, vision_encoder=vision, feature_extractor_clip=clip_processor,
                               feature_extractor_vae=vae_processor, ramping_coefficients=ramp)


def zero123plus_v11():
    return _zero123plus("v1.1")


def zero123plus_v12():
    return _zero123plus("v1.2")


def controlnet_zp11_depth():
    """A fresh ControlNet's output convolutions start at zero (a no-op); trained ones are not: give the twin
    small random values there so that, like the published model, it changes the result."""
    import torch
    from diffusers import ControlNetModel

    _seeded(SEED + 12)
    net = ControlNetModel(block_out_channels=SD15_CHANNELS, layers_per_block=2, norm_num_groups=4,
                          attention_head_dim=(2, 2, 4, 4), cross_attention_dim=32, use_linear_projection=True,
                          conditioning_embedding_out_channels=(8, 8, 8, 8),
                          down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)).eval()
    with torch.no_grad():
        for p in [*net.controlnet_down_blocks.parameters(), *net.controlnet_mid_block.parameters()]:
            p.normal_(0, 0.3)
    return _liven(net, std=0.3)  # the conditioning embedding's last convolution too: the depth image must count


# MVDream: our multi-view UNet at toy width (64 channels: its GroupNorms have 32 groups, as published, so two
# channels per group keep the twin numerically well-conditioned) with the
# published block layout, SD2.1's text tower (width 1024 -> 32 here), the SD2 VAE and the published DDIM setup.
def mvdream():
    from .pipelines.mvdream import MultiViewUNetModel, MVDreamPipeline, published_scheduler

    seed = SEED + 13
    _seeded(seed)
    unet = MultiViewUNetModel(image_size=32, model_channels=64, channel_mult=(1, 2, 2, 2), num_head_channels=32,
                              context_dim=32, camera_dim=16).eval()
    scheduler = published_scheduler()
    return MVDreamPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=256), text_encoder=text_encoder(seed=seed),
                           tokenizer=clip_tokenizer(pad_token="!"), unet=unet, scheduler=scheduler)


# ImageDream: the same with ip_dim=16 image tokens, and a CLIP vision tower that keeps the published width 1280
# (the image-prompt resampler reads 1280-wide features) with two thin layers; the SD2 setup otherwise.
def imagedream():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from .pipelines.mvdream import MultiViewUNetModel

    pipe = mvdream()
    _seeded(SEED + 14)
    pipe.unet = MultiViewUNetModel(**{**{k: v for k, v in pipe.unet.config.items() if not k.startswith("_")},
                                      "ip_dim": 16}).eval()
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=1280, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=10, image_size=224, patch_size=14)).eval()
    pipe.register_modules(unet=pipe.unet, image_encoder=vision,
                          feature_extractor=CLIPImageProcessor(size={"shortest_edge": 224},
                                                               crop_size={"height": 224, "width": 224}))
    return pipe


# ----------------------------------------------------------------------------------------------- DeepFloyd IF
# IF's tokenizer folder holds a SentencePiece model (spiece.model), as T5's does; the twin's is trained offline
# on the corpus above, so loading it goes through the same conversion (sentencepiece) as the published one.
T5_VOCAB = 160  # the twin T5's embedding rows: the SentencePiece pieces + T5's 100 sentinel tokens fit below


def write_t5_tokenizer(folder: str | os.PathLike, model_max_length: int = 77) -> Path:
    """A T5 tokenizer folder in the published form (spiece.model + tokenizer_config.json)."""
    import io

    import sentencepiece

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    lines = [x.strip() for x in _CORPUS.replace(",", "\n").splitlines() if x.strip()]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 8), model_writer=model, vocab_size=48, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2,
        hard_vocab_limit=False)
    (folder / "spiece.model").write_bytes(model.getvalue())
    config = {"tokenizer_class": "T5Tokenizer", "model_max_length": model_max_length, "extra_ids": 100,
              "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {k: config[k] for k in ("eos_token", "unk_token", "pad_token")}, indent=2))
    return folder


def t5_tokenizer():
    from transformers import T5Tokenizer

    with tempfile.TemporaryDirectory() as d:
        return T5Tokenizer.from_pretrained(write_t5_tokenizer(d))


def t5_encoder(seed: int = SEED):
    """T5-v1.1's encoder (gated GELU, relative position buckets), width 32."""
    from transformers import T5Config, T5EncoderModel

    _seeded(seed)
    return T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
                                   dense_act_fn="gelu_new", is_gated_act=True, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0)).eval()


def _if_scheduler(sample_max_value: float):
    """IF's sampler: DDPM on a cosine schedule, learned variance, dynamic thresholding (stage I clips at 1.5,
    stage II at 1.0) — tests/reference/deepfloyd_if/README.md."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=sample_max_value,
                         variance_type="learned_range", prediction_type="epsilon")


def _if_extras(seed: int):
    """The published folder's other parts: the CLIP image processor, the safety checker (saved, never loaded:
    catalog ``skip``) and the watermarker."""
    from diffusers.pipelines.deepfloyd_if import IFSafetyChecker, IFWatermarker
    from transformers import CLIPImageProcessor

    _seeded(seed)
    checker = IFSafetyChecker(_checker_config()).eval()
    return dict(safety_checker=checker, feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
                watermarker=IFWatermarker(), requires_safety_checker=True)


# cross_attention_dim 64: the cross-attention GroupNorm has a fixed 32 groups in diffusers (2 channels each)
IF_UNET = dict(block_out_channels=(16, 32), norm_num_groups=4, act_fn="gelu", attention_head_dim=8,
               cross_attention_dim=64, encoder_hid_dim=32, encoder_hid_dim_type="text_proj",
               addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
               resnet_time_scale_shift="scale_shift", mid_block_type="UNetMidBlock2DSimpleCrossAttn",
               out_channels=6)  # 3 channels of noise + 3 of learned variance


def if_i_xl():
    """IF stage I: T5 encoder + a pixel-space UNet at 16 px (published: 64 px) with IF's block types
    (ResNet down/up-sampling, simple cross-attention on the T5 tokens, text-pooled added embedding)."""
    from diffusers import IFPipeline, UNet2DConditionModel

    _seeded(SEED + 30)
    unet = UNet2DConditionModel(sample_size=16, in_channels=3, layers_per_block=1, **IF_UNET,
                                down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                                up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D")).eval()
    return IFPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(SEED + 31), unet=unet,
                      scheduler=_if_scheduler(1.5), **_if_extras(SEED + 32))


def if_ii_l():
    """IF stage II: the low-resolution image (noised by ``image_noising_scheduler``, its noise level fed as a
    class embedding) concatenated to the noise, 16 → 64 px here (published: 64 → 256); no text encoder: it takes
    stage I's T5 embeddings."""
    from diffusers import DDPMScheduler, IFSuperResolutionPipeline, UNet2DConditionModel

    _seeded(SEED + 33)
    unet = UNet2DConditionModel(sample_size=64, in_channels=6, layers_per_block=(1, 1), class_embed_type="timestep",
                                mid_block_scale_factor=1.4142271248762552,
                                resnet_out_scale_factor=1.4142271248762552, resnet_skip_time_act=True, **IF_UNET,
                                down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                                up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D")).eval()
    noising = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="fixed_small")
    return IFSuperResolutionPipeline(tokenizer=t5_tokenizer(), text_encoder=None, unet=unet,
                                     scheduler=_if_scheduler(1.0), image_noising_scheduler=noising,
                                     **_if_extras(SEED + 34))


def sd_x4_upscaler():
    """The latent x4 upscaler (IF's stage III in diffusers' recipe): VAE with three levels (scale factor 4,
    latents scaled by 0.08333), the low-resolution image concatenated to the latents (4 + 3 channels), its noise
    level as a class label (1000 classes), v-prediction, OpenCLIP-style text tower."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    _seeded(SEED + 35)
    unet = UNet2DConditionModel(sample_size=32, in_channels=7, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=8,
                                num_class_embeds=1000, only_cross_attention=(True, True, True, False),
                                use_linear_projection=True, cross_attention_dim=32,
                                down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3,
                                up_block_types=("CrossAttnUpBlock2D",) * 3 + ("UpBlock2D",)).eval()
    _seeded(SEED + 36)
    autoencoder = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
                                down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                                layers_per_block=1, norm_num_groups=4, sample_size=256,
                                scaling_factor=0.08333).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction")
    return StableDiffusionUpscalePipeline(vae=autoencoder, text_encoder=text_encoder(seed=SEED + 37),
                                          tokenizer=clip_tokenizer(pad_token="!"), unet=unet,
                                          low_res_scheduler=DDPMScheduler(beta_schedule="linear"),
                                          scheduler=scheduler, max_noise_level=350)


# ----------------------------------------------------------------------------------------------- text-to-video
def _unet3d(seed: int):
    from diffusers import UNet3DConditionModel

    _seeded(seed)
    # attention_head_dim is the size of a head here (published 64 at 320 channels: 5 heads); 4 → 2-4 heads, so
    # attention slicing ("auto": half the heads at a time) has heads to split, as in the published model
    unet = UNet3DConditionModel(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=4,
                                cross_attention_dim=32,
                                down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                                up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3).eval()
    return _liven(unet)  # a fresh UNet3D starts its temporal layers at zero: frames would not talk to each other


def _text_to_video(seed: int):
    """ModelScope's layout: the SD UNet inflated to 3D (temporal convolutions and temporal attention after every
    spatial layer), the OpenCLIP-style text tower, the SD VAE decoding frame by frame, DDIM."""
    from diffusers import DDIMScheduler, TextToVideoSDPipeline

    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return TextToVideoSDPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=256),
                                 text_encoder=text_encoder(seed=seed + 1), tokenizer=clip_tokenizer(pad_token="!"),
                                 unet=_unet3d(seed + 2), scheduler=scheduler)


def modelscope_t2v():
    return _text_to_video(SEED + 40)


def zeroscope_v2_576w():
    return _text_to_video(SEED + 43)


def cogvideox_2b():
    """CogVideoX's layout: T5 encoder (spiece tokenizer, 226 tokens), a diffusion transformer over patches of
    3D-VAE latents (16 channels, 4× in time, 8× in space), the CogVideoX DDIM sampler (v-prediction, zero
    terminal SNR, trailing spacing, SNR shift 3)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    _seeded(SEED + 46)
    transformer = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=16,
                                              out_channels=16, time_embed_dim=16, text_embed_dim=32, num_layers=2,
                                              sample_width=12, sample_height=8, sample_frames=9, patch_size=2,
                                              max_text_seq_length=226).eval()
    _seeded(SEED + 47)
    autoencoder = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 16, 16), latent_channels=16, layers_per_block=1,
                                         norm_num_groups=4, temporal_compression_ratio=4, sample_height=64,
                                         sample_width=96).eval()
    scheduler = CogVideoXDDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                       set_alpha_to_one=True, snr_shift_scale=3.0, timestep_spacing="trailing")
    return CogVideoXPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(SEED + 48), vae=autoencoder,
                             transformer=transformer, scheduler=scheduler)


def xclip_base_patch32():
    """microsoft/xclip-base-patch32 at toy width: a CLIP ViT whose frames exchange a message token (cross-frame
    communication), a multi-frame integration transformer, a video-conditioned text prompt; 8 frames of 224 px;
    VideoMAE's image processor and CLIP's tokenizer, as published."""
    from transformers import VideoMAEImageProcessor, XCLIPConfig, XCLIPModel, XCLIPProcessor

    _seeded(SEED + 65)
    model = XCLIPModel(XCLIPConfig(
        text_config=TOY_CLIP_TEXT,
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 32, "num_frames": 8, "mit_hidden_size": 32,
                       "mit_intermediate_size": 37, "mit_num_hidden_layers": 1, "mit_num_attention_heads": 4},
        projection_dim=32, prompt_layers=1, prompt_attention_heads=4, prompt_num_attention_heads=4,
        prompt_hidden_act="quick_gelu")).eval()
    images = VideoMAEImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                    image_mean=[0.48145466, 0.4578275, 0.40821073],
                                    image_std=[0.26862954, 0.26130258, 0.27577711])
    return _LegacyProcessorFolder(model, XCLIPProcessor(image_processor=images, tokenizer=clip_tokenizer()))


class _LegacyProcessorFolder(_ModelFolder):
    """A folder published before transformers wrote processor_config.json: the image processor's settings sit in
    preprocessor_config.json (transformers 5 still reads that form)."""

    def save_pretrained(self, folder, **kwargs):
        super().save_pretrained(folder, **kwargs)
        Path(folder, "processor_config.json").unlink(missing_ok=True)
        self.processor.image_processor.save_pretrained(folder)
        config = Path(folder, "preprocessor_config.json")
        data = json.loads(config.read_text())
        data["image_processor_type"] = data.get("image_processor_type", "").removesuffix("Pil")
        data["processor_class"] = type(self.processor).__name__
        config.write_text(json.dumps(data, indent=2))


# ----------------------------------------------------------------------------------------------- Florence-2
def bart_tokenizer(extra_special_tokens: dict | None = None):
    """BART's byte-level BPE (GPT-2 style: a leading space is part of the word) learned offline on the twins'
    corpus with `tokenizers`, BART's specials at ids 0-3 (<s>, <pad>, </s>, <unk>) and <mask>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([_CORPUS] * 3, vocab_size=600, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        return BartTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             extra_special_tokens=extra_special_tokens or {})


FLORENCE_PARSERS = ("pure_text", "description_with_bboxes", "description_with_polygons", "polygons", "bboxes",
                    "description_with_bboxes_or_polygons")


def _florence_2(seed: int):
    """Florence-2 as transformers 5 has it natively (florence-community/…): a DaViT vision tower (four stages of
    window + channel attention; 768 px → 24×24 + 1 tokens, here 64 px → 2×2 + 1), projected into a BART
    encoder–decoder that reads the image tokens and a task prompt ("<CAPTION>" → "What does the image
    describe?") and writes the answer. Random weights are scaled up so the image reaches the words (a fresh tiny
    BART says the same thing for any picture), and the twin's generation settings keep its words words: no
    byte pieces or special tokens, no repeats (the published generation_config has no such settings)."""
    import torch
    from transformers import (
        BartConfig,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
    )

    tok = bart_tokenizer({"image_token": "<image>"})
    images = CLIPImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
                                do_center_crop=False, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    images.image_seq_length = 5  # (64 / 32)² + 1
    processor = Florence2Processor(image_processor=images, tokenizer=tok,
                                   post_processor_config={k: {} for k in FLORENCE_PARSERS})
    _seeded(seed)
    config = Florence2Config(
        text_config=BartConfig(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=len(tok),
                               max_position_embeddings=1024),
        vision_config=Florence2VisionConfig(embed_dim=[8, 16, 32, 32], num_heads=[1, 1, 2, 2], num_groups=[1, 1, 2, 2],
                                            depths=[1, 1, 1, 1], window_size=2, projection_dim=32),
        image_token_id=tok.image_token_id)
    model = Florence2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(8.0)
    gen = model.generation_config
    gen.suppress_tokens = [i for i in range(261) if i != tok.eos_token_id] + [tok.image_token_id]  # specials, bytes
    gen.min_new_tokens, gen.no_repeat_ngram_size = 6, 1
    return _ModelFolder(model, processor, clip_tokenizer=False)


def florence_2_base():
    return _florence_2(SEED + 60)


def florence_2_large():
    return _florence_2(SEED + 61)


# ----------------------------------------------------------------------------------------------- unCLIP (Karlo)
KARLO_EMBED = 32  # CLIP's embedding width (ViT-L/14: 768): the prior's output, the text and image projections


def _karlo_parts(seed: int = SEED + 50) -> dict:
    """Karlo's shared parts in the published layout: the decoder (a 64-px pixel UNet here 16 px, with the
    published block types, class embedding = the projected CLIP image embedding, learned-range variance), the
    text_proj that turns the image embedding into extra context tokens and a time-embedding offset, two
    super-resolution UNets (first steps / last step; 256 px, here 64 px), the CLIP text tower with projection."""
    from diffusers import UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    _seeded(seed)
    decoder = UNet2DConditionModel(
        sample_size=16, layers_per_block=1, in_channels=3, out_channels=6, block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=32, class_embed_type="identity",
        attention_head_dim=16, resnet_time_scale_shift="scale_shift", norm_num_groups=8).eval()
    text_proj = UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=KARLO_EMBED, time_embed_dim=128,
                                    cross_attention_dim=32).eval()

    def super_res(s):
        _seeded(s)
        return UNet2DModel(sample_size=64, layers_per_block=1, in_channels=6, out_channels=3,
                           block_out_channels=(16, 32), down_block_types=("ResnetDownsampleBlock2D",) * 2,
                           up_block_types=("ResnetUpsampleBlock2D",) * 2, add_attention=False, norm_num_groups=8).eval()

    return dict(decoder=decoder, text_proj=text_proj, super_res_first=super_res(seed + 1),
                super_res_last=super_res(seed + 2), text_encoder=text_encoder(projection=True, seed=seed + 3),
                tokenizer=clip_tokenizer(),
                decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon"),
                super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon"))


def karlo_v1_alpha():
    """kakaobrain/karlo-v1-alpha: the shared parts + the prior, a transformer that denoises a CLIP image embedding
    given the caption's CLIP text embedding and token states (it predicts the clean embedding: 'sample')."""
    from diffusers import PriorTransformer, UnCLIPPipeline, UnCLIPScheduler

    parts = _karlo_parts()
    _seeded(SEED + 55)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=16, num_layers=2, embedding_dim=KARLO_EMBED,
                             num_embeddings=77, additional_embeddings=4).eval()
    import torch

    with torch.no_grad():  # a fresh prior has clip_std = 0 (its output would always be clip_mean: a dead path) and
        # zero position / query embeddings; the published one carries CLIP's image-embedding statistics
        prior.clip_mean.normal_(0, 0.1)
        prior.clip_std.uniform_(0.5, 1.5)
        prior.positional_embedding.normal_(0, 0.02)
        prior.prd_embedding.normal_(0, 0.02)
    return UnCLIPPipeline(prior=prior, prior_scheduler=UnCLIPScheduler(variance_type="fixed_small_log",
                                                                       prediction_type="sample", clip_sample_range=5.0),
                          **parts)


def karlo_v1_alpha_image_variations():
    """The variations repository as diffusers built it: Karlo's parts (same weights) + CLIP ViT-L/14's vision tower
    with projection (here: the CLIP ViT-L/14 twin's, weight for weight, as the published one is openai's) and a
    default CLIPImageProcessor (224 px)."""
    from diffusers import UnCLIPImageVariationPipeline
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    from .unclip import vision_config

    clip = clip_vit_large_patch14().model
    image_encoder = CLIPVisionModelWithProjection(vision_config(clip.config)).eval()
    image_encoder.vision_model.load_state_dict(clip.vision_model.state_dict())
    image_encoder.visual_projection.load_state_dict(clip.visual_projection.state_dict())
    return UnCLIPImageVariationPipeline(image_encoder=image_encoder, feature_extractor=CLIPImageProcessor(),
                                        **_karlo_parts())


BUILDERS = {
    "sdxl-base": sdxl_base,
    "sdxl-refiner": sdxl_refiner,
    "sdxl-vae-fp16-fix": sdxl_vae_fp16_fix,
    "shap-e": shap_e,
    "shap-e-img2img": shap_e_img2img,
    "sd15": sd15,
    "sd21-base": sd21_base,
    "sd21": sd21,
    "animatediff-motion-adapter-v1-5-2": motion_adapter,
    "sparsectrl-rgb": sparsectrl_rgb,
    "sparsectrl-scribble": sparsectrl_scribble,
    "svd": svd,
    "svd-xt": svd_xt,
    "clip-vit-large-patch14": clip_vit_large_patch14,
    "zero123plus-v1.1": zero123plus_v11,
    "zero123plus-v1.2": zero123plus_v12,
    "controlnet-zp11-depth": controlnet_zp11_depth,
    "mvdream": mvdream,
    "imagedream": imagedream,
    "if-i-xl": if_i_xl,
    "if-ii-l": if_ii_l,
    "sd-x4-upscaler": sd_x4_upscaler,
    "modelscope-t2v": modelscope_t2v,
    "zeroscope-v2-576w": zeroscope_v2_576w,
    "cogvideox-2b": cogvideox_2b,
    "karlo-v1-alpha": karlo_v1_alpha,
    "karlo-v1-alpha-image-variations": karlo_v1_alpha_image_variations,
    "florence-2-base": florence_2_base,
    "florence-2-large": florence_2_large,
    "xclip-base-patch32": xclip_base_patch32,
}


@contextlib.contextmanager
def quiet():
    """Silence the libraries' progress bars and dtype chatter while twins are written."""
    import diffusers
    import transformers

    levels = diffusers.logging.get_verbosity(), transformers.logging.get_verbosity()
    diffusers.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers.logging.set_verbosity(levels[0])
        transformers.logging.set_verbosity(levels[1])
        transformers.logging.enable_progress_bar()


def cache_dir() -> Path:
    return Path(os.environ.get("GENHELPERS_CACHE") or Path.home() / ".cache" / "genhelpers")


def _save(obj, folder: Path, variant: str | None = None, safe: bool = True) -> None:
    obj.save_pretrained(folder, safe_serialization=safe, variant=variant)


def _write_twin(key: str, folder: Path) -> None:
    from . import catalog

    obj = BUILDERS[key]()
    _save(obj, folder, safe=not catalog.ENTRIES[key].pickle_only)  # pickle-only repos get pickle twins
    if catalog.ENTRIES[key].pickle_only:  # transformers 5 writes safetensors regardless: convert as published
        import torch
        from safetensors.torch import load_file

        for f in [*folder.glob("model.safetensors"), *folder.glob("*/model.safetensors")]:
            torch.save(load_file(f), f.with_name("pytorch_model.bin"))
            f.unlink()
    for sub, pad in (("tokenizer", EOS), ("tokenizer_2", "!")):
        tok = folder / sub
        if (tok / "tokenizer_config.json").is_file() and "T5Tokenizer" in (tok / "tokenizer_config.json").read_text():
            shutil.rmtree(tok)  # published T5 folders hold spiece.model (transformers 5 writes tokenizer.json)
            write_t5_tokenizer(tok)
        elif tok.is_dir():  # published CLIP tokenizer folders hold vocab.json + merges.txt
            pad = "!" if key == "sd-x4-upscaler" else pad
            shutil.rmtree(tok)
            write_clip_tokenizer(tok, pad_token=pad)
    index = folder / "model_index.json"
    if index.exists():  # without torchvision transformers names the PIL processor class; published files don't
        text = index.read_text().replace("CLIPImageProcessorPil", "CLIPImageProcessor")
        # Karlo's published model_index.json names text_proj by the module of its day (see loader.FROZEN_...)
        old, new = '"diffusers",\n    "UnCLIPTextProjModel"', '"unclip",\n    "UnCLIPTextProjModel"'
        index.write_text(text.replace(old, new))
    if "fp16" in catalog.ENTRIES[key].variants:
        _write_fp16(obj, folder)
    for component in SHARDED.get(key, ()):
        _shard_in_two(getattr(obj, component), folder / component, catalog.ENTRIES[key].variants)


# components whose published weights are split in two shards with an index (T5-XXL: ~19 GB in float32)
SHARDED = {"if-i-xl": ("text_encoder",)}


def _shard_in_two(model, folder: Path, variants) -> None:
    """Re-save ``model`` as two shards + index under the published names (model-0000N-of-00002.safetensors,
    model.fp16-0000N-of-00002.safetensors with model.safetensors.index.fp16.json)."""
    import torch

    for f in folder.glob("model*.safetensors*"):
        f.unlink()
    model.to(torch.float32)
    total = sum(p.numel() * 4 for p in model.parameters())  # float32 bytes
    for variant in (None, *(("fp16",) if "fp16" in variants else ())):
        m = model.to(torch.float16) if variant else model
        for share in (0.5, 0.6, 0.7, 0.8, 0.9):  # shards fill greedily by tensor: find a size giving two
            for f in folder.glob(f"model{'.' + variant if variant else ''}-*.safetensors"):
                f.unlink()
            m.save_pretrained(folder, safe_serialization=True, variant=variant,
                              max_shard_size=int(total * share / (2 if variant else 1)))
            if len(list(folder.glob(f"model{'.' + variant if variant else ''}-*-of-00002.safetensors"))) == 2:
                break
    model.to(torch.float32)
    # the fp16 save rewrote config.json's dtype; the default weights (and the published config) are float32
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"float16"', '"float32"'))


def _write_fp16(obj, folder: Path) -> None:
    import torch

    # Where the published repository has them, the fp16 files sit beside the fp32 ones under their published
    # names (…/diffusion_pytorch_model.fp16.safetensors, …/model.fp16.safetensors). Save them aside and move
    # only the weight files in, so the configs keep describing the full-precision default.
    with tempfile.TemporaryDirectory(dir=folder.parent) as aside:
        _save(obj.to(torch.float16), Path(aside), variant="fp16")
        for f in Path(aside).rglob("*.fp16.safetensors"):
            target = folder / f.relative_to(aside)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)


def build(key: str, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Return the folder of twin ``key``, building it first if it is not cached. Safe to call from several
    processes at once: each builds in a private folder and the first to finish renames it into place."""
    if key not in BUILDERS:
        raise ValueError(f"no tiny twin named {key!r}; known twins: {', '.join(sorted(BUILDERS))}")
    root = Path(root) if root else cache_dir() / "tiny"
    folder = root / f"{key}-v{TWIN_VERSION}"
    if folder.is_dir() and not force:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        with quiet():
            _write_twin(key, work)
        if force and folder.is_dir():
            shutil.rmtree(folder)
        try:
            os.rename(work, folder)
        except OSError:  # another process won the race; its twin is identical (same seed)
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder


def _register() -> None:
    from .weights import register_twins

    register_twins(lambda: BUILDERS, build)


_register()
