"""Pose sequences without a pose detector: OpenPose-style skeleton pictures drawn from the motion classroom's
22-joint motions (walk, run, jump, wave, turn, sit, crouch), and a drawn character to animate.

Pose-driven video models (Animate Anyone's pose guider, the OpenPose ControlNet) read a *rendered* skeleton: 18
keypoints joined by 17 coloured limbs on black, in the convention of the OpenPose annotator (and DWPose's, which
Moore-AnimateAnyone trained on). Facts used here are data in ``tests/reference/animate_anyone/facts.json``:

* **joints**: OpenPose's 18 keypoints from HumanML3D's 22 (the generator's order): nose ← head (15), neck ← the
  mean of the shoulders (16, 17, DWPose's neck), shoulders/elbows/wrists ← 17/19/21 (right) and 16/18/20 (left),
  hips/knees/ankles ← 2/5/8 (right) and 1/4/7 (left); eyes and ears have no joint: they are placed beside the head
  (an inferred recipe, not checked against the ControlNet) and left out while the figure faces away;
* **projection**: a front camera. The image's x axis is the figure's hip axis (left hip − right hip) at the first
  frame, flattened to the ground, so the figure's left lands on the image's right, as in a photo of someone
  facing you; the image's y axis is −height. One scale and centre for the whole clip (a walk toward the camera
  stays the same size, a jump rises in the frame);
* **drawing**: each limb a filled ellipse (half-width 4 px at 512 px, scaled with the picture), in the limb's
  colour; the canvas dimmed to 60 % (integer truncation, as the annotator's ``astype(uint8)``); then each
  keypoint a filled circle of radius 4 in the keypoint's colour. Sides are the subject's own: keypoint 2 is the
  right shoulder, seen on the image's left.

What the drawing lacks next to Moore's training data: hands and face (DWPose renders 133 keypoints; the classroom
motions have body joints only), so expect a small gap between these strips and what the model saw.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from . import motion as _motion

MOTIONS = tuple(_motion.ACTIONS)  # walk, run, jump, wave, turn, sit, crouch
# OpenPose-18 keypoint <- the generator's joint (None: no joint; the neck is the mean of the shoulders)
FROM_JOINT = (15, None, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, None, None, None, None)
NECK_FROM = (16, 17)
KEYPOINTS = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
             "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
             "right_eye", "left_eye", "right_ear", "left_ear")
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
# eyes and ears beside the head (metres along the image's x axis, right side = −), a little above the head joint
FACE = {14: -0.03, 15: 0.03, 16: -0.07, 17: 0.07}
FACE_LIFT = 0.03


def check_motion_name(name: str, v) -> None:
    if v not in MOTIONS:
        raise ParameterError(name, f"{name}={v!r} is not a motion the classroom draws: use one of "
                                   + ", ".join(repr(m) for m in MOTIONS) + " (or give your own pose_images)")


def keypoints(joints: np.ndarray, face: bool = True) -> np.ndarray:
    """(T, 22, 3) joint positions in metres (y up) → (T, 18, 2) OpenPose keypoints on the front camera's image
    plane, in metres (x right, y down); NaN marks a keypoint that is not drawn."""
    joints = np.asarray(joints, dtype=np.float64)
    hips = joints[0, 1] - joints[0, 2]  # the figure's left at the first frame
    hips[1] = 0.0
    u = hips / np.linalg.norm(hips)
    facing0 = np.cross(np.array([0.0, 1.0, 0.0]), u)  # the way the figure faces at the first frame (toward us)
    kp = np.full((len(joints), 18, 2), np.nan)
    for k, j in enumerate(FROM_JOINT):
        if j is not None:
            kp[:, k] = np.stack([joints[:, j] @ u, -joints[:, j, 1]], -1)
    neck = joints[:, list(NECK_FROM)].mean(1)
    kp[:, 1] = np.stack([neck @ u, -neck[:, 1]], -1)
    if face:
        left = joints[:, 1] - joints[:, 2]
        left[:, 1] = 0.0
        facing = np.cross(np.array([0.0, 1.0, 0.0]), left)
        toward = facing @ facing0 > 0  # the face is drawn only while the figure faces the camera
        for k, dx in FACE.items():
            kp[toward, k, 0] = kp[toward, 0, 0] + dx
            kp[toward, k, 1] = kp[toward, 0, 1] - FACE_LIFT
    return kp


def fit(kp: np.ndarray, width: int, height: int, margin: float = 0.1) -> np.ndarray:
    """Keypoints in pixels: one scale and centre for the whole clip, the clip's extent filling the picture
    less ``margin`` on each side."""
    flat = kp.reshape(-1, 2)
    lo, hi = np.nanmin(flat, 0), np.nanmax(flat, 0)
    extent = np.maximum(hi - lo, 1e-6)
    scale = min((1 - 2 * margin) * width / extent[0], (1 - 2 * margin) * height / extent[1])
    return (kp - (lo + hi) / 2) * scale + np.array([width / 2, height / 2])


def draw(kp: np.ndarray, width: int, height: int):
    """One OpenPose-style picture (PIL, RGB) from (18, 2) pixel keypoints (NaN: not drawn)."""
    from PIL import Image, ImageDraw

    stick = max(1.0, 4.0 * min(width, height) / 512)
    radius = max(1.0, 4.0 * min(width, height) / 512)
    canvas = Image.new("RGB", (width, height))
    d = ImageDraw.Draw(canvas)
    angles = np.radians(np.arange(0, 360, 1))
    for i, (a, b) in enumerate(LIMBS):
        if np.isnan(kp[[a, b]]).any():
            continue
        (x0, y0), (x1, y1) = kp[a], kp[b]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        half = math.hypot(x1 - x0, y1 - y0) / 2
        rot = math.atan2(y1 - y0, x1 - x0)
        ex, ey = half * np.cos(angles), stick * np.sin(angles)
        xs, ys = mx + ex * math.cos(rot) - ey * math.sin(rot), my + ex * math.sin(rot) + ey * math.cos(rot)
        d.polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=COLOURS[i])
    canvas = Image.fromarray((np.asarray(canvas) * 0.6).astype(np.uint8))  # truncation, as the annotator's
    d = ImageDraw.Draw(canvas)
    for k in range(18):
        if np.isnan(kp[k]).any():
            continue
        x, y = kp[k]
        d.ellipse([x - radius, y - radius, x + radius, y + radius], fill=COLOURS[k])
    return canvas


def motion_joints(name: str, frames: int, seed: int = 0, variant: int = 0) -> np.ndarray:
    """A classroom motion (frames, 22, 3); ``seed`` draws its jitter (size, pace, phase), as in the classroom."""
    return _motion.generate(name, variant, np.random.default_rng(seed), frames=max(frames, 2))[:frames]


def pose_strip(name: str, frames: int, width: int, height: int, seed: int = 0, variant: int = 0) -> list:
    """``frames`` OpenPose-style pictures of the classroom motion ``name``, ``width`` × ``height`` each."""
    check_motion_name("motion", name)
    kp = fit(keypoints(motion_joints(name, frames, seed, variant)), width, height)
    return [draw(k, width, height) for k in kp]


def load_poses(paths, width: int, height: int, name: str = "pose_images") -> list:
    """A person's own pose pictures (one per frame), resized to the generation size; OpenPose-style renders on
    black are what the models read."""
    from ..outputs.images import open_image

    out = []
    for i, p in enumerate(paths):
        try:
            out.append(open_image(p, f"{name}[{i}]").convert("RGB").resize((width, height)))
        except ValueError as e:
            raise ParameterError(name, str(e)) from None
    return out


def demo_character(width: int = 512, height: int = 512):
    """A drawn character facing the camera, arms down, on a light background: a round head with hair, a red
    shirt with a yellow star, blue trousers, brown shoes. Distinct colours per part make identity drift easy
    to see in a clip."""
    from PIL import Image, ImageDraw

    s = min(width, height) / 512
    img = Image.new("RGB", (width, height), (236, 232, 222))
    d = ImageDraw.Draw(img)
    cx = width / 2
    top = height / 2 - 230 * s

    def box(x0, y0, x1, y1):
        return [cx + x0 * s, top + y0 * s, cx + x1 * s, top + y1 * s]

    d.ellipse(box(-95, 450, 95, 470), fill=(205, 200, 190))  # shadow
    d.rectangle(box(-48, 250, -8, 430), fill=(40, 70, 160))  # trousers
    d.rectangle(box(8, 250, 48, 430), fill=(40, 70, 160))
    d.rectangle(box(-52, 425, -4, 452), fill=(110, 60, 30))  # shoes
    d.rectangle(box(4, 425, 52, 452), fill=(110, 60, 30))
    d.rounded_rectangle(box(-60, 110, 60, 265), radius=int(20 * s), fill=(200, 40, 40))  # shirt
    d.rounded_rectangle(box(-92, 118, -60, 250), radius=int(14 * s), fill=(200, 40, 40))  # sleeves and hands
    d.rounded_rectangle(box(60, 118, 92, 250), radius=int(14 * s), fill=(200, 40, 40))
    d.ellipse(box(-90, 240, -62, 268), fill=(240, 200, 160))
    d.ellipse(box(62, 240, 90, 268), fill=(240, 200, 160))
    star = [(cx + (18 if i % 2 == 0 else 7) * s * math.sin(i * math.pi / 5),
             top + 175 * s - (18 if i % 2 == 0 else 7) * s * math.cos(i * math.pi / 5)) for i in range(10)]
    d.polygon(star, fill=(250, 210, 40))
    d.rectangle(box(-12, 95, 12, 115), fill=(240, 200, 160))  # neck
    d.ellipse(box(-42, 15, 42, 105), fill=(240, 200, 160))  # head
    d.chord(box(-45, 8, 45, 80), 180, 360, fill=(60, 40, 25))  # hair
    d.ellipse(box(-20, 52, -10, 62), fill=(30, 30, 30))  # eyes
    d.ellipse(box(10, 52, 20, 62), fill=(30, 30, 30))
    d.arc(box(-14, 68, 14, 88), 20, 160, fill=(150, 50, 50), width=max(1, int(3 * s)))
    return img
