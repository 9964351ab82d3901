"""Full-size architectures on the meta device must equal the published checkpoints' parameter counts, and the
tiny twins must keep the published topology at toy width."""
import json

import pytest

from genhelpers.hub import catalog, published

# ../shared/reference/published_counts.md (exact counts of the published checkpoints)
PUBLISHED = {
    ("sdxl-base", "unet"): 2_567_463_684,
    ("sdxl-base", "text_encoder"): 123_060_480,
    ("sdxl-base", "text_encoder_2"): 694_659_840,
    ("sdxl-base", "vae"): 83_653_863,
    ("sdxl-vae-fp16-fix", "vae"): 83_653_863,  # same architecture as SDXL's VAE, fine-tuned weights
    ("sd15", "unet"): 859_520_964,
    ("sd15", "text_encoder"): 123_060_480,
    ("sd15", "vae"): 83_653_863,
    # SVD conditions on CLIP ViT-H/14 image embeddings: the same tower as Zero123++ v1.2's vision_encoder
    ("svd", "image_encoder"): 632_076_800,
    ("svd-xt", "image_encoder"): 632_076_800,
    # ../shared/reference/zero123plus/README.md (v1.2)
    ("zero123plus-v1.2", "unet"): 865_910_724,
    ("zero123plus-v1.2", "text_encoder"): 340_387_840,
    ("zero123plus-v1.2", "vision_encoder"): 632_076_800,
    ("zero123plus-v1.2", "vae"): 83_653_863,
    # ../shared/reference/mvdream (tests/reference/mvdream): the multi-view UNet; SD2.1's text encoder and VAE
    ("mvdream", "unet"): 867_572_164,
    ("mvdream", "text_encoder"): 340_387_840,
    ("mvdream", "vae"): 83_653_863,
    ("imagedream", "unet"): 941_672_900,  # ../shared/reference/mvdream/unet_imagedream_state_dict.json
    # ../shared/reference/published_counts.md: Stable Diffusion 2.x UNet; the OpenCLIP ViT-H text tower; SD VAE
    ("sd21-base", "unet"): 865_910_724,
    ("sd21-base", "text_encoder"): 340_387_840,
    ("sd21-base", "vae"): 83_653_863,
    ("sd21", "unet"): 865_910_724,
    ("sd21", "text_encoder"): 340_387_840,
    ("sd21", "vae"): 83_653_863,
    # issue 16 (tests/reference/deepfloyd_if/README.md): the T5-v1.1-XXL encoder and the IF-I-XL UNet
    ("if-i-xl", "text_encoder"): 4_762_310_656,
    ("if-i-xl", "unet"): 4_304_695_110,
    # issue 18: ModelScope's UNet3D (Zeroscope is the same architecture, fine-tuned); SD 2.x text tower and VAE
    ("modelscope-t2v", "unet"): 1_411_233_860,
    ("modelscope-t2v", "text_encoder"): 340_387_840,
    ("modelscope-t2v", "vae"): 83_653_863,
    ("zeroscope-v2-576w", "unet"): 1_411_233_860,
    ("zeroscope-v2-576w", "text_encoder"): 340_387_840,
    ("zeroscope-v2-576w", "vae"): 83_653_863,
    ("cogvideox-2b", "text_encoder"): 4_762_310_656,  # T5-v1.1-XXL encoder, as IF's
    # stylecrafter (tests/reference/stylecrafter/facts.json): h94/IP-Adapter's ViT-H/14 image encoder (2,528,373,448 B
    # of float32 values) and ip-adapter_sd15.safetensors (image_proj 3,150,336 + 16 K/V pairs 19,169,280; 44.6 MB fp16)
    ("ip-adapter-sd15", "image_encoder"): 632_076_800,
    ("ip-adapter-sd15", "ip_adapter"): 22_319_616,
    ("ip-adapter-image-encoder", "image_encoder"): 632_076_800,
    # virtual_tryon: SD 1.5's published UNet count + conv_in's 5 extra input channels (5 × 320 × 3 × 3 = 14,400);
    # the SD VAE (sd-vae-ft-mse is the same architecture, fine-tuned)
    ("sd15-inpainting", "unet"): 859_535_364,
    ("sd15-inpainting", "vae"): 83_653_863,
    ("sd-vae-ft-mse", "vae"): 83_653_863,
    # issue 27 (tests/reference/planner): Qwen2.5-1.5B-Instruct; model card "1.54B", and the published bf16
    # model.safetensors (3,087,467,144 B) less its 38,536 B header is exactly 2 bytes per parameter (lm_head tied)
    ("qwen2.5-1.5b-instruct", "model"): 1_543_714_304,
    # mvdiffusion notebook: SD 2 base (published_counts.md's SD 2.x figures; the same counted from the authors'
    # MultiViewBaseModel, tests/reference/mvdiffusion/README.md)
    ("sd2-base", "unet"): 865_910_724,
    ("sd2-base", "text_encoder"): 340_387_840,
    ("sd2-base", "vae"): 83_653_863,
    # issue 26 §3 (tests/reference/animate_anyone/facts.json): Moore's denoiser = the SD1.5 UNet exactly; its motion
    # module without the position tables; its pose guider (= the file's size); Lambda's ViT-L/14 image encoder
    ("animate-anyone", "denoising_unet"): 859_520_964,
    ("animate-anyone", "motion_module"): 453_209_280,
    ("animate-anyone", "pose_guider"): 1_086_480,
    ("sd-image-variations", "image_encoder"): 303_966_208,
}


