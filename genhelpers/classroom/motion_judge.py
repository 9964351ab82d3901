"""Did the edit do what the program asked? Measured on the skeleton (``motion_edit``'s records say what was asked):

* rotate: the joint's angle change at the keyframe, against the halfway amount (±2°, the right sign);
* translate: the hand's, foot's or pelvis's shift at the keyframe, against the offset (2 cm), unless out of reach;
* relative_translate: the distance to the goal over the range (2 cm), unless out of reach;
* change_speed: how far the body travels (pelvis-relative joints and the pelvis) over the range, edited / original:
  faster above 1.05, slower below 0.95, a pause below 0.35;
* everywhere: frames outside the blend window unchanged, bone lengths kept (1e-9 m), feet not under the ground.

Also: the classroom's text-to-motion retrieval model (``motion``) asked to find the edited motion from a sentence,
and stick-figure GIF frames of a motion before and after, the edited frames marked.
"""
from __future__ import annotations

import numpy as np

from .motion import PARENTS, render
from .motion_edit import angle, joint_index

BONES = [(j, p) for j, p in enumerate(PARENTS) if p >= 0]


def bone_error(before, after, retimed: bool = False) -> float:
    """The largest change of any bone's length, in metres, frame by frame; for a retimed clip (a speed change),
    how far any bone leaves the range of lengths it had in the original."""
    lengths = [np.linalg.norm(m[:, [j for j, _ in BONES]] - m[:, [p for _, p in BONES]], axis=2)
               for m in (before, after)]
    if retimed:
        lo, hi = lengths[0].min(0), lengths[0].max(0)
        return float(np.maximum(np.maximum(lo - lengths[1], lengths[1] - hi), 0).max())
    return float(np.abs(lengths[0] - lengths[1]).max())


def travel(m, lo: int, hi: int) -> float:
    """How far the body moves over output frames [lo, hi]: pelvis-relative joints plus the pelvis, summed."""
    seg = m[lo:hi + 1]
    rel = seg - seg[:, :1]
    return float(np.linalg.norm(np.diff(rel, axis=0), axis=2).sum() + np.linalg.norm(np.diff(seg[:, 0], axis=0),
                                                                                      axis=1).sum())


def check(before, after, record: dict) -> dict:
    """One operator's result, measured: ``{"asked", "measured", "passed", "unchanged_outside", ...}``."""
    op, out = record["op"], {"op": record["op"]}
    frames = len(before)
    if "weights" in record:
        outside = np.asarray(record["weights"]) == 0
        out["unchanged_outside"] = bool(np.abs(after[outside] - before[outside]).max(initial=0) < 1e-9)
    if op == "rotate":
        f = record["frame"] if record["frame"] is not None else frames // 2
        gained = float(angle(after, record["joint"], record["direction"])[f]
                       - angle(before, record["joint"], record["direction"])[f])
        asked = record["expected_deg"]
        if asked is None:  # every frame: the halfway amount of that frame
            from .motion_edit import halfway

            asked = halfway(float(angle(before, record["joint"], record["direction"])[f]), record["joint"],
                            record["direction"])
        out.update(frame=f, asked=round(asked, 2), measured=round(gained, 2), unit="degrees",
                   passed=abs(gained - asked) <= 2 and (abs(asked) < 0.5 or np.sign(gained) == np.sign(asked)))
    elif op == "translate":
        f = record["frame"] if record["frame"] is not None else frames // 2
        k = joint_index(record["joint"])
        shift = after[f, k] - before[f, k]
        asked = np.asarray(record["expected_m"])
        reach = f in record["clamped_frames"] or record["ground_stop"]
        out.update(frame=f, asked=[round(float(x), 3) for x in asked], measured=[round(float(x), 3) for x in shift],
                   unit="m", out_of_reach=reach, passed=bool(np.linalg.norm(shift - asked) <= 0.02 or reach))
    elif op == "relative_translate":
        k = joint_index(record["joint"])
        miss = max(float(np.linalg.norm(after[t, k] - np.asarray(g))) for t, g in record["goals"])
        reach = bool(set(record["clamped_frames"]) & {t for t, _ in record["goals"]})
        out.update(frames=[record["start"], record["end"]], asked="at the goal", measured=round(miss, 3), unit="m",
                   out_of_reach=reach, passed=miss <= 0.02 or reach)
    else:
        s, e = record["start"], record["end"]
        if record["control_points"] is None and record["speed"] == "fast":
            e = int(frames / 1.5)  # the part of the clip where the resampled motion still moves
        ratio = travel(after, s, e) / max(travel(before, s, e), 1e-9)
        ok = {"fast": ratio > 1.05, "slow": ratio < 0.95, "pause": ratio < 0.35}[record["speed"]]
        out.update(frames=[s, e], asked=record["speed"], measured=round(ratio, 3), unit="travel ratio",
                   passed=bool(ok))
    out["bone_error_m"] = bone_error(before, after, retimed=op == "change_speed")
    out["feet_lowest_m"] = round(float(after[:, [7, 8, 10, 11], 1].min() - before[:, [7, 8, 10, 11], 1].min()), 4)
    out["passed"] = bool(out["passed"] and out["bone_error_m"] < 1e-9 and out["feet_lowest_m"] > -0.01
                         and out.get("unchanged_outside", True))
    return out


def retrieval(tokenizer, text_model, motion_model, motions: dict, sentence: str, gallery, captions) -> dict:
    """Ask the retrieval model for ``sentence``: the rank (1 = best) of each named motion among ``gallery`` + them,
    and the caption (of ``captions``) each named motion is closest to."""
    import torch

    from .motion import embed_texts, features

    names = list(motions)
    with torch.no_grad():
        found = motion_model(features(np.stack([*motions.values(), *gallery]).astype(np.float32))).numpy()
        query = embed_texts(tokenizer, text_model, [sentence, *captions]).numpy()
    scores = found @ query[0]
    nearest = found[: len(names)] @ query[1:].T
    return {n: {"rank": int(1 + (scores > scores[i]).sum()), "closest_caption": captions[int(nearest[i].argmax())]}
            for i, n in enumerate(names)}


def render_pair(before, after, marks=(), size: int = 160, titles=("before", "after")):
    """Stick figures side by side (PIL frames), the ``after`` panel framed in red on the ``marks`` frames."""
    from PIL import Image, ImageDraw

    left, right = render(before, size, titles[0]), render(after, size, titles[1])
    frames = []
    for t, (a, b) in enumerate(zip(left, right, strict=True)):
        if t in marks:
            ImageDraw.Draw(b).rectangle([1, 1, size - 2, size - 2], outline=(220, 30, 30), width=3)
        both = Image.new("RGB", (2 * size, size), "white")
        both.paste(a, (0, 0))
        both.paste(b, (size, 0))
        frames.append(both)
    return frames
