"""Iterative Motion Editing (Goel, Wang, Liu, Fatahalian; SIGGRAPH 2024) on the classroom's 22-joint skeletons: a
language model writes motion-editing operators (MEOs), this executor applies them.

The program vocabulary is the authors' (purvigoel/iterative-editing-release 6f2d167, no licence: restated in our
words): ``rotate`` (hip, knee, shoulder, elbow: flex, extend, abduct, adduct), ``translate`` (hands, feet = ankles,
waist: up, down, forward, backward), ``relative_translate`` (a hand or foot towards / above / in front of / next to /
onto another joint, the head or the ground), ``change_speed`` (fast, slow, pause); times as "when the left hand is
highest", "before…", start / middle / end / the entire motion / a frame, with the authors' "is a verb" look-ahead.

Rules we follow exactly (pinned by tests/reference/motion_editing): the **halfway rule** (a rotation goes half the
way from the joint's current angle to its limit, at most 90°: "even higher" halves the rest), the **translation
offsets** (hand/foot up +0.25 m, down −0.25, forward +0.15, backward −0.25; waist up +0.05, down −0.15, back −0.15),
the **tent blend** around the keyframe (0.75 s each side), the **frame pickers** and the **PCHIP time warp**.
Deliberate differences: angles are anatomical angles measured on joint positions (our limits: knee and elbow flex
150, hip flex 150 / extend −20 / abduct 45 / adduct −20, shoulder flex 180 / extend −60 / abduct 180 / adduct 0),
not SMPL Euler angles; no diffusion infill (the authors regenerate the blend window with a motion diffusion model
whose weights were never released): the change is spread by the tent weights directly, with exact bone lengths and
two-bone IK for hands and feet; waist "forward" (+0.15 m) works here (upstream fails on it); a speed change over the
entire clip resamples it by 1.5 (upstream's warp is nearly a no-op there) and holds the last pose.
"""
from __future__ import annotations

import numpy as np

from ..models.planner import Field, Group, ListField
from .motion import ACTIONS, JOINTS, PARENTS, TEMPLATES
from .motion_time import ALIASES, change_speed, joint_index, pick  # noqa: F401  (part of this module's API)

ROTATE_JOINTS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip",
                 "left_knee", "right_knee")
TRANSLATE_JOINTS = ("left_hand", "right_hand", "left_foot", "right_foot", "waist")
LIMITS = {"knee": {"flex": 150, "extend": 0}, "elbow": {"flex": 150, "extend": 0},
          "hip": {"flex": 150, "extend": -20, "abduct": 45, "adduct": -20},
          "shoulder": {"flex": 180, "extend": -60, "abduct": 180, "adduct": 0}}
OFFSETS = {"up": (0.25, 0.0), "down": (-0.25, 0.0), "forward": (0.0, 0.15), "backward": (0.0, -0.25)}  # (up, fwd)
WAIST = {"up": (0.05, 0.0), "down": (-0.15, 0.0), "forward": (0.0, 0.15), "backward": (0.0, -0.15)}
AMOUNT = {"small": 0.5, "normal": 1.0, "large": 2.0}
MOMENTS = ("highest", "lowest", "furthest_from_body", "closest_to_body", "midrange_height")
ANCHORS = ("when_joint", "before_joint", "start", "middle", "end", "entire", "frame")
# the motions one can start from: the classroom's 20 kinds, by their first caption ("a person walks forward slowly")
CAPTIONS = {TEMPLATES[a][0].format(**v): (a, i) for a, vs in ACTIONS.items() for i, v in enumerate(vs)}
CHAINS = {"left_hand": (16, 18, 20), "right_hand": (17, 19, 21), "left_foot": (1, 4, 7), "right_foot": (2, 5, 8)}


