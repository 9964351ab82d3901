"""The classroom dataset: scikit-learn's 1,797 handwritten digits (8×8, grey levels 0-16), and the measures
that say whether a model trained on them learned anything.

* ``split``: a fixed stratified train / held-out split (models train on ``train`` only);
* ``judge``: a support-vector classifier trained on the real training digits (about 99% on held-out ones),
  which labels generated digits: accuracy against the requested class measures conditional generation;
* ``novelty``: how far generated digits are from their nearest training digit, beside the same distance for
  real held-out digits — samples that are much closer than real new digits would be copies;
* ``picture``: digits as an upscaled grid image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass(frozen=True)
class Split:
    train_x: np.ndarray  # (N, 8, 8) float32, 0..16
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def split(seed: int = 0, test_size: float = 0.2) -> Split:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float32)
    a, b, ya, yb = train_test_split(x, d.target, test_size=test_size, stratify=d.target, random_state=seed)
    return Split(a, ya, b, yb)


def to_model(x: np.ndarray):
    """Digits (N, 8, 8) in 0..16 -> torch tensor (N, 1, 8, 8) in [-1, 1], the range diffusion models use."""
    import torch

    return torch.from_numpy(np.asarray(x, dtype=np.float32))[:, None] / 8.0 - 1.0


def to_pixels(x) -> np.ndarray:
    """Model-space tensor (N, 1, 8, 8) in [-1, 1] -> numpy (N, 8, 8) in 0..16 (clipped)."""
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return ((np.clip(arr, -1, 1) + 1) * 8.0).reshape(-1, 8, 8)


def judge(data: Split):
    """(classifier, accuracy on the real held-out digits)."""
    from sklearn.svm import SVC

    clf = SVC(gamma=0.001, C=10).fit(data.train_x.reshape(len(data.train_x), -1), data.train_y)
    return clf, float((clf.predict(data.test_x.reshape(len(data.test_x), -1)) == data.test_y).mean())


def accuracy(clf, digits: np.ndarray, labels) -> float:
    """Share of ``digits`` (N, 8, 8; 0..16) that the judge reads as the requested ``labels``."""
    pred = clf.predict(np.asarray(digits).reshape(len(digits), -1))
    return float((pred == np.asarray(labels)).mean())


def nearest_distance(digits: np.ndarray, reference: np.ndarray) -> float:
    """Mean Euclidean distance (grey levels) from each digit to its nearest digit in ``reference``."""
    a = np.asarray(digits, dtype=np.float64).reshape(len(digits), -1)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return float(np.sqrt(np.clip(d2, 0, None)).min(1).mean())


def novelty(digits: np.ndarray, data: Split) -> dict:
    return {"generated_to_train": round(nearest_distance(digits, data.train_x), 2),
            "heldout_to_train": round(nearest_distance(data.test_x, data.train_x), 2)}


def caption_tokenizer(captions: list[str], max_length: int = 12):
    """A word-level tokenizer over the words of ``captions`` (built offline with `tokenizers`), usable by
    transformers' CLIP text model. Ids: 0 pad, 1 unknown, 2 start, 3 end. The end token must not be id 2:
    CLIP's text model treats eos_token_id == 2 as an old config and pools at the highest id instead."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    words = sorted({w for c in captions for w in c.lower().split()})
    vocab = {s: i for i, s in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>",
                                                      special_tokens=[("<bos>", 2), ("<eos>", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                  eos_token="<eos>", model_max_length=max_length)
    return tok


def picture(digits: np.ndarray, cols: int | None = None, scale: int = 6):
    """Digits (N, 8, 8; 0..16) as one image: black ink on white, ``cols`` per row, each pixel ``scale``² px."""
    from PIL import Image

    digits = np.asarray(digits)
    n = len(digits)
    cols = cols or n
    rows = -(-n // cols)
    sheet = np.full((rows * 9 + 1, cols * 9 + 1), 0.0)  # 1 px of white between digits
    for i, dgt in enumerate(digits):
        r, c = divmod(i, cols)
        sheet[1 + r * 9 : 1 + r * 9 + 8, 1 + c * 9 : 1 + c * 9 + 8] = np.clip(dgt, 0, 16) / 16
    img = Image.fromarray(((1 - sheet) * 255).astype("uint8"), mode="L")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST).convert("RGB")
