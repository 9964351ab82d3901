"""Open-VCLIP's idea at classroom scale: turn an image CLIP into a video CLIP with temporal attention, train it on
some classes, then **interpolate** its weights with the original CLIP's so it keeps zero-shot ability on classes it
never trained on.

* ``make_clip`` / ``clips``: short clips of a handwritten digit moving (left, right, up, down: one pixel per frame)
  or turning (a quarter turn per frame, clockwise or counterclockwise), drawn from the 8×8 digits; a class is
  (digit, motion), its caption "a seven moving left";
* ``VideoClip``: the classroom CLIP's image encoder on every frame, then one temporal self-attention layer over
  the frames (with learned frame positions) whose output projection starts at zero — so before training the
  video model *is* frame-averaged CLIP, as Open-VCLIP's temporal attention starts as the image model;
* ``interpolate``: weights (1 − α)·original + α·trained, the paper's weight-space ensembling;
* ``accuracy``: zero-shot classification of clips among a set of class captions — the judge is the clip's known
  class, not the model.

We follow the published behaviour of Open-VCLIP (Weng et al., ICML 2023): fine-tune on the seen classes' videos
and captions, then interpolate; the paper reports zero-shot accuracy on unseen classes peaking between α = 0 and 1.
"""
from __future__ import annotations

import copy

import numpy as np

from . import digits

MOTIONS = ("left", "right", "up", "down", "clockwise", "counterclockwise")
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "clockwise": "counterclockwise",
            "counterclockwise": "clockwise"}  # what each motion becomes when its clip is played backwards
MOTION_WORDS = ("moving", "turning", "left", "right", "up", "down", "clockwise", "counterclockwise")
FRAMES = 4


def caption(digit: int, motion: str) -> str:
    verb = "turning" if motion in ("clockwise", "counterclockwise") else "moving"
    return f"a {digits.WORDS[digit]} {verb} {motion}"


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(img)
    h, w = img.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[max(-dy, 0):h + min(-dy, 0),
                                                                    max(-dx, 0):w + min(-dx, 0)]
    return out