def _time_fields(frames: int) -> tuple:
    return (
        Field("anchor", "choice", "entire", choices=ANCHORS, doc="when the edit happens"),
        Field("joint", "choice", "right_hand", choices=(*TRANSLATE_JOINTS, *ROTATE_JOINTS, "head"),
              when=("anchor", ("when_joint", "before_joint"))),
        Field("moment", "choice", "highest", choices=MOMENTS, when=("anchor", ("when_joint", "before_joint"))),
        Field("frame", "int", 0, lo=0, hi=frames - 1, when=("anchor", "frame")),
        Field("is_verb", "bool", False, doc="true: the next time the joint moves (an action), not this pose"),
    )


def schema(frames: int) -> tuple:
    """The program of one sentence (``base``, ``undo``, up to three operators), for clips of ``frames`` frames."""
    t = _time_fields(frames)
    other_anchors = tuple(a for a in ANCHORS if a != "entire")
    ops = (
        Field("op", "choice", "rotate", choices=("rotate", "translate", "relative_translate", "change_speed")),
        Field("joint", "choice", "left_knee", choices=ROTATE_JOINTS, when=("op", "rotate")),
        Field("joint", "choice", "right_hand", choices=TRANSLATE_JOINTS, when=("op", ("translate",
                                                                                      "relative_translate"))),
        Field("direction", "choice", "flex", choices=("flex", "extend", "abduct", "adduct"), when=("op", "rotate")),
        Field("direction", "choice", "up", choices=tuple(OFFSETS), when=("op", "translate")),
        Field("direction", "choice", "towards", choices=("towards", "above", "in_front", "next_to", "contact"),
              when=("op", "relative_translate")),
        Field("target", "choice", "head", choices=(*TRANSLATE_JOINTS, *ROTATE_JOINTS, "head", "ground"),
              when=("op", "relative_translate")),
        Field("speed", "choice", "slow", choices=("fast", "slow", "pause"), when=("op", "change_speed")),
        Field("amount", "choice", "normal", choices=tuple(AMOUNT), when=("op", "translate")),
        Group("time", t, when=("op", ("rotate", "translate"))),
        Group("start", t, when=("op", ("relative_translate", "change_speed"))),
        Group("end", t, when=("start.anchor", other_anchors)),
    )
    return (
        Field("base", "choice", "latest", choices=("latest", "previous", "original"),
              doc="edit the latest motion, the one before it (a correction) or the original"),
        Field("undo", "bool", False, doc="true: go back to the base motion unchanged"),
        ListField("ops", ops, 1, 3, doc="one to three operators", when=("undo", False)),
    )


def history_schema(frames: int) -> tuple:
    """A whole edit history: each sentence with its program (what the notebook shows, saves and re-runs)."""
    return (ListField("edits", (Field("sentence", "text", ""), *schema(frames)), 1, 12,
                      doc="one item per sentence, in order"),)


# ----------------------------------------------------------------------------------------------- body frame
def _unit(v):
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)


def _flat(v):
    return _unit(v * np.array([1.0, 0.0, 1.0]))


