"""Twins of the video families: AnimateDiff's motion adapter and SparseCtrl, SVD / SVD-XT, ModelScope T2V and
ZeroScope (UNet3D), CogVideoX.
"""
from __future__ import annotations

from .common import SD15_CHANNELS, SEED, clip_tokenizer, liven, seeded, t5_encoder, t5_tokenizer, text_encoder, vae

MOTION = dict(motion_max_seq_length=32, motion_num_attention_heads=2)  # 32 frames at most, as published


def motion_adapter():
    from diffusers import MotionAdapter

    seeded(SEED + 6)
    return MotionAdapter(block_out_channels=SD15_CHANNELS, motion_layers_per_block=2, motion_norm_num_groups=4,
                         use_motion_mid_block=True, **MOTION).eval()


def _sparsectrl(rgb: bool):
    """RGB SparseCtrl takes VAE latents of the key frames (+ a mask channel); scribble takes the drawings
    through its own small convolutional embedding."""
    from diffusers import SparseControlNetModel

    seeded(SEED + (7 if rgb else 8))
    return liven(SparseControlNetModel(block_out_channels=SD15_CHANNELS, layers_per_block=2, norm_num_groups=4,
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

    seeded(SEED)
    unet = UNetSpatioTemporalConditionModel(sample_size=96, in_channels=8, out_channels=4, layers_per_block=2,
                                            block_out_channels=(64, 64, 64, 64), num_attention_heads=(1, 2, 2, 2),
                                            cross_attention_dim=32, addition_time_embed_dim=8,
                                            projection_class_embeddings_input_dim=3 * 8, num_frames=num_frames).eval()
    seeded(SEED + 1)
    decoder = AutoencoderKLTemporalDecoder(block_out_channels=(64, 64, 64, 64), layers_per_block=1,
                                           down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4,
                                           sample_size=768, scaling_factor=0.18215, force_upcast=True).eval()
    seeded(SEED + 2)
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


# ----------------------------------------------------------------------------------------------- text-to-video
def _unet3d(seed: int):
    from diffusers import UNet3DConditionModel

    seeded(seed)
    # attention_head_dim is the size of a head here (published 64 at 320 channels: 5 heads); 4 → 2-4 heads, so
    # attention slicing ("auto": half the heads at a time) has heads to split, as in the published model
    unet = UNet3DConditionModel(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=4,
                                cross_attention_dim=32,
                                down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                                up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3).eval()
    return liven(unet)  # a fresh UNet3D starts its temporal layers at zero: frames would not talk to each other


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

    seeded(SEED + 46)
    transformer = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=16,
                                              out_channels=16, time_embed_dim=16, text_embed_dim=32, num_layers=2,
                                              sample_width=12, sample_height=8, sample_frames=9, patch_size=2,
                                              max_text_seq_length=226).eval()
    seeded(SEED + 47)
    autoencoder = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 16, 16), latent_channels=16, layers_per_block=1,
                                         norm_num_groups=4, temporal_compression_ratio=4, sample_height=64,
                                         sample_width=96).eval()
    scheduler = CogVideoXDDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                       set_alpha_to_one=True, snr_shift_scale=3.0, timestep_spacing="trailing")
    return CogVideoXPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(SEED + 48), vae=autoencoder,
                             transformer=transformer, scheduler=scheduler)


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "animatediff-motion-adapter-v1-5-2": motion_adapter,
    "sparsectrl-rgb": sparsectrl_rgb,
    "sparsectrl-scribble": sparsectrl_scribble,
    "svd": svd,
    "svd-xt": svd_xt,
    "modelscope-t2v": modelscope_t2v,
    "zeroscope-v2-576w": zeroscope_v2_576w,
    "cogvideox-2b": cogvideox_2b,
}
