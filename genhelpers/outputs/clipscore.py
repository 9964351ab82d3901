"""CLIP as a measuring instrument: how well does an image match a text?

``clip_score`` is the usual CLIPScore: 100 × max(cosine(image, text), 0) with CLIP's normalised embeddings
(about 30+ for a good match with ViT-L/14, under 20 for a poor one). ``zero_shot`` turns CLIP into a
classifier by comparing an image with one caption per label. Run reports can use ``clip_score`` on real
outputs to notice quality regressions (a prompt that used to score 32 now scoring 21).
"""
from __future__ import annotations


def _features(out):
    """transformers returns a tensor from get_*_features (older) or an output object (newer)."""
    return out if hasattr(out, "norm") else out.pooler_output


def embed_images(model, processor, images):
    import torch

    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"].to(model.device, model.dtype)
    with torch.no_grad():
        feats = _features(model.get_image_features(pixel_values=pixels))
    return torch.nn.functional.normalize(feats.float(), dim=-1)


def embed_texts(model, processor, texts):
    import torch

    tokens = processor(text=list(texts), padding=True, truncation=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        feats = _features(model.get_text_features(input_ids=tokens["input_ids"],
                                                  attention_mask=tokens["attention_mask"]))
    return torch.nn.functional.normalize(feats.float(), dim=-1)


def clip_score(model, processor, images, texts) -> list[float]:
    """CLIPScore of each image with the text at the same position (``processor``: a CLIPProcessor)."""
    if len(images) != len(texts):
        raise ValueError(f"clip_score needs one text per image: got {len(images)} images, {len(texts)} texts")
    sims = (embed_images(model, processor, images) * embed_texts(model, processor, texts)).sum(-1)
    return [round(100 * max(float(s), 0.0), 2) for s in sims]


def zero_shot(model, processor, images, labels, template: str = "a photo of {}"):
    """Probabilities (images × labels) from CLIP's scaled similarities with one caption per label."""
    import torch

    img = embed_images(model, processor, images)
    txt = embed_texts(model, processor, [template.format(label) for label in labels])
    with torch.no_grad():
        return torch.softmax(model.logit_scale.exp().float() * img @ txt.T, dim=-1).cpu().numpy()


def token_budget(tokenizer, text: str, max_length: int = 77) -> dict:
    """How ``text`` fits a CLIP text encoder's window of ``max_length`` tokens (start and end markers included):
    the token count, the words that get in, and the words cut off (Stable Diffusion 1.x/2.x and CLIP never read
    them)."""
    ids = tokenizer(text, truncation=False, add_special_tokens=True, verbose=False)["input_ids"]
    if len(ids) <= max_length:
        return {"tokens": len(ids), "kept": text, "cut": ""}
    kept = tokenizer.decode(ids[1:max_length - 1], skip_special_tokens=True).strip()
    cut = tokenizer.decode(ids[max_length - 1:-1], skip_special_tokens=True).strip()
    return {"tokens": len(ids), "kept": kept, "cut": cut}