@pytest.mark.parametrize("key, component", sorted(PUBLISHED))
def test_full_size_counts_equal_the_published_ones(key, component):
    model = published.meta_model(key, component)
    assert all(p.device.type == "meta" for p in model.parameters())  # nothing was allocated
    assert published.count(key, component) == PUBLISHED[key, component]


def test_catalog_counts_match_the_architectures():
    for key in published.keys():
        entry = catalog.ENTRIES[key]
        for component in published.configs(key):
            assert entry.params[component] == published.count(key, component), (key, component)
        if entry.params_exact:
            assert all((key, c) in PUBLISHED for c in entry.params), f"{key}: exact counts need a published source"


@pytest.mark.parametrize("key, component", [("sdxl-base", "unet"), ("sdxl-refiner", "unet"), ("sdxl-base", "vae"),
                                            ("sd15", "unet"), ("svd", "unet"), ("svd-xt", "unet"),
                                            ("sd15-inpainting", "unet")])
def test_twins_keep_the_published_topology(twins, key, component):
    twin = json.loads((twins[key] / component / "config.json").read_text())
    full = published.configs(key)[component]  # the complete config, as published
    same = ["down_block_types", "up_block_types", "in_channels", "out_channels", "addition_embed_type",
            "use_linear_projection", "latent_channels", "scaling_factor", "force_upcast", "sample_size", "num_frames"]
    if component == "unet":
        same.append("layers_per_block")  # the twin VAE has one layer per block to stay quick at 1024 px
    for field in (f for f in same if f in full):
        expected = list(full[field]) if isinstance(full[field], (tuple, list)) else full[field]
        assert twin[field] == expected, field
    assert len(twin["block_out_channels"]) == len(full["block_out_channels"])  # same depth: same scale factors


def test_every_catalog_model_has_its_configs():
    assert set(published.keys()) == set(catalog.ENTRIES)
    for key in published.keys():
        assert set(published.configs(key)) == set(catalog.ENTRIES[key].params), key


def test_configs_are_complete_published_files():
    unet = published.configs("sdxl-base")["unet"]
    assert unet["_class_name"] == "UNet2DConditionModel" and unet["cross_attention_dim"] == 2048
    text = published.configs("sdxl-base")["text_encoder_2"]
    assert text["architectures"] == ["CLIPTextModelWithProjection"] and text["hidden_size"] == 1280
    assert published.size_bytes("sdxl-base", "unet", "float16") == 2 * 2_567_463_684


# ---- gpt4motion: SDXL's depth and canny ControlNets (the published figure is rounded: "1.251 B")
@pytest.mark.parametrize("key", ["controlnet-depth-sdxl-1.0", "controlnet-canny-sdxl-1.0"])
def test_sdxl_controlnets_are_made_from_sdxls_unet(twins, key):
    import torch
    from diffusers import ControlNetModel

    with torch.device("meta"):
        made = ControlNetModel.from_unet(published.meta_model("sdxl-base", "unet"))
    recorded = published.configs(key)["controlnet"]
    for field, value in recorded.items():
        if not field.startswith("_") and field != "upcast_attention":  # published null; from_unet: False (the same)
            got = made.config[field]
            assert (list(got) if isinstance(got, (tuple, list)) else got) == value, field
    count = published.count(key, "controlnet")
    assert count == sum(p.numel() for p in made.parameters()) and round(count / 1e6) == 1251
    twin = json.loads((twins[key] / "config.json").read_text())
    for field in ("down_block_types", "addition_embed_type", "use_linear_projection", "in_channels",
                  "conditioning_channels", "controlnet_conditioning_channel_order"):
        assert (list(twin[field]) if isinstance(twin[field], list) else twin[field]) == recorded[field], field
    assert len(twin["conditioning_embedding_out_channels"]) == len(recorded["conditioning_embedding_out_channels"])
