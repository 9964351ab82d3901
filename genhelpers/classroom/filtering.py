"""How LAION-5B was filtered, at classroom scale: CLIP similarity of each picture with its caption, a threshold,
deduplication and an aesthetic score — measured against labels we know because we made the pool.

* ``make_pool``: held-out digits (never seen by the classroom CLIP) with template captions; a known share of the
  captions is wrong (``shuffled``: another pair's caption; ``off_by_one``: the digit ± 1; ``nonsense``: words in
  random order), some pictures are repeated (exact copies and 1-pixel-shifted copies), some are degraded (noise
  and dropped pixels: "low quality");
* ``removal_curve`` / ``choose_threshold``: what a similarity threshold removes — the share of wrong pairs caught
  (recall) against the share of right pairs lost — and the threshold that loses at most a given share;
* ``exact_duplicates`` / ``near_duplicates``: byte-identical pictures (hashing), and pairs whose embeddings nearly
  coincide (which only finds copies when the embedding tells individual pictures apart, not just their class);
* ``fit_aesthetic`` / ``auc``: LAION-Aesthetics' recipe (a linear model on CLIP image embeddings trained on
  quality ratings), here trained on clean vs degraded *training* digits, and judged by the area under the ROC
  curve on the pool's known degradations.

The judge everywhere is the pool's construction, not the model: the labels are known before any score exists.
"""
from __future__ import annotations

import numpy as np

from . import digits

KINDS = ("right", "shuffled", "off_by_one", "nonsense")
NONSENSE_WORDS = ["handwritten", "picture", "small", "blurry", "the", "of", "number", "low", "resolution", "a"]


def degrade(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits (N, 8, 8; 0..16) made "low quality": strong noise and a quarter of the pixels dropped."""
    noisy = x + rng.normal(0, 5, x.shape)
    noisy[rng.random(x.shape) < 0.25] = 0
    return np.clip(noisy, 0, 16).astype(np.float32)


def make_pool(data: digits.Split, seed: int = 0, wrong_share: float = 0.3, duplicate_share: float = 0.05,
              degraded_share: float = 0.1) -> dict:
    """The pool of (picture, caption) pairs built from the held-out digits; every label is known."""
    from .smallclip import TEMPLATES

    rng = np.random.default_rng(seed)
    x, y = data.test_x.copy(), data.test_y.copy()
    n = len(x)
    kind = np.array(["right"] * n, dtype=object)
    wrong = rng.permutation(n)[: int(round(wrong_share * n))]
    for i, w in enumerate(wrong):
        kind[w] = KINDS[1 + i % 3]
    degraded = np.zeros(n, dtype=bool)
    degraded[rng.permutation(n)[: int(round(degraded_share * n))]] = True
    x[degraded] = degrade(x[degraded], rng)
    captions, said = [], []
    for i in range(n):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        digit = int(y[i])
        if kind[i] == "shuffled":
            digit = int(rng.choice([d for d in range(10) if d != y[i]]))
        elif kind[i] == "off_by_one":
            digit = int((y[i] + rng.choice([-1, 1])) % 10)
        if kind[i] == "nonsense":
            captions.append(" ".join(rng.choice(NONSENSE_WORDS, size=rng.integers(3, 6))))
        else:
            captions.append(template.format(w=digits.WORDS[digit], d=digit))
        said.append(digit if kind[i] != "nonsense" else -1)
    # repeated pictures: exact copies and copies moved by one pixel, appended with their own (right) captions
    copies = rng.permutation(n)[: int(round(duplicate_share * n))]
    duplicate_of = np.full(n + len(copies), -1)
    extra = []
    for j, c in enumerate(copies):
        picture = x[c] if j % 2 == 0 else np.roll(x[c], 1, axis=1)
        extra.append(picture)
        duplicate_of[n + j] = c
        captions.append(TEMPLATES[0].format(w=digits.WORDS[y[c]]))
        said.append(int(y[c]))
    return {"x": np.concatenate([x, np.stack(extra)]) if extra else x,
            "digit": np.concatenate([y, y[copies]]), "said": np.array(said), "captions": captions,
            "kind": np.concatenate([kind, np.array(["right"] * len(copies), dtype=object)]),
            "degraded": np.concatenate([degraded, degraded[copies]]), "duplicate_of": duplicate_of}


def scores(clip, pool: dict):
    """Cosine similarity of each pool picture with its own caption under the classroom CLIP."""
    import torch

    from .smallclip import to_input

    with torch.no_grad():
        img = clip.embed_images(to_input(pool["x"]))
        txt = clip.embed_captions(pool["captions"])
    return (img * txt).sum(-1).numpy(), img.numpy()


def removal_curve(score: np.ndarray, wrong: np.ndarray) -> dict:
    """For every threshold t among the scores (a pair is removed when its score < t): the share of wrong pairs
    removed, the share of right pairs lost, and the precision of the removal."""
    wrong = np.asarray(wrong, dtype=bool)
    thresholds = np.unique(np.concatenate([score, [score.max() + 1e-6]]))
    removed = score[None, :] < thresholds[:, None]
    caught = (removed & wrong).sum(1)
    lost = (removed & ~wrong).sum(1)
    return {"threshold": thresholds, "recall_wrong": caught / max(wrong.sum(), 1),
            "loss_right": lost / max((~wrong).sum(), 1),
            "precision": np.where(removed.sum(1) > 0, caught / np.maximum(removed.sum(1), 1), 1.0)}


def choose_threshold(curve: dict, max_loss: float = 0.05) -> dict:
    """The highest threshold that loses at most ``max_loss`` of the right pairs, with what it achieves."""
    ok = np.flatnonzero(curve["loss_right"] <= max_loss)
    i = ok[-1]
    return {"threshold": float(curve["threshold"][i]), "recall_wrong": float(curve["recall_wrong"][i]),
            "loss_right": float(curve["loss_right"][i]), "precision": float(curve["precision"][i])}


def exact_duplicates(x: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of byte-identical pictures (a hash of the pixels, as URL/content hashing does)."""
    first: dict = {}
    pairs = []
    for i, picture in enumerate(np.asarray(x)):
        key = np.ascontiguousarray(picture).tobytes()
        if key in first:
            pairs.append((first[key], i))
        else:
            first[key] = i
    return pairs


def near_duplicates(embeds: np.ndarray, threshold: float = 0.99) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, whose normalised embeddings have a cosine of at least ``threshold``."""
    sims = embeds @ embeds.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return list(zip(i.tolist(), j.tolist(), strict=True))


def fit_aesthetic(embeds: np.ndarray, quality: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """A linear quality model on embeddings (least squares with a small ridge), as LAION-Aesthetics' predictor;
    returns weights whose last entry is the bias."""
    a = np.hstack([embeds, np.ones((len(embeds), 1))])
    return np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ quality)


def aesthetic(embeds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return embeds @ weights[:-1] + weights[-1]


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative (ties: half)."""
    positive = np.asarray(positive, dtype=bool)
    p, n = score[positive], score[~positive]
    if not len(p) or not len(n):
        return float("nan")
    greater = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    return float(greater / (len(p) * len(n)))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def caption_files(folder) -> list:
    """The pictures in ``folder`` that have a same-name ``.txt`` caption beside them, sorted."""
    from pathlib import Path

    return sorted(p for p in Path(folder).expanduser().iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".txt").is_file())
