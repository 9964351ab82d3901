"""Text-to-motion retrieval (TMR) at classroom scale: procedurally generated skeleton motions, their captions,
a motion encoder and a text encoder trained contrastively, and the retrieval measures of the TMR paper.

* ``generate``: motions of a 22-joint stick figure in HumanML3D's joint order (SMPL's body joints: pelvis,
  hips, spine, knees, ankles, feet, neck, collars, head, shoulders, elbows, wrists), ``FRAMES`` frames each:
  walk, run, jump, wave, turn, sit, crouch — with direction, speed, arm and repetition variants, and per-sample
  jitter (body size, pace, amplitude, phase, heading) so no two motions are the same;
* ``caption``: a sentence for a motion from templates; ``HELDOUT_TEMPLATES`` are wordings never used in training
  (recombining known words), to test that the text encoder generalises beyond memorised sentences;
* ``MotionEncoder``: a small transformer over frames (joint positions relative to the pelvis + the pelvis's
  motion), a learned summary token, a projection; the text side is a small CLIP text transformer;
* ``retrieval``: text → motion ranks over a gallery: R@k and median rank with the exact paired motion as the only
  right answer (TMR's "All" protocol) and in batches of 32 (its "small batches" protocol), plus how often the top
  motion is of the asked action (the generator's labels judge, not the model);
* ``render``: a motion as stick-figure frames (PIL), for GIFs.

Published behaviour we follow: TMR (Petrovich, Black, Varol, ICCV 2023) — contrastive InfoNCE between motion and
text embeddings, with negatives whose texts are near-identical filtered out (here: same action and variant).
"""
from __future__ import annotations

import math

import numpy as np

JOINTS = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
          "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
FRAMES = 32
FPS = 16
ACTIONS = {  # action: its variants (each a dict of the generator's settings and the words for captions)
    "walk": [{"direction": d, "speed": s} for d in ("forward", "backward") for s in ("slowly", "quickly")],
    "run": [{"direction": d, "speed": s} for d in ("forward", "backward") for s in ("slowly", "quickly")],
    "jump": [{"times": n} for n in ("once", "twice")],
    "wave": [{"arm": a, "times": n} for a in ("left", "right") for n in ("once", "twice")],
    "turn": [{"direction": d} for d in ("left", "right")],
    "sit": [{"speed": s} for s in ("slowly", "quickly")],
    "crouch": [{"speed": s} for s in ("slowly", "quickly")],
}
TEMPLATES = {
    "walk": ["a person walks {direction} {speed}", "someone is walking {direction} {speed}",
             "a figure takes steps {direction} {speed}"],
    "run": ["a person runs {direction} {speed}", "someone is running {direction} {speed}",
            "a figure jogs {direction} {speed}"],
    "jump": ["a person jumps {times}", "someone jumps up in place {times}", "a figure hops {times}"],
    "wave": ["a person waves the {arm} hand {times}", "someone raises the {arm} arm and waves {times}",
             "a figure waves {times} with the {arm} hand"],
    "turn": ["a person turns to the {direction}", "someone is turning {direction} in place",
             "a figure rotates to the {direction}"],
    "sit": ["a person sits down {speed}", "someone is sitting down {speed}", "a figure lowers to sit {speed}"],
    "crouch": ["a person crouches {speed}", "someone is crouching down {speed}", "a figure squats down {speed}"],
}
# wordings never used in training: known words, new sentences
HELDOUT_TEMPLATES = {
    "walk": ["someone walks {direction} {speed}"], "run": ["a figure runs {direction} {speed}"],
    "jump": ["someone hops {times}"], "wave": ["a figure raises the {arm} hand and waves {times}"],
    "turn": ["a person is turning to the {direction}"], "sit": ["someone sits down {speed}"],
    "crouch": ["a person squats down {speed}"],
}


def labels() -> list[tuple[str, int]]:
    """Every (action, variant index): the classes of the generator."""
    return [(a, i) for a, vs in ACTIONS.items() for i in range(len(vs))]


def caption(action: str, variant: int, rng: np.random.Generator, heldout: bool = False) -> str:
    templates = (HELDOUT_TEMPLATES if heldout else TEMPLATES)[action]
    return templates[rng.integers(len(templates))].format(**ACTIONS[action][variant])


