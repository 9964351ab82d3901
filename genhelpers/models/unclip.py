"""DALL·E 2's unCLIP design, made visible with Karlo (diffusers' UnCLIPPipeline / UnCLIPImageVariationPipeline).

unCLIP generates in two hops through CLIP's embedding space: a *prior* turns the caption's CLIP **text**
encoding (its pooled embedding and the per-token states) into a CLIP **image** embedding, then a *decoder* paints
a 64-px picture from that image embedding (plus the caption's tokens), and one super-resolution stage brings it to
256 px (Karlo splits it over two UNets: the first runs all steps but the last, the second only the last). The
pipelines do all of it in one call; these helpers only let a notebook look at what passes between the hops:

* ``capture_embeddings(pipe)``: while the pipeline runs, keep the image embedding the prior handed to the decoder
  and the caption's text embedding (read at the decoder's text_proj, where the two meet: Karlo's published
  behaviour, diffusers ``UnCLIPTextProjModel.forward``);
* ``image_embeddings(var_pipe, images)``: CLIP image embeddings of pictures, as the variations pipeline makes them;
* ``clip_image_encoder(ref)``: the variations pipeline's image encoder and processor, read from a CLIP checkpoint
  (``openai/clip-vit-large-patch14``'s safetensors) instead of the variations repository's pickles;
* ``cosine`` and ``slerp`` (spherical interpolation: CLIP embeddings are compared by angle, so an interpolation
  follows the sphere, as in the DALL·E 2 paper's interpolations).
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def capture_embeddings(pipe):
    """Yield a dict that, after a ``pipe(...)`` call inside the block, holds ``image`` (the prior's image
    embeddings, batch × width) and ``text`` (the caption's projected text embeddings, batch × width; for
    UnCLIPImageVariationPipeline the empty caption's)."""
    seen: dict = {}

    def hook(module, args, kwargs):
        image, text = kwargs["image_embeddings"], kwargs["prompt_embeds"]
        if kwargs.get("do_classifier_free_guidance"):  # prompt_embeds = [unconditional, conditional]
            text = text.chunk(2)[1]
        seen["image"], seen["text"] = image.detach().float().cpu(), text.detach().float().cpu()

    handle = pipe.text_proj.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def image_embeddings(var_pipe, images):
    """CLIP image embeddings (batch × width, not normalised) of PIL ``images``, with the variations pipeline's
    own image processor and encoder."""
    import torch

    encoder = var_pipe.image_encoder
    pixels = var_pipe.feature_extractor(images=list(images), return_tensors="pt").pixel_values
    param = next(encoder.parameters())
    with torch.no_grad():
        return encoder(pixels.to(param.device, param.dtype)).image_embeds.float().cpu()


def vision_config(whole):
    """The config of a whole CLIP's vision tower with projection: the vision sub-config, with the projection width
    of the whole model (a sub-config may carry the class default, 512, instead)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**{**whole.vision_config.to_dict(), "projection_dim": whole.projection_dim})


def clip_image_encoder(ref="openai/clip-vit-large-patch14", dtype: str = "float32"):
    """CLIP's vision tower with its projection (``CLIPVisionModelWithProjection``) and CLIP's image processor,
    read from a whole-CLIP checkpoint (the text tower's weights in the file are left unread).

    This is what diffusers put into ``kakaobrain/karlo-v1-alpha-image-variations``: its conversion script
    (``convert_unclip_txt2img_to_image_variation.py``) took openai/clip-vit-large-patch14's vision tower with
    projection and a default ``CLIPImageProcessor`` (224 px, CLIP's mean and std, as openai's own processor). That
    repository keeps them as pickles only, openai's as safetensors: same weights, no pickle opened. The projection
    width is the whole model's ``projection_dim`` (768 for ViT-L/14), which the vision sub-config may not carry."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPVisionModelWithProjection
    from transformers.utils import logging

    from ..hub.weights import resolve

    folder = resolve(ref).path
    config = vision_config(CLIPConfig.from_pretrained(folder))
    quiet = logging.get_verbosity()
    logging.set_verbosity_error()  # the text tower's weights are expected leftovers, not a loading problem
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(folder, config=config, dtype=getattr(torch, dtype))
    finally:
        logging.set_verbosity(quiet)
    count = sum(p.numel() for p in encoder.parameters())
    print(f"image encoder: the vision tower of {ref} with its projection ({count:,} parameters, "
          f"{config.projection_dim}-wide embeddings, {dtype})")
    return encoder.eval(), CLIPImageProcessor.from_pretrained(folder)


def cosine(a, b) -> list[float]:
    """Cosine similarity of each row of ``a`` with the row of ``b`` at the same position."""
    import torch.nn.functional as F

    return [round(float(c), 4) for c in F.cosine_similarity(a.float(), b.float(), dim=-1)]


def slerp(a, b, t: float):
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1), rows of equal length; the norm is interpolated
    linearly. Falls back to a straight line when the two point the same way."""
    import torch

    a, b = a.float(), b.float()
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    straight = so.abs() < 1e-6
    wa = torch.where(straight, 1 - t, torch.sin((1 - t) * omega) / so.where(~straight, torch.ones_like(so)))
    wb = torch.where(straight, torch.full_like(so, t), torch.sin(t * omega) / so.where(~straight, torch.ones_like(so)))
    direction = wa * ua + wb * ub
    return direction / direction.norm(dim=-1, keepdim=True) * ((1 - t) * na + t * nb)
