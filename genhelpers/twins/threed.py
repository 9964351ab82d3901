"""Twins of the 3D families: Shap-E (text and image), Zero123++ (v1.1, v1.2, the depth ControlNet), MVDream and
ImageDream (our own multi-view UNet).
"""
from __future__ import annotations

from .common import SD15_CHANNELS, SEED, clip_tokenizer, liven, seeded, text_encoder, vae


# Shap-E: a prior (transformer over latent tokens), a conditioning encoder, and a renderer whose small MLP gets
# its weights from the latents. Twin latents: 32 tokens of width 32 (published: 1024 x 1024).
def _shap_e_prior(image: bool, seed: int = SEED):
    from diffusers import PriorTransformer

    seeded(seed)
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

    from ..outputs import marching_cubes

    seeded(seed)
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

    seeded(SEED + 4)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                               num_attention_heads=4, image_size=224, patch_size=14,
                                               projection_dim=32)).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
                                   image_mean=[0.48145466, 0.4578275, 0.40821073],
                                   image_std=[0.26862954, 0.26130258, 0.27577711])
    return ShapEImg2ImgPipeline(prior=_shap_e_prior(image=True), image_encoder=encoder, image_processor=processor,
                                shap_e_renderer=_shap_e_renderer(), scheduler=_shap_e_scheduler())


# Zero123++: a Stable Diffusion 2 UNet (text width 1024 -> 32 here), the SD2 OpenCLIP text tower, a CLIP ViT-H
# vision tower whose projection has the text width (its embedding is added to the text encoding), two image
# processors (224 px for CLIP, 320 px in [-1, 1] for the VAE) and 77 ramping coefficients in the config.
def _zero123plus_unet(seed):
    from diffusers import UNet2DConditionModel

    seeded(seed)
    return UNet2DConditionModel(sample_size=40, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=SD15_CHANNELS, norm_num_groups=4, attention_head_dim=(2, 2, 4, 4),
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=32, use_linear_projection=True).eval()


def _zero123plus(version: str):
    from diffusers import EulerAncestralDiscreteScheduler
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..models.zero123plus import Zero123PlusPipeline

    seed = SEED + (10 if version == "v1.1" else 11)
    seeded(seed)
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

    seeded(SEED + 12)
    net = ControlNetModel(block_out_channels=SD15_CHANNELS, layers_per_block=2, norm_num_groups=4,
                          attention_head_dim=(2, 2, 4, 4), cross_attention_dim=32, use_linear_projection=True,
                          conditioning_embedding_out_channels=(8, 8, 8, 8),
                          down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)).eval()
    with torch.no_grad():
        for p in [*net.controlnet_down_blocks.parameters(), *net.controlnet_mid_block.parameters()]:
            p.normal_(0, 0.3)
    return liven(net, std=0.3)  # the conditioning embedding's last convolution too: the depth image must count


# MVDream: our multi-view UNet at toy width (64 channels: its GroupNorms have 32 groups, as published, so two
# channels per group keep the twin numerically well-conditioned) with the
# published block layout, SD2.1's text tower (width 1024 -> 32 here), the SD2 VAE and the published DDIM setup.
def mvdream():
    from ..models.mvdream import MultiViewUNetModel, MVDreamPipeline, published_scheduler

    seed = SEED + 13
    seeded(seed)
    unet = MultiViewUNetModel(image_size=32, model_channels=64, channel_mult=(1, 2, 2, 2), num_head_channels=32,
                              context_dim=32, camera_dim=16).eval()
    scheduler = published_scheduler()
    return MVDreamPipeline(vae=vae(seed, scaling_factor=0.18215, sample_size=256), text_encoder=text_encoder(seed=seed),
                           tokenizer=clip_tokenizer(pad_token="!"), unet=unet, scheduler=scheduler)


# ImageDream: the same with ip_dim=16 image tokens, and a CLIP vision tower that keeps the published width 1280
# (the image-prompt resampler reads 1280-wide features) with two thin layers; the SD2 setup otherwise.
def imagedream():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from ..models.mvdream import MultiViewUNetModel

    pipe = mvdream()
    seeded(SEED + 14)
    pipe.unet = MultiViewUNetModel(**{**{k: v for k, v in pipe.unet.config.items() if not k.startswith("_")},
                                      "ip_dim": 16}).eval()
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=1280, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=10, image_size=224, patch_size=14)).eval()
    pipe.register_modules(unet=pipe.unet, image_encoder=vision,
                          feature_extractor=CLIPImageProcessor(size={"shortest_edge": 224},
                                                               crop_size={"height": 224, "width": 224}))
    return pipe


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "shap-e": shap_e,
    "shap-e-img2img": shap_e_img2img,
    "zero123plus-v1.1": zero123plus_v11,
    "zero123plus-v1.2": zero123plus_v12,
    "controlnet-zp11-depth": controlnet_zp11_depth,
    "mvdream": mvdream,
    "imagedream": imagedream,
}
