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
        if cls_name.startswith("CLIP"):
            return getattr(transformers, cls_name)(transformers.CLIPTextConfig(**config))
        return getattr(diffusers, cls_name)(**config)


def count(key: str, component: str) -> int:
    return sum(p.numel() for p in meta_model(key, component).parameters())
