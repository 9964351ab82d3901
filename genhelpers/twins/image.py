"""Twins of the text-to-image families: SDXL (+ refiner, fp16-fix VAE), SD 1.5, SD 2.1 (base and 768),
DeepFloyd IF's cascade with the x4 upscaler, Karlo's unCLIP.
"""
from __future__ import annotations

from .common import (
    SD15_CHANNELS,
    SEED,
    checker_config,
    clip_tokenizer,
    seeded,
    t5_encoder,
    t5_tokenizer,
    text_encoder,
    vae,
)
from .vision import clip_vit_large_patch14


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
    seeded(seed)
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


def sd15():
    """The stable-diffusion-v1-5 layout, safety checker and feature extractor included."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    seeded(SEED)
    unet = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32).eval()
    seeded(SEED + 5)
    checker = StableDiffusionSafetyChecker(checker_config()).eval()
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

    seeded(seed)
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

    seeded(seed)
    checker = IFSafetyChecker(checker_config()).eval()
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

    seeded(SEED + 30)
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

    seeded(SEED + 33)
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

    seeded(SEED + 35)
    unet = UNet2DConditionModel(sample_size=32, in_channels=7, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=8,
                                num_class_embeds=1000, only_cross_attention=(True, True, True, False),
                                use_linear_projection=True, cross_attention_dim=32,
                                down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3,
                                up_block_types=("CrossAttnUpBlock2D",) * 3 + ("UpBlock2D",)).eval()
    seeded(SEED + 36)
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


# ----------------------------------------------------------------------------------------------- unCLIP (Karlo)
KARLO_EMBED = 32  # CLIP's embedding width (ViT-L/14: 768): the prior's output, the text and image projections


def _karlo_parts(seed: int = SEED + 50) -> dict:
    """Karlo's shared parts in the published layout: the decoder (a 64-px pixel UNet here 16 px, with the
    published block types, class embedding = the projected CLIP image embedding, learned-range variance), the
    text_proj that turns the image embedding into extra context tokens and a time-embedding offset, two
    super-resolution UNets (first steps / last step; 256 px, here 64 px), the CLIP text tower with projection."""
    from diffusers import UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    seeded(seed)
    decoder = UNet2DConditionModel(
        sample_size=16, layers_per_block=1, in_channels=3, out_channels=6, block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=32, class_embed_type="identity",
        attention_head_dim=16, resnet_time_scale_shift="scale_shift", norm_num_groups=8).eval()
    text_proj = UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=KARLO_EMBED, time_embed_dim=128,
                                    cross_attention_dim=32).eval()

    def super_res(s):
        seeded(s)
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
    seeded(SEED + 55)
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

    from ..models.unclip import vision_config

    clip = clip_vit_large_patch14().model
    image_encoder = CLIPVisionModelWithProjection(vision_config(clip.config)).eval()
    image_encoder.vision_model.load_state_dict(clip.vision_model.state_dict())
    image_encoder.visual_projection.load_state_dict(clip.visual_projection.state_dict())
    return UnCLIPImageVariationPipeline(image_encoder=image_encoder, feature_extractor=CLIPImageProcessor(),
                                        **_karlo_parts())


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "sdxl-base": sdxl_base,
    "sdxl-refiner": sdxl_refiner,
    "sdxl-vae-fp16-fix": sdxl_vae_fp16_fix,
    "sd15": sd15,
    "sd21-base": sd21_base,
    "sd21": sd21,
    "if-i-xl": if_i_xl,
    "if-ii-l": if_ii_l,
    "sd-x4-upscaler": sd_x4_upscaler,
    "karlo-v1-alpha": karlo_v1_alpha,
    "karlo-v1-alpha-image-variations": karlo_v1_alpha_image_variations,
}
