"""When and how fast: Iterative Motion Editing's frame pickers and time warp, ported exactly (quirks included) from
the authors' helpers (purvigoel/iterative-editing-release 6f2d167, no licence: restated, pinned by the fixtures in
tests/reference/motion_editing). The authors' clips are 60 frames at 20 fps; at other rates every window is scaled
by seconds (look-ahead 0.25-1.5 s, default 0.5 s, warp shift 0.5 s). ``motion_edit`` uses them."""
from __future__ import annotations

import numpy as np

from .motion import JOINTS, PARENTS

ALIASES = {"left_hand": 20, "right_hand": 21, "left_foot": 7, "right_foot": 8, "waist": 0, "head": 15}


def joint_index(name: str) -> int:
    """The authors' names: a hand is the wrist, a foot the ankle, the waist the pelvis."""
    return ALIASES[name] if name in ALIASES else JOINTS.index(name)


def warp_points(speed: str, s: int, e: int, frames: int, fps: float) -> list:
    """The authors' control points (output frame, source time) from the identity warp; ``k`` = 0.5 s of frames."""
    k = round(10 * fps / 20)
    points = {0.0: 0.0, float(frames): float(frames)}
    if speed == "pause":
        new = [(s, s), (e, s)] if s != e else [(max(s - 1, 0), s), (min(s + 1, frames), s)]
    else:
        shift = k if speed == "fast" else -k
        new = [(s, s), (e, min(max(e + shift, 0), frames))] if s != e else [(s, min(max(s + shift, 0), frames))]
    for x, y in new:
        points[float(x)] = float(y)  # a point at an existing x replaces it
    return sorted(points.items())


def bake(m, source_times) -> np.ndarray:
    """Output frame i = the source at time ``source_times[i]``, linearly between its two frames (clamped)."""
    frames = len(m)
    f = np.clip(np.floor(source_times).astype(int), 0, frames - 1)
    a = np.clip(np.asarray(source_times) - f, 0, 1)[:, None, None]
    g = np.minimum(f + 1, frames - 1)
    out = (1 - a) * m[f] + a * m[g]
    for j, p in enumerate(PARENTS):  # bones keep lengths between the two frames' (a chord would shorten them)
        if p >= 0:
            length = ((1 - a[:, 0]) * np.linalg.norm(m[f, j] - m[f, p], axis=-1, keepdims=True)
                      + a[:, 0] * np.linalg.norm(m[g, j] - m[g, p], axis=-1, keepdims=True))
            bone = out[:, j] - out[:, p]
            out[:, j] = out[:, p] + length * bone / (np.linalg.norm(bone, axis=-1, keepdims=True) + 1e-12)
    return out


def change_speed(m, speed: str, s: int, e: int, fps: float):
    """The authors' PCHIP time warp over [s, e] (the whole clip keeps its length), or, over the entire clip,
    a resampling by 1.5 (fast: the motion ends early and the last pose holds; slow: its first two thirds)."""
    from scipy.interpolate import PchipInterpolator

    frames = len(m)
    if s == 0 and e == frames - 1 and speed != "pause":
        rate = 1.5 if speed == "fast" else 1 / 1.5
        times = np.minimum(np.arange(frames) * rate, frames - 1)
        points = None
    else:
        points = warp_points(speed, s, e, frames, fps)
        times = PchipInterpolator(*zip(*points, strict=True))(np.arange(frames))
    return bake(m, times), {"op": "change_speed", "speed": speed, "start": s, "end": e, "control_points": points,
                            "source_times": [round(float(x), 4) for x in times]}


# ----------------------------------------------------------------------------------------------- when
def extremum(m, joint: str, moment: str, frames=None) -> int:
    """The frame (among ``frames``, default all) where the joint is highest / lowest / furthest from or closest
    to the body (horizontally, from the pelvis) / nearest its mid height."""
    idx = np.arange(len(m)) if frames is None else np.asarray(frames)
    p, pelvis = m[idx, joint_index(joint)], m[idx, 0]
    away = np.linalg.norm((p - pelvis)[:, [0, 2]], axis=1)
    y = p[:, 1]
    value = {"highest": -y, "lowest": y, "furthest_from_body": -away, "closest_to_body": away,
             "midrange_height": np.abs(y - (y.max() + y.min()) / 2)}[moment]
    return int(idx[np.argmin(value)])


def look_ahead(m, f: int, joint: str, fps: float) -> int:
    """The authors' "is a verb" rule: the next moment the joint moves, searched 0.25-1.5 s after ``f``."""
    frames = len(m)
    near, a0, a1, default = (round(x * fps) for x in (0.2, 0.25, 1.5, 0.5))
    if f + near >= frames:
        return frames - 1
    if f == 0:
        return min(default, frames - 1)
    span = np.arange(f + a0, min(f + a1, frames))
    if not len(span):
        return frames - 1
    j = joint_index(joint)
    rel = m[:, j] - (m[:, 0] if j != 0 else 0)
    ty, tyl = span[np.argmax(rel[span, 1])], span[np.argmin(rel[span, 1])]
    tx, txl = span[np.argmax(rel[span, 0])], span[np.argmin(rel[span, 0])]
    qy, qyl = abs(rel[ty, 1] - m[f, j, 1]), abs(rel[tyl, 1] - m[f, j, 1])
    qx = abs(rel[txl, 0] - m[f, j, 0])  # (upstream admits the max-x frame with the min-x distance)
    candidates = [(ty, qy), (tyl, qyl), (tx, qx), (txl, qx)]
    big = [t for t, q in candidates if q > 0.1]
    return int(min(big) if big else max(candidates, key=lambda c: c[1])[0])


def pick(m, time: dict, joint: str, fps: float):
    """A time expression → a frame (None: the entire motion). ``joint`` is the operator's, used by the look-ahead."""
    frames, verb, anchor = len(m), time.get("is_verb", False), time["anchor"]
    if anchor == "entire":
        return None
    if anchor == "end":
        return frames - 1
    if anchor in ("start", "middle", "frame"):
        f = {"start": 0, "middle": frames // 2}.get(anchor, time.get("frame"))
        return look_ahead(m, f, joint, fps) if verb else f
    when = extremum(m, time["joint"], time["moment"])
    if anchor == "before_joint" and verb:
        return extremum(m, time["joint"], time["moment"], range(when)) if when else 0
    return when