# ----------------------------------------------------------------------------------------------- the body
def _rest_pose(scale: float) -> np.ndarray:
    """Joint positions (22, 3) standing, facing +x, y up, z to the figure's left; ~1.7 m tall × ``scale``."""
    p = np.zeros((22, 3))
    p[0] = [0, 0.95, 0]
    p[1], p[2] = [0, 0.9, 0.1], [0, 0.9, -0.1]
    p[3], p[6], p[9] = [0, 1.05, 0], [0, 1.2, 0], [0, 1.35, 0]
    p[4], p[5] = [0, 0.5, 0.1], [0, 0.5, -0.1]
    p[7], p[8] = [0, 0.08, 0.1], [0, 0.08, -0.1]
    p[10], p[11] = [0.12, 0.0, 0.1], [0.12, 0.0, -0.1]
    p[12], p[15] = [0, 1.5, 0], [0, 1.65, 0]
    p[13], p[14] = [0, 1.42, 0.08], [0, 1.42, -0.08]
    p[16], p[17] = [0, 1.42, 0.2], [0, 1.42, -0.2]
    p[18], p[19] = [0, 1.15, 0.22], [0, 1.15, -0.22]
    p[20], p[21] = [0, 0.9, 0.22], [0, 0.9, -0.22]
    return p * scale


def _rot_z(a):  # a rotation in the sagittal plane (about the figure's side axis): positive swings forward
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]).T


def _rot_x(a):  # about the forward axis: raises an arm sideways
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a):  # about the vertical: heading
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _pose(rest, angles: dict, root, heading: float) -> np.ndarray:
    """Forward kinematics: each joint's rotation (3×3, local) applied down the tree from the rest pose."""
    world_rot = [None] * 22
    out = np.zeros((22, 3))
    for j in range(22):
        local = angles.get(j, np.eye(3))
        parent = PARENTS[j]
        if parent < 0:
            world_rot[j] = _rot_y(heading) @ local
            out[j] = root
        else:
            world_rot[j] = world_rot[parent] @ local
            out[j] = out[parent] + world_rot[parent] @ (rest[j] - rest[parent])
    return out


def generate(action: str, variant: int, rng: np.random.Generator, frames: int = FRAMES) -> np.ndarray:
    """One motion: joint positions (frames, 22, 3) in metres, y up."""
    v = ACTIONS[action][variant]
    scale = rng.uniform(0.85, 1.15)
    rest = _rest_pose(scale)
    amp = rng.uniform(0.8, 1.2)
    phase = rng.uniform(0, 2 * math.pi)
    heading0 = rng.uniform(-0.4, 0.4)
    fast = v.get("speed") == "quickly"
    sign = -1 if v.get("direction") == "backward" else 1
    out = np.zeros((frames, 22, 3))
    pos = np.zeros(3)
    for t in range(frames):
        u = t / (frames - 1)  # 0..1 over the clip
        a, heading, lift, lean = {}, heading0, 0.0, 0.0
        if action in ("walk", "run"):
            run = action == "run"
            freq = (2.0 if not run else 3.0) * (1.4 if fast else 1.0) * rng.uniform(0.95, 1.05)
            w = 2 * math.pi * freq * u + phase
            swing = amp * (0.45 if not run else 0.8)
            a[1], a[2] = _rot_z(swing * math.sin(w)), _rot_z(-swing * math.sin(w))
            a[4] = _rot_z(-(0.3 if not run else 0.9) * max(0.0, math.sin(w + math.pi / 2)) * amp)
            a[5] = _rot_z(-(0.3 if not run else 0.9) * max(0.0, -math.sin(w + math.pi / 2)) * amp)
            a[16], a[17] = _rot_z(-swing * math.sin(w)), _rot_z(swing * math.sin(w))
            a[18] = a[19] = _rot_z(0.6 if run else 0.15)
            lean = 0.25 if run else 0.05
            lift = (0.06 if run else 0.02) * abs(math.sin(w))
            step = (0.045 if not run else 0.09) * (1.5 if fast else 1.0) * scale
            pos = pos + sign * step * np.array([math.cos(heading), 0, -math.sin(heading)])
        elif action == "jump":
            n = 1 if v["times"] == "once" else 2
            w = (u * n) % 1.0
            crouch = max(0.0, math.sin(math.pi * min(w / 0.3, 1.0))) if w < 0.3 else 0.0
            air = math.sin(math.pi * (w - 0.3) / 0.7) if w >= 0.3 else 0.0
            a[1] = a[2] = _rot_z(0.9 * crouch * amp)
            a[4] = a[5] = _rot_z(-1.5 * crouch * amp)
            a[16] = a[17] = _rot_z(-1.2 * air * amp)
            lift = 0.35 * air * amp - 0.25 * crouch
        elif action == "wave":
            n = 1 if v["times"] == "once" else 2
            arm, elbow = (16, 18) if v["arm"] == "left" else (17, 19)
            side = 1 if v["arm"] == "left" else -1
            raised = min(1.0, u / 0.2)
            a[arm] = _rot_x(side * 2.6 * raised)
            a[elbow] = _rot_x(side * (0.4 + 0.5 * math.sin(2 * math.pi * 2 * n * u + phase)) * raised * amp)
        elif action == "turn":
            heading = heading0 + (1 if v["direction"] == "left" else -1) * (math.pi / 2) * u * amp
            w = 2 * math.pi * 2 * u
            a[1], a[2] = _rot_z(0.2 * math.sin(w)), _rot_z(-0.2 * math.sin(w))
        elif action in ("sit", "crouch"):
            k = min(1.0, u / (0.4 if fast else 0.8))
            depth = (1.5 if action == "sit" else 2.1) * k * amp
            a[1] = a[2] = _rot_z(depth * (1.0 if action == "sit" else 0.7))
            a[4] = a[5] = _rot_z(-depth)
            lean = (0.3 if action == "sit" else 0.6) * k
            lift = -(0.45 if action == "sit" else 0.55) * k * scale
            if action == "sit":
                pos = np.array([-0.25 * k * scale, 0, 0])
        a[3] = _rot_z(lean)
        out[t] = _pose(rest, a, rest[0] + pos, heading)
        out[t, :, 1] += max(lift, 0.0) - out[t, [7, 8, 10, 11], 1].min()  # feet on the ground unless airborne
    return out + rng.normal(0, 0.005, out.shape)


