"""Twins of the text-and-vision models: CLIP ViT-L/14, X-CLIP, Florence-2.
"""
from __future__ import annotations

import json
from pathlib import Path

from .common import SEED, TOY_CLIP_TEXT, ModelFolder, bart_tokenizer, clip_tokenizer, seeded


def clip_vit_large_patch14():
    """openai/clip-vit-large-patch14 at toy width: CLIPModel + tokenizer + 224-px image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    seeded(SEED + 9)
    model = CLIPModel(CLIPConfig(
        text_config=TOY_CLIP_TEXT,
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 14},
        projection_dim=32)).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   image_mean=[0.48145466, 0.4578275, 0.40821073],
                                   image_std=[0.26862954, 0.26130258, 0.27577711])
    return ModelFolder(model, processor)


def xclip_base_patch32():
    """microsoft/xclip-base-patch32 at toy width: a CLIP ViT whose frames exchange a message token (cross-frame
    communication), a multi-frame integration transformer, a video-conditioned text prompt; 8 frames of 224 px;
    VideoMAE's image processor and CLIP's tokenizer, as published."""
    from transformers import VideoMAEImageProcessor, XCLIPConfig, XCLIPModel, XCLIPProcessor

    seeded(SEED + 65)
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
    return LegacyProcessorFolder(model, XCLIPProcessor(image_processor=images, tokenizer=clip_tokenizer()))


class LegacyProcessorFolder(ModelFolder):
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
    seeded(seed)
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
    return ModelFolder(model, processor, clip_tokenizer=False)


def florence_2_base():
    return _florence_2(SEED + 60)


def florence_2_large():
    return _florence_2(SEED + 61)


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "clip-vit-large-patch14": clip_vit_large_patch14,
    "florence-2-base": florence_2_base,
    "florence-2-large": florence_2_large,
    "xclip-base-patch32": xclip_base_patch32,
}