def forward(m):
    """Per frame, the body's horizontal forward: square to the hips' left-right line, on the side the feet point to
    (from the ankles' midpoint to the toes'), so it holds in either handedness and leg edits do not turn it."""
    left = _flat(m[..., 1, :] - m[..., 2, :])
    ahead = np.cross(np.array([0.0, 1.0, 0.0]), left)
    toes = (m[..., 10, :] + m[..., 11, :]) / 2 - (m[..., 7, :] + m[..., 8, :]) / 2
    side = np.where((ahead * toes).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    return _flat(ahead * side)


def lateral(m, part: str):
    """Per frame, the horizontal left direction: from the right to the left hip (legs) or shoulder (arms)."""
    a, b = (1, 2) if part in ("hip", "knee") else (16, 17)
    return _flat(m[..., a, :] - m[..., b, :])


def _limb(joint: str):
    side, part = joint.split("_")
    first = JOINTS.index(joint)
    child = next(j for j, p in enumerate(PARENTS) if p == first)
    return side, part, first, child


def angle(m, joint: str, direction: str) -> np.ndarray:
    """The joint's anatomical angle per frame (degrees): flexion for flex/extend, abduction for ab/adduct."""
    side, part, j, c = _limb(joint)
    if part in ("knee", "elbow"):
        a, b = m[..., PARENTS[j], :] - m[..., j, :], m[..., c, :] - m[..., j, :]
        cos = (_unit(a) * _unit(b)).sum(-1)
        return 180 - np.degrees(np.arccos(np.clip(cos, -1, 1)))
    bone = m[..., c, :] - m[..., j, :]
    down = _unit(m[..., 0, :] - m[..., 9, :])
    if direction in ("flex", "extend"):
        axis, toward = lateral(m, part), forward(m)
    else:
        axis = forward(m)
        toward = lateral(m, part) * (1 if side == "left" else -1)
    d = _unit(down - (down * axis).sum(-1, keepdims=True) * axis)
    t = _unit(toward - (toward * axis).sum(-1, keepdims=True) * axis - (toward * d).sum(-1, keepdims=True) * d)
    a = np.degrees(np.arctan2((bone * t).sum(-1), (bone * d).sum(-1)))
    return np.where(a < -90, a + 360, a)


def halfway(current: float, joint: str, direction: str) -> float:
    """The authors' rotation amount: half the way from the current angle to the limit, at most 90°."""
    target = LIMITS[joint.split("_")[1]][direction]
    return float(np.clip(0.5 * (target - current), -90, 90))


def subtree(j: int) -> list[int]:
    out = [j]
    for k, p in enumerate(PARENTS):
        if p in out and k not in out:
            out.append(k)
    return out


def _rotate(points, centre, axis, degrees):
    """Rodrigues: ``points`` rotated about the line through ``centre`` along unit ``axis``."""
    a = np.radians(degrees)
    v = points - centre
    return (centre + v * np.cos(a) + np.cross(axis, v) * np.sin(a)
            + axis * (v @ axis)[:, None] * (1 - np.cos(a)))


def tent(f: int, frames: int, window: int) -> np.ndarray:
    """The authors' blend weights around keyframe ``f``: 0 → 1 on [lo, f], 1 → 0 on [f, hi), 0 outside."""
    lo, hi = max(0, f - window), min(frames, f + window)
    w = np.zeros(frames)
    for t in range(lo, hi):
        w[t] = (t - lo) / (f - lo) if t < f else 1 - (t - f) / (hi - f)
    return w


def range_weights(s: int, e: int, frames: int, window: int) -> np.ndarray:
    """1 over [s, e], ramps of ``window`` frames outside (the blend of an edit held over a range)."""
    t = np.arange(frames)
    w = np.maximum(tent(s, frames, window) * (t <= s), tent(e, frames, window) * (t >= e))
    w[s:e + 1] = 1
    return w


def window(fps: float) -> int:
    return int(round(0.75 * fps))


def rotate(m, joint: str, direction: str, f: int | None, fps: float, blend: bool = True):
    """Rotate ``joint``'s subtree by the halfway amount at keyframe ``f`` (None: every frame, each by its own
    amount), spread by the tent weights (``blend`` False: the keyframe alone). Returns (motion, record)."""
    side, part, j, c = _limb(joint)
    out = m.copy()
    frames = len(m)
    current = angle(m, joint, direction)
    if f is None:
        weights, deltas = np.ones(frames), np.array([halfway(a, joint, direction) for a in current])
    else:
        weights = tent(f, frames, window(fps)) if blend else (np.arange(frames) == f).astype(float)
        deltas = np.full(frames, halfway(current[f], joint, direction))
    moving = subtree(c)
    key = frames // 2 if f is None else f
    sign = _sign(m[key], joint, direction, deltas[key] or 1.0)
    for t in range(frames):
        if weights[t] and deltas[t]:
            axis = sign * _axis(m[t], joint, direction)
            out[t, moving] = _rotate(m[t, moving], m[t, j], axis, weights[t] * deltas[t])
            if part in ("knee", "elbow"):  # a nearly straight joint bent about its side axis: settle the angle
                out[t] = _settle(out[t], joint, current[t] + weights[t] * deltas[t])
    out = grounded(out, m) if part in ("hip", "knee") else out
    return out, {"op": "rotate", "joint": joint, "direction": direction, "frame": f,
                 "expected_deg": None if f is None else round(float(deltas[f]), 3), "weights": weights}


def grounded(edited, original):
    """Lift any frame whose feet the edit pushed under the clip's floor back onto it (the whole body, so angles and
    bone lengths stay): the diffusion infill would have kept the feet out of the ground."""
    floor = original[:, [7, 8, 10, 11], 1].min()
    sink = np.maximum(floor - edited[:, [7, 8, 10, 11], 1].min(1), 0)
    return edited + sink[:, None, None] * np.array([0.0, 1.0, 0.0])


def _sign(pose, joint: str, direction: str, delta: float) -> float:
    """+1 or -1: the turn about ``_axis`` that moves the measured angle by ``delta`` (either handedness). A straight
    knee or elbow bends either way: the knee takes the heel back, the elbow the hand forward."""
    side, part, j, c = _limb(joint)
    moving = subtree(c)
    trial = pose.copy()
    trial[moving] = _rotate(pose[moving], pose[j], _axis(pose, joint, direction), delta)
    gained = (angle(trial, joint, direction) - angle(pose, joint, direction) + 180) % 360 - 180
    if part in ("knee", "elbow") and angle(pose, joint, "flex") < 10:
        end = CHAINS[f"{side}_{'foot' if part == 'knee' else 'hand'}"][2]
        ahead = (trial[end] - pose[end]) @ forward(pose)
        return 1.0 if (ahead < 0) == (part == "knee") else -1.0
    return 1.0 if abs(gained - delta) <= abs(gained + delta) else -1.0


def _axis(pose, joint: str, direction: str):
    """The turning axis: the body's forward for ab/adduction, its left for flexion; a knee or elbow bent more than
    10° turns about its bend's normal, a straighter one about its left made square to the upper bone."""
    side, part, j, c = _limb(joint)
    if direction in ("abduct", "adduct"):
        return forward(pose)
    left = lateral(pose, part)
    if part in ("knee", "elbow"):
        if angle(pose, joint, "flex") > 10:
            n = _unit(np.cross(pose[PARENTS[j]] - pose[j], pose[c] - pose[j]))
            return n if n @ left >= 0 else -n
        upper = _unit(pose[j] - pose[PARENTS[j]])
        return _unit(left - (left @ upper) * upper)
    return left


def _settle(pose, joint: str, target: float):
    """Turn a knee's or elbow's lower bone about its exact bend normal until its flexion is ``target``."""
    side, part, j, c = _limb(joint)
    moving = subtree(c)
    for _ in range(2):
        miss = target - angle(pose, joint, "flex")
        n = np.cross(pose[PARENTS[j]] - pose[j], pose[c] - pose[j])
        if abs(miss) < 1e-9 or np.linalg.norm(n) < 1e-12:
            break
        trial = pose.copy()
        trial[moving] = _rotate(pose[moving], pose[j], _unit(n), miss)
        if abs(target - angle(trial, joint, "flex")) > abs(miss):
            trial[moving] = _rotate(pose[moving], pose[j], -_unit(n), miss)
        pose = trial
    return pose


# ----------------------------------------------------------------------------------------------- hands, feet, waist
def two_bone(root, mid, end, target, pole):
    """Analytic two-bone IK: the new (mid, end) reaching ``target`` with the bone lengths kept, bending in the
    plane of the current bend (``pole`` when straight). Out of reach: 0.999 of full reach, ``clamped`` True."""
    l1, l2 = np.linalg.norm(mid - root), np.linalg.norm(end - mid)
    v = target - root
    d0 = np.linalg.norm(v)
    u = v / (d0 + 1e-12)
    d = float(np.clip(d0, abs(l1 - l2) + 1e-6, 0.999 * (l1 + l2)))
    bend = (mid - root) - ((mid - root) @ u) * u
    if np.linalg.norm(bend) < 1e-3 * l1:
        bend = pole - (pole @ u) * u
    bend = _unit(bend)
    x = (l1**2 - l2**2 + d**2) / (2 * d)
    new_mid = root + u * x + bend * np.sqrt(max(l1**2 - x**2, 0.0))
    return new_mid, root + u * d, bool(d0 > 0.999 * (l1 + l2) + 1e-9)


def _reach(pose, joint: str, goal) -> tuple:
    """``pose`` with the hand/foot ``joint`` at ``goal`` (two-bone IK; a foot's toes follow the ankle)."""
    a, b, c = CHAINS[joint]
    if np.allclose(goal, pose[c], atol=1e-12):
        return pose.copy(), False
    pole = forward(pose) * (1 if "foot" in joint else -1)  # knees bend forward, elbows back
    mid, end, clamped = two_bone(pose[a], pose[b], pose[c], goal, pole)
    out = pose.copy()
    out[[j for j in subtree(c)]] += end - pose[c]
    out[b] = mid
    return out, clamped


def _waist(pose, delta, keep_feet: bool):
    """Move the body by ``delta``; with ``keep_feet`` the ankles and toes stay and the knees bend (a squat)."""
    out = pose + delta
    clamped = False
    if keep_feet:
        for leg in ("left_foot", "right_foot"):
            moved, c = _reach(out, leg, pose[CHAINS[leg][2]])
            out, clamped = moved, clamped or c
    return out, clamped


def translate(m, joint: str, direction: str, amount: str, f: int | None, fps: float, blend: bool = True):
    """Move a hand, foot or the waist by the authors' offset (x ``amount``) in the body's frame at keyframe ``f``,
    spread by the tent weights (None: at every frame)."""
    frames = len(m)
    weights = (np.ones(frames) if f is None else tent(f, frames, window(fps)) if blend
               else (np.arange(frames) == f).astype(float))
    up, ahead = (WAIST if joint == "waist" else OFFSETS)[direction]
    out, clamped, floor = m.copy(), [], m[:, [7, 8], 1].min()
    for t in range(frames):
        if not weights[t]:
            continue
        delta = AMOUNT[amount] * weights[t] * (up * np.array([0.0, 1.0, 0.0]) + ahead * forward(m[t]))
        if joint == "waist":
            out[t], c = _waist(m[t], delta, keep_feet=direction != "up")
        else:
            goal = m[t, joint_index(joint)] + delta
            if "foot" in joint:
                goal[1] = max(goal[1], floor)  # a foot stops at the ground
            out[t], c = _reach(m[t], joint, goal)
        if c:
            clamped.append(t)
    key = frames // 2 if f is None else f
    expected = (out[key, joint_index(joint)] - m[key, joint_index(joint)]) if not clamped else None
    want = AMOUNT[amount] * (up * np.array([0.0, 1.0, 0.0]) + ahead * forward(m[key]))
    return out, {"op": "translate", "joint": joint, "direction": direction, "frame": f, "weights": weights,
                 "expected_m": [round(float(x), 4) for x in want], "clamped_frames": clamped,
                 "ground_stop": bool(expected is not None and np.linalg.norm(expected - want) > 1e-6)}


def _goal(m, t: int, joint: str, target: str, direction: str, single: bool):
    p = m[t, joint_index(joint)]
    if target == "ground":
        ground = m[:, [7, 8], 1].min() if "foot" in joint or joint == "waist" else m[:, :, 1].min()
        return np.array([p[0], ground, p[2]])
    o = m[t, joint_index(target)]
    if single or direction == "contact":
        return o + (0.25 * forward(m[t]) if direction == "in_front" else np.array([0, 0.001 * (direction ==
                                                                                              "contact"), 0]))
    if direction == "towards":
        gap = np.linalg.norm(o - p)
        return o if gap <= 0.15 else p + 0.15 * (o - p) / gap
    ray = {"above": np.array([0.0, 1.0, 0.0]), "in_front": forward(m[t]),
           "next_to": lateral(m[t], "hip") * (1 if joint.startswith("left") or joint == "waist" else -1)}[direction]
    return o + max(0.0, float((p - o) @ ray)) * ray


def relative_translate(m, joint: str, target: str, direction: str, s: int, e: int, fps: float):
    """Bring ``joint`` onto / above / in front of / next to / towards ``target`` over frames [s, e] (a single
    frame: onto it, +0.25 m forward for in_front), ramped outside the range."""
    frames = len(m)
    weights = range_weights(s, e, frames, window(fps))
    deltas = {t: _goal(m, t, joint, target, direction, s == e) - m[t, joint_index(joint)] for t in range(s, e + 1)}
    out, clamped = m.copy(), []
    for t in range(frames):
        if not weights[t]:
            continue
        delta = weights[t] * deltas[min(max(t, s), e)]
        if joint == "waist":
            out[t], c = _waist(m[t], delta, keep_feet=True)
        else:
            out[t], c = _reach(m[t], joint, m[t, joint_index(joint)] + delta)
        if c:
            clamped.append(t)
    goals = [(t, [round(float(x), 4) for x in m[t, joint_index(joint)] + deltas[t]]) for t in range(s, e + 1)]
    return out, {"op": "relative_translate", "joint": joint, "target": target, "direction": direction,
                 "start": s, "end": e, "weights": weights, "goals": goals, "clamped_frames": clamped}


# ----------------------------------------------------------------------------------------------- programs
def _span(m, op: dict, joint: str, fps: float) -> tuple[int, int]:
    s = pick(m, op["start"], joint, fps)
    if s is None:
        return 0, len(m) - 1
    e = pick(m, op["end"], joint, fps)
    e = len(m) - 1 if e is None else e
    return (0, e) if s > e else (s, e)  # upstream: a start after the end starts at 0


def apply(m, program: dict, fps: float, blend: bool = True):
    """A sentence's operators applied in order (an undo applies none). Returns (motion, one record per operator:
    what was asked, the frames, and the motion ``before`` and ``after`` it)."""
    records = []
    for op in program.get("ops", []) if not program["undo"] else []:
        joint, before = op.get("joint", "waist"), m
        if op["op"] == "rotate":
            m, r = rotate(m, joint, op["direction"], pick(m, op["time"], joint, fps), fps, blend)
        elif op["op"] == "translate":
            m, r = translate(m, joint, op["direction"], op["amount"], pick(m, op["time"], joint, fps), fps, blend)
        elif op["op"] == "relative_translate":
            m, r = relative_translate(m, joint, op["target"], op["direction"], *_span(m, op, joint, fps), fps)
        else:
            m, r = change_speed(m, op["speed"], *_span(m, op, joint, fps), fps)
        records.append({**r, "program": op, "before": before, "after": m})
    return m, records


def edited_frames(record: dict) -> list[int]:
    """The frames an operator aimed at (its keyframe, or its range; every frame for the entire motion)."""
    if "frame" in record:
        return list(range(len(record["before"]))) if record["frame"] is None else [record["frame"]]
    return list(range(record["start"], record["end"] + 1))


def run(original, edits: list[dict], fps: float, blend: bool = True):
    """An edit history: each program edits the latest motion, the one before it (a correction) or the original.
    Returns (motions: the original then one per edit, log: (base index, result index, records) per edit)."""
    motions, log = [np.asarray(original, dtype=float)], []
    for program in edits:
        base = {"latest": len(motions) - 1, "previous": max(len(motions) - 2, 0), "original": 0}[program["base"]]
        edited, records = apply(motions[base], program, fps, blend)
        motions.append(edited)
        log.append((base, len(motions) - 1, records))
    return motions, log