def dataset(n: int, rng: np.random.Generator, heldout_wording: bool = False):
    """``n`` motions of random classes with one caption each: (motions (n, FRAMES, 22, 3), captions, classes)."""
    classes = labels()
    picks = rng.integers(len(classes), size=n)
    motions = np.stack([generate(*classes[i], rng) for i in picks])
    texts = [caption(*classes[i], rng, heldout=heldout_wording) for i in picks]
    return motions.astype(np.float32), texts, picks


def features(motions):
    """Per-frame model input (…, FRAMES, 66 + 3): joints relative to the pelvis, and the pelvis's velocity."""
    import torch

    m = torch.as_tensor(motions, dtype=torch.float32)
    rel = (m - m[..., :1, :]).flatten(-2)
    vel = torch.diff(m[..., 0, :], dim=-2, prepend=m[..., :1, 0, :]) * FPS
    return torch.cat([rel, vel], dim=-1)


def MotionEncoder(width: int = 64, out: int = 64, layers: int = 2, heads: int = 4):  # noqa: N802
    """A small transformer over frames with a learned summary token (TMR's motion encoder, tiny)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class _MotionEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(22 * 3 + 3, width)
            self.token = nn.Parameter(torch.zeros(1, 1, width))
            self.positions = nn.Parameter(torch.randn(1, FRAMES + 1, width) * 0.02)
            layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
            self.body = nn.TransformerEncoder(layer, layers)
            self.proj = nn.Linear(width, out)

        def forward(self, x):
            h = self.inp(x)
            h = torch.cat([self.token.expand(len(h), -1, -1), h], 1) + self.positions[:, : h.shape[1] + 1]
            return F.normalize(self.proj(self.body(h)[:, 0]), dim=-1)

    return _MotionEncoder()


def text_encoder(texts, out: int = 64, seed: int = 0):
    """(tokenizer, CLIP-style text transformer with projection) for the words of ``texts``."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from .digits import caption_tokenizer

    tokenizer = caption_tokenizer(texts, max_length=14)
    torch.manual_seed(seed)
    model = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, projection_dim=out, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=14, pad_token_id=0, bos_token_id=2, eos_token_id=3))
    return tokenizer, model


def embed_texts(tokenizer, model, texts):
    import torch.nn.functional as F

    batch = tokenizer(list(texts), padding="max_length", max_length=14, truncation=True, return_tensors="pt")
    return F.normalize(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds, dim=-1)


def train(motion_model, tokenizer, text_model, motions, texts, classes, steps: int, batch_size: int = 64,
          learning_rate: float = 1e-3, seed: int = 0, progress: bool = True) -> list[float]:
    """InfoNCE between motions and captions; pairs of the same class are not negatives of each other (TMR's
    negative filtering, here exact)."""
    import torch

    from .smallclip import contrastive_loss, fit

    x = features(motions)
    classes = torch.as_tensor(classes)
    temperature = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def batch_loss(g):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        t = embed_texts(tokenizer, text_model, [texts[i] for i in idx])
        return contrastive_loss(t, motion_model(x[idx]), temperature, groups=classes[idx])

    params = [*motion_model.parameters(), *text_model.parameters(), temperature]
    return fit(params, batch_loss, steps, learning_rate, warmup=30, seed=seed, weight_decay=0.01, progress=progress)


