"""Full-size configurations of the published components, as data, and their architectures on the meta device.

Building a model under ``torch.device("meta")`` allocates no memory, so a CPU machine can check that these
configs describe the real checkpoints: their parameter counts must equal the published ones (tests do), and
the tiny twins must keep the same topology at toy width. The memory planner reads its counts from here.
"""
from __future__ import annotations

SDXL_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu")
SDXL_TEXT_2 = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                   num_attention_heads=20, max_position_embeddings=77, projection_dim=1280, hidden_act="gelu")
SDXL_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2, norm_num_groups=32, sample_size=1024, scaling_factor=0.13025)
_SDXL_UNET_COMMON = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=32,
                         use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256)

SHAP_E_PRIOR = dict(num_attention_heads=16, attention_head_dim=64, num_layers=24, embedding_dim=1024,
                    num_embeddings=1024, additional_embeddings=0, time_embed_dim=4096, time_embed_act_fn="gelu",
                    embedding_proj_dim=768, clip_embed_dim=2048, norm_in_type="layer", embedding_proj_norm_type=None,
                    encoder_hid_proj_type=None, added_emb_type=None)
SHAP_E_RENDERER = dict(param_shapes=((256, 93), (256, 256), (256, 256), (256, 256)), d_latent=1024, d_hidden=256,
                       n_output=12, n_hidden_layers=6, act_fn="swish", insert_direction_at=4,
                       background=(255.0, 255.0, 255.0))

CLIP_VIT_H_VISION = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                         image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")

CONFIGS = {
    "sdxl-base": {
        "unet": ("UNet2DConditionModel", dict(
            _SDXL_UNET_COMMON, block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
            projection_class_embeddings_input_dim=2816)),  # 6 size/crop ids x 256 + 1280 pooled text
        "text_encoder": ("CLIPTextModel", SDXL_TEXT),
        "text_encoder_2": ("CLIPTextModelWithProjection", SDXL_TEXT_2),
        "vae": ("AutoencoderKL", dict(SDXL_VAE, force_upcast=True)),
    },
    "sdxl-refiner": {
        "unet": ("UNet2DConditionModel", dict(
            _SDXL_UNET_COMMON, block_out_channels=(384, 768, 1536, 1536),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(6, 12, 24, 24), transformer_layers_per_block=4, cross_attention_dim=1280,
            projection_class_embeddings_input_dim=2560)),  # 5 ids (size, crop, aesthetic score) x 256 + 1280
    },
    # Shap-E: prior/config.json, text_encoder/config.json, image_encoder/config.json and
    # shap_e_renderer/config.json of openai/shap-e and openai/shap-e-img2img as published on the hub
    # (recorded by hand: no hub access here, and no published parameter count to check them against).
    "shap-e": {
        "prior": ("PriorTransformer", SHAP_E_PRIOR),
        "text_encoder": ("CLIPTextModelWithProjection", dict(SDXL_TEXT)),  # CLIP ViT-L/14 text tower
        "shap_e_renderer": ("ShapERenderer", SHAP_E_RENDERER),
    },
    "shap-e-img2img": {
        "prior": ("PriorTransformer", dict(SHAP_E_PRIOR, embedding_proj_dim=1024, embedding_proj_norm_type="layer")),
        "image_encoder": ("CLIPVisionModel", dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                                  num_attention_heads=16, image_size=224, patch_size=14,
                                                  projection_dim=768, hidden_act="quick_gelu")),
        "shap_e_renderer": ("ShapERenderer", SHAP_E_RENDERER),
    },
    # Stable Diffusion 1.5 (the stable-diffusion-v1-5 mirror of the deleted runwayml repository)
    "sd15": {
        "unet": ("UNet2DConditionModel", dict(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, attention_head_dim=8,
            cross_attention_dim=768, norm_num_groups=32)),
        "text_encoder": ("CLIPTextModel", SDXL_TEXT),
        "vae": ("AutoencoderKL", dict(SDXL_VAE, sample_size=512, scaling_factor=0.18215)),
    },
    # guoyww/animatediff-motion-adapter-v1-5-2 and the SparseCtrl ControlNets, config.json as published
    "animatediff-motion-adapter-v1-5-2": {
        "motion_adapter": ("MotionAdapter", dict(block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2,
                                                 motion_mid_block_layers_per_block=1, motion_num_attention_heads=8,
                                                 motion_norm_num_groups=32, motion_max_seq_length=32,
                                                 use_motion_mid_block=True)),
    },
    "sparsectrl-rgb": {
        "controlnet": ("SparseControlNetModel", dict(conditioning_channels=4, use_simplified_condition_embedding=True)),
    },
    "sparsectrl-scribble": {
        "controlnet": ("SparseControlNetModel", dict(conditioning_channels=3,
                                                     use_simplified_condition_embedding=False)),
    },
    # stabilityai/stable-video-diffusion-img2vid(-xt): the class defaults are the published configs
    "svd": {
        "unet": ("UNetSpatioTemporalConditionModel", dict(sample_size=96, num_frames=14)),
        "image_encoder": ("CLIPVisionModelWithProjection", CLIP_VIT_H_VISION),
        "vae": ("AutoencoderKLTemporalDecoder", dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                                     down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4,
                                                     sample_size=768, scaling_factor=0.18215, force_upcast=True)),
    },
    "svd-xt": {
        "unet": ("UNetSpatioTemporalConditionModel", dict(sample_size=96, num_frames=25)),
        "image_encoder": ("CLIPVisionModelWithProjection", CLIP_VIT_H_VISION),
        "vae": ("AutoencoderKLTemporalDecoder", dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                                     down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4,
                                                     sample_size=768, scaling_factor=0.18215, force_upcast=True)),
    },
    "clip-vit-large-patch14": {
        "clip": ("CLIPModel", {"text_config": SDXL_TEXT,
                               "vision_config": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                                     num_attention_heads=16, image_size=224, patch_size=14,
                                                     hidden_act="quick_gelu"),
                               "projection_dim": 768}),
    },
    "sdxl-vae-fp16-fix": {
        "vae": ("AutoencoderKL", dict(SDXL_VAE, force_upcast=False)),
    },
}


def meta_model(key: str, component: str):
    """The full-size component built on the meta device (no memory, no weights)."""
    import diffusers
    import torch
    import transformers

    cls_name, config = CONFIGS[key][component]
    with torch.device("meta"):
        if cls_name == "CLIPModel":
            return transformers.CLIPModel(transformers.CLIPConfig(**config))
        if cls_name.startswith("CLIPVision"):
            return getattr(transformers, cls_name)(transformers.CLIPVisionConfig(**config))
        if cls_name.startswith("CLIP"):
            return getattr(transformers, cls_name)(transformers.CLIPTextConfig(**config))
        if cls_name == "ShapERenderer":
            from diffusers.pipelines.shap_e import ShapERenderer

            return ShapERenderer(**config)
        return getattr(diffusers, cls_name)(**config)


def configs(key: str) -> dict:
    """{component: config dict} for a catalog key (a twin shares its model's key after 'tiny:')."""
    return {c: cfg for c, (_, cfg) in CONFIGS[key.removeprefix("tiny:")].items()}


def count(key: str, component: str) -> int:
    return sum(p.numel() for p in meta_model(key, component).parameters())
