"""The classroom CLIP: a small CLIP trained on the CPU in seconds on handwritten digits and template captions.

Text: captions such as "a handwritten seven" through a 2-layer CLIP text transformer (transformers'
``CLIPTextModelWithProjection``) with a word-level tokenizer; images: a small CNN over 8×8 digits. Both end in a
vector of ``embed_dim`` numbers, normalised. Training is CLIP's game (``contrastive_loss``): in a batch of pairs,
each picture must pick out its own caption and each caption its own picture.

Used by the ``clip`` notebook (which trains it and tests it zero-shot), ``clip_filtering`` (which uses its scores
to filter image-caption pairs, as LAION did with OpenAI's CLIP) and ``video_clip`` (which turns it into a video
model). ``extra_words`` adds words to the tokenizer that training captions do not use yet (a later fine-tuning
teaches them), as a real CLIP's vocabulary is fixed before training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import digits

TEMPLATES = ["a handwritten {w}", "the digit {d}", "the digit {w}", "a picture of the number {w}",
             "a small image of a {w}", "handwritten digit {d}", "a {w}", "a blurry low resolution {w}"]
HELDOUT_TEMPLATE = "an image of a {w}"  # never used in training ("an" and "image" are not even in the vocabulary)
MAX_LENGTH = 12


@dataclass
class SmallClip:
    text_model: object
    image_model: object
    logit_scale: object
    tokenizer: object
    mean: float
    std: float
    max_length: int = MAX_LENGTH

    def encode(self, texts):
        batch = self.tokenizer(list(texts), padding="max_length", max_length=self.max_length, truncation=True,
                               return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    def image_features(self, x):
        """Un-normalised image vectors of digits (N, 1, 8, 8; grey levels 0..1)."""
        return self.image_model((x - self.mean) / self.std)

    def embed_images(self, x):
        import torch.nn.functional as F

        return F.normalize(self.image_features(x), dim=-1)

    def embed_texts(self, ids, mask):
        import torch.nn.functional as F

        return F.normalize(self.text_model(input_ids=ids, attention_mask=mask).text_embeds, dim=-1)

    def embed_captions(self, texts):
        return self.embed_texts(*self.encode(texts))

    def parameters(self):
        return [*self.text_model.parameters(), *self.image_model.parameters(), self.logit_scale]

    def eval(self):
        self.text_model.eval()
        self.image_model.eval()
        return self


def captions() -> list[str]:
    """The training captions: every template for every digit, digit-major (10 × len(TEMPLATES))."""
    return [t.format(w=w, d=d) for d, w in enumerate(digits.WORDS) for t in TEMPLATES]


def to_input(x):
    """Digits (N, 8, 8; 0..16) as a float tensor (N, 1, 8, 8) in 0..1."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(x, dtype=np.float32))[:, None] / 16


def build(x_train, embed_dim: int = 64, seed: int = 0, extra_words=()) -> SmallClip:
    """A fresh small CLIP (seeded) whose tokenizer knows the training captions' words and ``extra_words``;
    images are standardised with the training digits' mean and spread."""
    import torch
    import torch.nn as nn
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    texts = captions() + [" ".join(extra_words)] if extra_words else captions()
    tokenizer = digits.caption_tokenizer(texts, max_length=MAX_LENGTH)
    torch.manual_seed(seed)
    text_model = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, projection_dim=embed_dim,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_LENGTH, pad_token_id=0,
        bos_token_id=2, eos_token_id=3))
    image_model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 64, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.GELU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.GELU(),
        nn.Linear(128, embed_dim))
    logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # learned temperature, CLIP's starting value
    return SmallClip(text_model, image_model, logit_scale, tokenizer, float(x_train.mean()), float(x_train.std()))