def ranks(similarity: np.ndarray) -> np.ndarray:
    """For a (queries × gallery) similarity whose right answer for query i is gallery item i: the rank (1 = top)
    of the right answer for each query."""
    right = np.diag(similarity)[:, None]
    return 1 + (similarity > right).sum(1)


def retrieval(similarity: np.ndarray, query_classes, gallery_classes, batch: int = 32) -> dict:
    """TMR's measures for text → motion: R@1/R@5/R@10 and median rank over the whole gallery ("All") and within
    consecutive batches of ``batch`` ("small batches"); and the share of queries whose top motion is of the asked
    class (a measure that forgives picking another motion of the same kind)."""
    r = ranks(similarity)
    out = {f"R@{k}": round(float((r <= k).mean()), 4) for k in (1, 5, 10)}
    out["median_rank"] = float(np.median(r))
    small = np.concatenate([ranks(similarity[i:i + batch, i:i + batch])
                            for i in range(0, len(similarity) - batch + 1, batch)])
    out.update({f"small_batches_R@{k}": round(float((small <= k).mean()), 4) for k in (1, 5)})
    top = similarity.argmax(1)
    out["top_is_asked_class"] = round(float((np.asarray(gallery_classes)[top] == np.asarray(query_classes)).mean()), 4)
    return out


# ----------------------------------------------------------------------------------------------- pictures
BONES = [(j, p) for j, p in enumerate(PARENTS) if p >= 0]


def render(motion: np.ndarray, size: int = 160, title: str = ""):
    """Stick-figure frames (PIL) of a motion, seen from a camera in front and to the side, following the pelvis
    horizontally so walks stay in view."""
    from PIL import Image, ImageDraw

    frames = []
    yaw = math.radians(35)
    for pose in motion:
        p = pose - np.array([pose[0, 0], 0, pose[0, 2]])
        x = p[:, 0] * math.sin(yaw) + p[:, 2] * math.cos(yaw)
        y = p[:, 1]
        img = Image.new("RGB", (size, size), "white")
        d = ImageDraw.Draw(img)
        to_px = lambda xx, yy: (size / 2 + xx * size / 2.6, size * 0.94 - yy * size / 2.5)  # noqa: E731
        d.line([to_px(-1.2, 0), to_px(1.2, 0)], fill=(190, 190, 190))
        for j, par in BONES:
            colour = (200, 40, 40) if "left" in JOINTS[j] else (40, 80, 200) if "right" in JOINTS[j] else (30, 30, 30)
            d.line([to_px(x[j], y[j]), to_px(x[par], y[par])], fill=colour, width=3)
        hx, hy = to_px(x[15], y[15])
        d.ellipse([hx - 6, hy - 6, hx + 6, hy + 6], outline=(30, 30, 30), width=2)
        if title:
            d.text((4, 4), title[:30], fill=(0, 0, 0))
        frames.append(img)
    return frames


# ----------------------------------------------------------------------------------------------- HumanML3D
def load_humanml3d(folder, split: str = "test", limit: int | None = None, frames: int = FRAMES):
    """Motions and captions of a HumanML3D folder in its published form (after its own preparation scripts):
    ``new_joints/<id>.npy`` (T × 22 × 3 joint positions, y up, 20 fps), ``texts/<id>.txt`` (one description per
    line, "caption#tokens#start#end") and ``<split>.txt`` (the ids of a split). Each motion is resampled to
    ``frames`` frames; the first description of each motion is its caption. Returns (motions, captions, ids)."""
    from pathlib import Path

    folder = Path(folder)
    ids = [i.strip() for i in (folder / f"{split}.txt").read_text().split() if i.strip()]
    motions, captions, kept = [], [], []
    for i in ids[:limit] if limit else ids:
        joints, text = folder / "new_joints" / f"{i}.npy", folder / "texts" / f"{i}.txt"
        if not joints.is_file() or not text.is_file():
            continue
        m = np.load(joints).astype(np.float32)
        if m.ndim != 3 or m.shape[1:] != (22, 3) or len(m) < 2:
            continue
        pick = np.linspace(0, len(m) - 1, frames).round().astype(int)
        motions.append(m[pick])
        captions.append(text.read_text().splitlines()[0].split("#")[0].strip())
        kept.append(i)
    if not motions:
        raise ValueError(f"{folder}: no motion of split '{split}' found (expected new_joints/<id>.npy, "
                         f"texts/<id>.txt and {split}.txt)")
    return np.stack(motions), captions, kept