def make_clip(img: np.ndarray, motion: str, frames: int = FRAMES) -> np.ndarray:
    """One digit (8, 8; 0..16) in motion: (frames, 8, 8). Moves start one pixel back so the digit stays mostly in
    view; turns go a quarter turn per frame."""
    steps = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
    if motion in steps:
        dy, dx = steps[motion]
        start = -(frames // 2)
        return np.stack([_shift(img, dy * (start + t), dx * (start + t)) for t in range(frames)])
    k = -1 if motion == "clockwise" else 1
    return np.stack([np.rot90(img, k * t) for t in range(frames)])


def clips(x: np.ndarray, y: np.ndarray, digits_wanted, rng: np.random.Generator, per_digit_image: int = 1):
    """Clips of the digits in ``digits_wanted``: each picture in ``x`` with a random motion (``per_digit_image``
    times). Returns (clips (N, frames, 8, 8), digit labels, motion indices)."""
    keep = np.isin(y, list(digits_wanted))
    xs, ys = np.repeat(x[keep], per_digit_image, 0), np.repeat(y[keep], per_digit_image, 0)
    motions = rng.integers(0, len(MOTIONS), len(xs))
    return np.stack([make_clip(img, MOTIONS[m]) for img, m in zip(xs, motions, strict=True)]), ys, motions


def VideoClip(small, frames: int = FRAMES, heads: int = 4):  # noqa: N802 (builds an nn.Module of this name)
    """The video model around a trained classroom CLIP (a copy: the original stays as it is)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class _VideoClip(nn.Module):
        def __init__(self):
            super().__init__()
            self.image_model = copy.deepcopy(small.image_model)
            self.text_model = copy.deepcopy(small.text_model)
            self.logit_scale = nn.Parameter(small.logit_scale.detach().clone())
            width = self.image_model[-1].out_features
            self.positions = nn.Parameter(torch.randn(frames, width) * 0.02)
            self.norm = nn.LayerNorm(width)
            self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
            nn.init.zeros_(self.attention.out_proj.weight)  # starts as frame-averaged CLIP
            nn.init.zeros_(self.attention.out_proj.bias)
            self.mean, self.std = small.mean, small.std
            self.tokenizer, self.max_length = small.tokenizer, small.max_length

        def embed_clips(self, v):
            """Clips (N, frames, 8, 8; 0..1) → normalised video vectors."""
            n, t = v.shape[:2]
            f = self.image_model((v.reshape(n * t, 1, 8, 8) - self.mean) / self.std).reshape(n, t, -1)
            h = self.norm(f + self.positions[:t])
            f = f + self.attention(h, h, h, need_weights=False)[0]
            return F.normalize(f.mean(1), dim=-1)

        def embed_captions(self, texts):
            batch = self.tokenizer(list(texts), padding="max_length", max_length=self.max_length, truncation=True,
                                   return_tensors="pt")
            out = self.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds
            return F.normalize(out, dim=-1)

    return _VideoClip()


def to_input(v):
    import torch

    return torch.from_numpy(np.asarray(v, dtype=np.float32)) / 16


def train(model, v, y, m, steps: int, batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0,
          progress: bool = True) -> list[float]:
    """Contrastive training on clips ``v`` (N, frames, 8, 8; 0..16) with their captions; in-batch pairs sharing
    a caption are not counted as negatives of each other (soft targets over equal captions)."""
    import torch

    from .smallclip import contrastive_loss, fit

    x = to_input(v)
    texts = [caption(int(d), MOTIONS[int(k)]) for d, k in zip(y, m, strict=True)]
    classes = torch.as_tensor(np.asarray(y) * len(MOTIONS) + np.asarray(m))  # one per caption

    def batch_loss(g):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        video, text = model.embed_clips(x[idx]), model.embed_captions([texts[i] for i in idx])
        return contrastive_loss(video, text, model.logit_scale, groups=classes[idx])

    return fit(model.parameters(), batch_loss, steps, learning_rate, warmup=20, seed=seed, progress=progress)


def interpolate(original, trained, alpha: float):
    """A model whose every weight is (1 − α)·original + α·trained (the same architecture on both sides)."""
    import torch

    mixed = copy.deepcopy(original)
    a, b = original.state_dict(), trained.state_dict()
    with torch.no_grad():
        mixed.load_state_dict({k: (1 - alpha) * a[k] + alpha * b[k] if a[k].is_floating_point() else b[k] for k in a})
    return mixed.eval()


def accuracy(model, v, y, m, class_digits) -> float:
    """Zero-shot accuracy on clips of ``class_digits``: each clip is given the class whose caption is the most
    similar among all (digit, motion) captions of those digits."""
    import torch

    classes = [(d, k) for d in class_digits for k in range(len(MOTIONS))]
    with torch.no_grad():
        text = model.embed_captions([caption(d, MOTIONS[k]) for d, k in classes])
        pred = (model.embed_clips(to_input(v)) @ text.T).argmax(1).numpy()
    truth = np.array([classes.index((int(d), int(k))) for d, k in zip(y, m, strict=True)])
    return float((pred == truth).mean())


def direction_flips(model, v, class_digits) -> dict:
    """Play each clip backwards and classify both ways: the share of clips whose predicted motion turns into its
    opposite (left ↔ right, up ↔ down, clockwise ↔ counterclockwise), and the share whose prediction does not
    change at all. A model that averages its frames sees no difference (unchanged: 1.0)."""
    import torch

    classes = [(d, k) for d in class_digits for k in range(len(MOTIONS))]
    with torch.no_grad():
        text = model.embed_captions([caption(d, MOTIONS[k]) for d, k in classes])
        forward = (model.embed_clips(to_input(v)) @ text.T).argmax(1).numpy()
        backward = (model.embed_clips(to_input(np.asarray(v)[:, ::-1].copy())) @ text.T).argmax(1).numpy()
    motion = [(MOTIONS[classes[a][1]], MOTIONS[classes[b][1]]) for a, b in zip(forward, backward, strict=True)]
    return {"flipped": float(np.mean([OPPOSITE[a] == b for a, b in motion])),
            "unchanged": float(np.mean([a == b for a, b in motion]))}