def contrastive_loss(image_embeds, text_embeds, logit_scale, groups=None):
    """CLIP's symmetric loss: cross-entropy of each picture over the batch's captions and of each caption over
    the batch's pictures; the right partner sits on the diagonal. The temperature is capped at 100, as CLIP's.
    ``groups`` (one label per pair, optional): pairs of the same group are not negatives of each other — the
    target spreads over them (TMR's negative filtering; a batch may hold the same caption twice)."""
    import torch
    import torch.nn.functional as F

    logits = logit_scale.exp().clamp(max=100) * image_embeds @ text_embeds.T
    if groups is None:
        target = torch.arange(len(logits))
    else:
        same = (groups[:, None] == groups[None, :]).float()
        target = same / same.sum(1, keepdim=True)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def learning_rate_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to zero at ``steps``."""
    return peak * min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))


def shift(x, generator):
    """Random 1-pixel moves of each digit (a little augmentation)."""
    import torch
    import torch.nn.functional as F

    padded = F.pad(x, (1, 1, 1, 1))
    dx = torch.randint(0, 3, (len(x),), generator=generator)
    dy = torch.randint(0, 3, (len(x),), generator=generator)
    return torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(len(x))])


def fit(parameters, batch_loss, steps: int, learning_rate: float, warmup: int, seed: int = 0,
        weight_decay: float = 0.05, progress: bool = True) -> list[float]:
    """The classrooms' training loop: AdamW with ``learning_rate_at``'s schedule; each step calls
    ``batch_loss(generator)`` (a seeded torch generator for its random draws) and steps on the loss it returns.
    Returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in tqdm(range(steps), desc="training", disable=not progress):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, steps, learning_rate, warmup)
        loss = batch_loss(g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train(clip: SmallClip, x_train, y_train, steps: int, batch_size: int = 128, learning_rate: float = 2e-3,
          seed: int = 0, progress: bool = True, groups: bool = False) -> list[float]:
    """Train ``clip`` on digits ``x_train`` (N, 1, 8, 8; 0..1) with labels ``y_train``: each step draws a batch
    of digits and one random template caption for each; 50 warm-up steps, then a cosine decay. ``groups``: the
    other pictures of the same digit in a batch are not counted as wrong answers (``contrastive_loss``'s
    ``groups``)."""
    import torch

    ids, mask = (t.view(10, len(TEMPLATES), -1) for t in clip.encode(captions()))

    def batch_loss(g):
        idx = torch.randint(0, len(x_train), (batch_size,), generator=g)
        template = torch.randint(0, len(TEMPLATES), (batch_size,), generator=g)
        images = clip.embed_images(shift(x_train[idx], g))
        texts = clip.embed_texts(ids[y_train[idx], template], mask[y_train[idx], template])
        return contrastive_loss(images, texts, clip.logit_scale, groups=y_train[idx] if groups else None)

    return fit(clip.parameters(), batch_loss, steps, learning_rate, warmup=50, seed=seed, progress=progress)


def loss_floor(y_train, batch_size: int = 128, batches: int = 200, seed: int = 0) -> float:
    """The lowest loss the game allows when the pictures of one digit cannot be told apart: each row spreads its
    bet evenly over the pictures of its digit in the batch, so the loss is the mean of ln(same-digit count),
    averaged over random batches (about ln 13 ≈ 2.6 for ten balanced digits in 128)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(y_train)
    total = 0.0
    for _ in range(batches):
        labels = y[torch.randint(0, len(y), (batch_size,), generator=g)]
        total += (labels[:, None] == labels[None, :]).sum(1).float().log().mean().item()
    return total / batches


def zero_shot(clip: SmallClip, x, y, template: str) -> float:
    """Accuracy of classifying digits ``x`` by their most similar caption among the ten of ``template``."""
    import torch

    with torch.no_grad():
        sims = clip.embed_images(x) @ clip.embed_captions(
            [template.format(w=w, d=d) for d, w in enumerate(digits.WORDS)]).T
    return float((sims.argmax(1) == torch.as_tensor(y)).float().mean())
