"""Does a generated character stay itself? CLIP image similarity of a clip's frames to the reference picture
(identity) and of each frame to the next (temporal consistency).

Both are cosines of CLIP's normalised image embeddings (1 = the same embedding). They measure what CLIP sees:
overall look, colours, clothes, pose; not a face recogniser's identity. A clip that follows different poses
scores below 1 even when the character is perfect, so compare routes on the *same* poses. Use an encoder the
generator was not conditioned on, or the number flatters the route that used it.
"""
from __future__ import annotations


def identity_scores(model, processor, reference, frames) -> dict:
    """``reference``: a PIL picture; ``frames``: the clip's PIL frames; ``model``/``processor``: a CLIPModel and
    its processor. Returns rounded cosines per frame and their means."""
    from .clipscore import embed_images

    emb = embed_images(model, processor, [reference, *frames])
    ref, clip = emb[0], emb[1:]
    to_ref = [round(float(c), 4) for c in clip @ ref]
    steps = [round(float(c), 4) for c in (clip[:-1] * clip[1:]).sum(-1)]
    return {"to_reference": to_ref, "to_reference_mean": round(sum(to_ref) / len(to_ref), 4),
            "frame_to_frame": steps, "frame_to_frame_mean": round(sum(steps) / len(steps), 4) if steps else None}
