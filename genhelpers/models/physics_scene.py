"""GPT4Motion's first half without Blender: a scene plan -> a rigid-body simulation -> depth and edge maps per frame.

The authors let GPT-4 write a Blender script (rigid bodies, cloth, liquid), baked the physics and rendered, per
frame, a Z-pass depth map and a Freestyle line pass, which then conditioned two SDXL ControlNets. Here a language
model fills a bounded **scene plan** (data, never code: nothing the model writes is executed), MuJoCo simulates it,
and our own numpy ray caster renders the maps. Published behaviour we follow (tests/reference/gpt4motion/facts.json,
paraphrased from jiaxilv/GPT4Motion, which has no licence: nothing copied):

* the world: +Y is "front", objects start inside a 5 × 5 × 5 m box above the floor (|x|, |y| ≤ 2.5, 0 ≤ z ≤ 5);
  imported objects are 5× life size (a basketball is 1.2 m across); the floor is a 50 × 50 m plane with its own
  restitution (default 1); a contact's restitution is the product of both materials' (Bullet's rule);
* the cameras: the authors' front and top-down poses, Blender's default lens (50 mm on a 36 mm sensor: 39.6°
  across the larger side); we add a side view;
* the maps: depth as inverse depth with near = bright and background black (the authors' loader inverts their
  normalised Z pass); lines as white on black: silhouettes, the floor's far edge, box creases and ball seams.

Where we differ on purpose: MuJoCo 3.3.7 instead of Blender's Bullet (pip-installable with cp311 and cp312 wheels;
pybullet has no cp312 wheel, and our own engine would be simple only for spheres); initial velocities are set
directly (the authors' helper keyframes the first 4 frames with ``9.8·t²`` instead of ``½gt²``); depth is
normalised **once per clip** (the authors normalise every frame, which makes the maps flicker); only balls and
boxes (cloth and liquid are out of scope). Restitution is set through MuJoCo's spring-damper contact
(``solref = "-k -b"``) with the damping ratio that gives the planned restitution for a contact that lets go when
its force reaches zero (``damping_ratio``); the measured rebound heights follow e² (``measure``).

Importing this module is cheap (numpy only); MuJoCo is imported by ``simulate``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..errors import ParameterError
from .planner import Field, ListField, defaults, validate

HALF_WORLD, WORLD_HEIGHT = 2.5, 5.0  # the authors' 5 m box above the floor
FLOOR_HALF = 25.0  # the authors' 50 m floor
GRAVITY, FRICTION = 9.81, 0.6
TIMESTEP, STIFFNESS, ZETA_MAX = 0.0005, 1e4, 5.0  # MuJoCo step (s), contact stiffness (1/s²), most damping used
MIN_HIT_SPEED = 0.2  # m/s: slower touches are an object settling on the floor, not a bounce
SHAPES = ("ball", "box")
ASPECTS = {"cube": (1.0, 1.0, 1.0), "flat": (1.0, 1.0, 0.35), "tall": (0.4, 0.4, 1.0)}  # box half-edges / size
COLOURS = ("orange", "red", "yellow", "green", "blue", "purple", "pink", "white", "black", "brown")
CAMERAS_CHOICES = ("front", "side", "top")
SCENES = {"court": "on an indoor basketball court", "street": "on a city street", "table": "on a wooden table",
          "grass": "on a green lawn", "studio": "in a photo studio with a plain backdrop"}
QUALITY = "photo, realistic, detailed"  # our words; the authors appended their own

# ------------------------------------------------------------------------------------------------ the plan schema
# Plain data for the shared planner (genhelpers.models.planner): it asks a language model for each field and keeps the
# answer inside these bounds; the same bounds check a plan edited by hand (planner.validate / planner.parse).
OBJECT_FIELDS = (
    Field("shape", "choice", "ball", "what the object is", choices=SHAPES),
    Field("size", "float", 0.6, "ball radius or box half-edge (objects are 5x life size: a basketball is 0.6)",
          lo=0.05, hi=1.0, step=0.01, unit="m"),
    Field("aspect", "choice", "cube", "box proportions", choices=tuple(ASPECTS), when=("shape", "box")),
    Field("mass", "float", 1.0, "", lo=0.05, hi=20.0, step=0.05, unit="kg"),
    Field("restitution", "float", 0.8, "bounciness: 0 stops dead, 0.95 keeps 95 % of the speed", lo=0.0, hi=0.95,
          step=0.05),
    Field("x", "float", 0.0, "start, to the side (the front camera's left is +x)", lo=-HALF_WORLD, hi=HALF_WORLD,
          step=0.01, unit="m"),
    Field("y", "float", 0.0, "start, towards the front camera", lo=-HALF_WORLD, hi=HALF_WORLD, step=0.01, unit="m"),
    Field("z", "float", 3.0, "start height of the centre above the floor", lo=0.0, hi=WORLD_HEIGHT, step=0.01,
          unit="m"),
    Field("vx", "float", 0.0, "start velocity along x", lo=-5.0, hi=5.0, step=0.1, unit="m/s"),
    Field("vy", "float", 0.0, "start velocity towards the front camera", lo=-5.0, hi=5.0, step=0.1, unit="m/s"),
    Field("vz", "float", 0.0, "start velocity upwards", lo=-5.0, hi=5.0, step=0.1, unit="m/s"),
    Field("spin", "float", 0.0, "about the camera's line of sight, counter-clockwise as seen", lo=-10.0, hi=10.0,
          step=0.5, unit="rad/s"),
    Field("colour", "choice", "orange", "colour word for the prompt", choices=COLOURS),
)
SCHEMA = (
    ListField("objects", OBJECT_FIELDS, min_items=1, max_items=6, doc="the moving objects"),
    Field("floor_restitution", "float", 1.0, "the floor's bounciness (multiplied by each object's)", lo=0.0, hi=1.0,
          step=0.05),
    Field("camera", "choice", "front", "the view", choices=tuple(CAMERAS_CHOICES)),
    Field("scene_words", "choice", "court", "where it happens", choices=tuple(SCENES)),
)


def default_object(**changes) -> dict:
    """One object with every field at its default (``aspect`` only for a box), then ``changes``."""
    obj = {f.name: f.default for f in OBJECT_FIELDS}
    obj.update(changes)
    if obj["shape"] != "box":
        obj.pop("aspect")
    return obj


def default_plan(objects=None, **changes) -> dict:
    """A valid plan: the defaults, ``objects`` (a list of dicts, e.g. from ``default_object``) and ``changes``."""
    plan = defaults(SCHEMA)
    plan.update(changes)
    if objects is not None:
        plan["objects"] = objects
    return validate(plan, SCHEMA, name="plan")


def half_extents(obj: dict) -> np.ndarray:
    """Half-sizes along x, y, z (a ball's are its radius)."""
    if obj["shape"] == "ball":
        return np.full(3, float(obj["size"]))
    return obj["size"] * np.asarray(ASPECTS[obj.get("aspect") or "cube"])


def bounding_radius(obj: dict) -> float:
    return float(np.linalg.norm(half_extents(obj))) if obj["shape"] == "box" else float(obj["size"])


def place(plan: dict) -> tuple[np.ndarray, list[str]]:
    """Start positions (N, 3): the plan's, lifted so that nothing starts inside the floor, and moved to the nearest
    free spot of a 0.1 m grid inside the world box where two objects' bounding spheres would overlap. Returns the
    positions and one note per change (shown in the notebook: the plan stays as written)."""
    pos, notes = [], []
    grid = np.arange(-HALF_WORLD, HALF_WORLD + 1e-9, 0.1)
    heights = np.arange(0.0, WORLD_HEIGHT + 1e-9, 0.1)
    for i, obj in enumerate(plan["objects"]):
        p = np.array([obj["x"], obj["y"], obj["z"]], dtype=float)
        lowest = half_extents(obj)[2] + 0.001
        if p[2] < lowest:
            notes.append(f"objects[{i}].z={obj['z']} is inside the floor: starts at z={lowest:.3f}")
            p[2] = lowest
        radius = bounding_radius(obj)

        def free(q, radius=radius):
            return all(np.linalg.norm(q - pos[j]) >= radius + bounding_radius(plan["objects"][j]) + 0.01
                       for j in range(len(pos)))

        if not free(p):
            spots = np.array(list(itertools.product(grid, grid, heights[heights >= lowest])))
            spots = spots[np.argsort(np.linalg.norm(spots - p, axis=1), kind="stable")]
            q = next((s for s in spots if free(s)), None)
            if q is None:
                raise ParameterError("plan", f"objects[{i}] does not fit beside the others in the 5 m world: "
                                             f"make the objects smaller or fewer")
            notes.append(f"objects[{i}] overlapped another object: starts at ({q[0]:.2f}, {q[1]:.2f}, {q[2]:.2f})")
            p = q
        pos.append(p)
    return np.array(pos), notes


# ------------------------------------------------------------------------------------------------ physics (MuJoCo)
def _exit_speed(zeta: float) -> float:
    """Restitution of a unit spring-damper contact (ω = 1, entry speed 1) that lets go when its force
    (penetration + 2ζ·penetration rate) reaches zero, as MuJoCo's contacts do (they push, never pull)."""
    if zeta < 1:
        wd = math.sqrt(1 - zeta * zeta)

        def state(t):
            decay = math.exp(-zeta * t)
            return decay * math.sin(wd * t) / wd, decay * (math.cos(wd * t) - zeta * math.sin(wd * t) / wd)
    else:
        root = math.sqrt(max(zeta * zeta - 1, 1e-12))
        r1, r2 = -zeta + root, -zeta - root

        def state(t):
            a, b = math.exp(r1 * t), math.exp(r2 * t)
            return (a - b) / (r1 - r2), (r1 * a - r2 * b) / (r1 - r2)

    def force(t):
        p, v = state(t)
        return p + 2 * zeta * v

    lo, hi = 0.0, 0.5
    while force(hi) > 0:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if force(mid) > 0 else (lo, mid)
    return -state(hi)[1]


def damping_ratio(e: float) -> float:
    """ζ for MuJoCo's ``solref="-k -b"`` (b = 2√k·ζ) that makes a contact return ``e`` of the entry speed. The
    textbook ζ = −ln e / √(π² + ln² e) assumes a contact that also pulls; ours lets go earlier, so ζ is larger."""
    if e >= 1:
        return 0.0
    if e <= _exit_speed(ZETA_MAX):
        return ZETA_MAX
    lo, hi = 0.0, ZETA_MAX
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _exit_speed(mid) > e else (lo, mid)
    return (lo + hi) / 2


def _pair(a: str, b: str, e: float) -> str:
    k = STIFFNESS
    return (f'<pair geom1="{a}" geom2="{b}" condim="3" friction="{FRICTION} {FRICTION} 0.005 0.0001 0.0001" '
            f'solref="{-k:g} {-2 * math.sqrt(k) * damping_ratio(e):.6g}" solimp="0.99 0.99 0.001 0.5 2"/>')


def mjcf(plan: dict, start: np.ndarray) -> str:
    """The MuJoCo model of a plan: the floor and one free body per object; every contact is an explicit pair whose
    restitution is the product of both materials' (so a 0.825 ball on the authors' floor of 1.0 bounces at 0.825)."""
    bodies, pairs, objs = [], [], plan["objects"]
    for i, (obj, p) in enumerate(zip(objs, start, strict=True)):
        if obj["shape"] == "ball":
            geom = f'type="sphere" size="{obj["size"]:g}"'
        else:
            geom = 'type="box" size="{:g} {:g} {:g}"'.format(*half_extents(obj))
        bodies.append(f'<body name="o{i}" pos="{p[0]:g} {p[1]:g} {p[2]:g}"><freejoint/>'
                      f'<geom name="g{i}" {geom} mass="{obj["mass"]:g}" contype="0" conaffinity="0"/></body>')
        pairs.append(_pair("floor", f"g{i}", obj["restitution"] * plan["floor_restitution"]))
    for i, j in itertools.combinations(range(len(objs)), 2):
        pairs.append(_pair(f"g{i}", f"g{j}", objs[i]["restitution"] * objs[j]["restitution"]))
    return (f'<mujoco model="scene"><option timestep="{TIMESTEP}" gravity="0 0 {-GRAVITY}"/><worldbody>'
            f'<geom name="floor" type="plane" size="{FLOOR_HALF:g} {FLOOR_HALF:g} 0.1" contype="0" conaffinity="0"/>'
            + "".join(bodies) + "</worldbody><contact>" + "".join(pairs) + "</contact></mujoco>")


def simulate(plan: dict, frames: int, fps: float) -> dict:
    """Run the plan for ``frames`` frames at ``fps`` (frame k at t = k / fps). Returns positions (F, N, 3) and
    rotations (F, N, 3, 3) per frame, every contact's start (time, the two parts, closing speed), the centre heights at
    every physics step (for measuring bounces), and the placement notes. Installs MuJoCo first if it is missing."""
    from ..platform.stack import ensure_package

    ensure_package("mujoco")
    import mujoco

    start, notes = place(plan)
    model = mujoco.MjModel.from_xml_string(mjcf(plan, start))
    data = mujoco.MjData(model)
    view = CAMERAS[plan["camera"]]["forward"]
    for i, obj in enumerate(plan["objects"]):
        qv = model.jnt_dofadr[i]
        data.qvel[qv:qv + 3] = [obj["vx"], obj["vy"], obj["vz"]]
        data.qvel[qv + 3:qv + 6] = -obj["spin"] * np.asarray(view)  # counter-clockwise as the camera sees it
    mujoco.mj_forward(model, data)  # poses and contacts of the start, before the first step
    names = ["floor"] + [f"objects[{i}]" for i in range(len(plan["objects"]))]
    dof = [0] + [model.jnt_dofadr[i] for i in range(len(plan["objects"]))]
    n, pos, rot, heights, contacts, touching = len(plan["objects"]), [], [], [], [], set()
    last = round((frames - 1) / fps / TIMESTEP)
    sample = {round(k / fps / TIMESTEP): k for k in range(frames)}
    for step in range(last + 1):
        if step:
            mujoco.mj_step(model, data)
        now = set()
        for c in data.contact[:data.ncon]:
            a, b = sorted((int(c.geom1), int(c.geom2)))  # geom 0 is the floor, geom i + 1 is objects[i]
            new = (a, b) not in touching and (a, b) not in now  # (a box meets the floor at up to 4 points at once)
            now.add((a, b))
            if new:
                va = data.qvel[dof[a]:dof[a] + 3] if a else np.zeros(3)
                vb = data.qvel[dof[b]:dof[b] + 3]
                contacts.append({"time": round(float(data.time), 4), "a": names[a], "b": names[b],
                                 "speed": round(float(abs(np.dot(vb - va, c.frame[:3]))), 3)})
        touching = now
        heights.append(data.xpos[1:, 2].copy())
        if step in sample:
            pos.append(data.xpos[1:].copy())
            rot.append(data.xmat[1:].reshape(n, 3, 3).copy())
    return {"fps": fps, "frames": frames, "times": [k / fps for k in range(frames)], "positions": np.array(pos),
            "rotations": np.array(rot), "contacts": contacts, "heights": np.array(heights), "start": start,
            "notes": notes}


def measure(plan: dict, sim: dict) -> list[dict]:
    """What the simulation did, per object, to hold against the plan: the frames where it hits the floor (faster
    than MIN_HIT_SPEED), the heights it rises to between hits (above its resting height), and the rebound ratios
    next to the ideal e² (e = the object's restitution × the floor's)."""
    out = []
    for i, obj in enumerate(plan["objects"]):
        rest = half_extents(obj)[2]
        hits = [c["time"] for c in sim["contacts"] if c["a"] == "floor" and c["b"] == f"objects[{i}]"
                and c["speed"] >= MIN_HIT_SPEED]
        z = sim["heights"][:, i] - rest
        steps = [round(t / TIMESTEP) for t in hits]
        first = z[0] + max(obj["vz"], 0.0) ** 2 / (2 * GRAVITY)  # the height the throw reaches (no hit yet)
        apexes = [first] + [float(z[s:e].max()) for s, e in zip(steps, steps[1:], strict=False) if e > s]  # flights
        apexes = [float(a) for a in apexes if a > 0.01]
        ratios = [round(b / a, 3) for a, b in zip(apexes, apexes[1:], strict=False) if a > 0.05]
        e = obj["restitution"] * plan["floor_restitution"]
        out.append({"object": f"objects[{i}]", "shape": obj["shape"],
                    "floor_hits_s": [round(t, 3) for t in hits],
                    "floor_hit_frames": [math.ceil(t * sim["fps"] - 1e-9) for t in hits],
                    "apex_m": [round(a, 3) for a in apexes], "rebound_ratios": ratios,
                    "restitution": round(e, 4), "ideal_ratio": round(e * e, 4)})
    return out


# ------------------------------------------------------------------------------------------------ cameras and maps
def _blender_pose(location, euler_deg):
    """Forward and up of a Blender camera (it looks along its local −Z) from its XYZ Euler angles."""
    rx, ry, rz = (math.radians(a) for a in euler_deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    rot = (np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
           @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]))
    return {"eye": tuple(location), "forward": tuple(rot @ [0, 0, -1.0]), "up": tuple(rot @ [0, 1.0, 0])}


FOV_DEG = 2 * math.degrees(math.atan(18 / 50))  # Blender's default 50 mm lens on its 36 mm sensor: 39.6°
CAMERAS = {  # the authors' two poses (facts: blender_scene_rules.cameras) and our side view (front, turned 90°)
    "front": _blender_pose((-0.165, 15.066, 1.7549), (-86.8, 180, 0)),
    "top": _blender_pose((-0.07083, 9.59862, 14.9201), (-140, 180, 0)),
    "side": _blender_pose((15.066, 0.165, 1.7549), (-86.8, 180, -90)),
}


def rays(camera: str, width: int, height: int):
    """The camera's eye, per-pixel unit ray directions (H, W, 3) and its forward axis; 39.6° across the larger
    side, as Blender's default sensor fit does."""
    cam = CAMERAS[camera]
    fwd, up = np.asarray(cam["forward"]), np.asarray(cam["up"])
    right = np.cross(fwd, up)
    half = math.tan(math.radians(FOV_DEG) / 2) / max(width, height)  # tan per pixel from the centre
    u = (np.arange(width) + 0.5 - width / 2) * half * 2
    v = (height / 2 - np.arange(height) - 0.5) * half * 2
    d = fwd + u[None, :, None] * right + v[:, None, None] * up
    return np.asarray(cam["eye"]), d / np.linalg.norm(d, axis=-1, keepdims=True), fwd


def floor_hits(eye, dirs):
    """Distance to the floor along each ray (inf where a ray misses the 50 m floor): the same in every frame."""
    d = dirs.reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -eye[2] / d[:, 2]
    hit = eye[None, :2] + t[:, None] * d[:, :2]
    return np.where((t > 1e-6) & (np.abs(hit) <= FLOOR_HALF).all(axis=1), t, np.inf)


def cast(eye, dirs, plan: dict, pos, rot, floor=None):
    """One frame: distance along each ray to the first surface, and a label per pixel (-1 sky, 0 floor, then per
    object 8·(i+1) + a part code: a box's face, a ball's octant in its own frame, so part boundaries draw the
    box creases and three seams that turn with the ball). ``floor``: ``floor_hits`` of these rays, if known."""
    h, w, _ = dirs.shape
    d = dirs.reshape(-1, 3)
    t = (floor_hits(eye, dirs) if floor is None else floor).copy()
    label = np.where(np.isfinite(t), 0, -1)
    for i, obj in enumerate(plan["objects"]):
        o = (eye - pos[i]) @ rot[i]  # the eye and the rays in the object's own frame
        dl = d @ rot[i]
        if obj["shape"] == "ball":
            b, c = dl @ o, o @ o - obj["size"] ** 2
            disc = b * b - c
            tk = -b - np.sqrt(np.maximum(disc, 0))
            tk = np.where((disc >= 0) & (tk > 1e-6), tk, np.inf)
        else:
            half = half_extents(obj)
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-half - o) / dl, (half - o) / dl
            near, far = np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)
            tk = np.where((far >= near) & (near > 1e-6), near, np.inf)
        closer = tk < t
        p = o + tk[closer, None] * dl[closer]  # hit points in the object's frame
        if obj["shape"] == "ball":
            part = (p[:, 0] > 0) + 2 * (p[:, 1] > 0) + 4 * (p[:, 2] > 0)
        else:
            q = np.abs(p) / half
            part = np.argmax(q, axis=1) * 2 + (np.take_along_axis(p, np.argmax(q, axis=1)[:, None], 1)[:, 0] > 0)
        t[closer], label[closer] = tk[closer], 8 * (i + 1) + part
    return t.reshape(h, w), label.reshape(h, w)


def render(plan: dict, sim: dict, width: int, height: int) -> dict:
    """Every frame's eye-space depth (F, H, W; inf for the sky), labels (F, H, W) and object ids (F, H, W: -1 sky,
    0 floor, i + 1 for objects[i])."""
    eye, dirs, fwd = rays(plan["camera"], width, height)
    floor, along = floor_hits(eye, dirs), dirs @ fwd
    depth, labels = [], []
    for pos, rot in zip(sim["positions"], sim["rotations"], strict=True):
        t, label = cast(eye, dirs, plan, pos, rot, floor)
        depth.append(t * along)
        labels.append(label)
    labels = np.array(labels)
    return {"depth": np.array(depth), "labels": labels, "ids": np.where(labels >= 8, labels // 8, labels)}


def depth_maps(depth: np.ndarray) -> np.ndarray:
    """Inverse depth scaled to [0, 1] with **one** near and far for the whole clip (near = white, sky black), so a
    surface keeps its brightness from frame to frame."""
    inv = np.where(np.isfinite(depth), 1.0 / depth, 0.0)
    seen = inv[inv > 0]
    lo, hi = seen.min(), seen.max()
    return np.where(inv > 0, (inv - lo) / max(hi - lo, 1e-12), 0.0).astype(np.float32)


def edge_maps(labels: np.ndarray) -> np.ndarray:
    """Lines where the label changes between 4-neighbours (F, H, W booleans): silhouettes, the floor's far edge, box
    creases and ball seams; never inside the floor or a face (no texture, no shading)."""
    e = np.zeros(labels.shape, bool)
    e[..., :, 1:] |= labels[..., :, 1:] != labels[..., :, :-1]
    e[..., 1:, :] |= labels[..., 1:, :] != labels[..., :-1, :]
    return e


def prompt_for(description: str, plan: dict) -> str:
    """The text prompt: the description, then the plan's colour and shape words and its scene words."""
    things = ", ".join(f"{'an' if o['colour'][0] in 'aeiou' else 'a'} {o['colour']} {o['shape']}"
                       for o in plan["objects"])
    return f"{description.strip().rstrip('.')}, {things}, {SCENES[plan['scene_words']]}, {QUALITY}"


def panels(depth: np.ndarray, edges: np.ndarray, frames=None) -> list:
    """Per frame one picture (PIL): the depth map and the edge map side by side, then the generated frame if given."""
    from PIL import Image

    out = []
    for k, (d, e) in enumerate(zip(depth, edges, strict=True)):
        row = [np.repeat(d[..., None] * 255.0, 3, axis=-1), np.repeat(e[..., None] * 255.0, 3, axis=-1)]
        if frames is not None:
            row.append(np.clip(np.asarray(frames[k], dtype=np.float64), 0, 1) * 255)
        out.append(Image.fromarray(np.concatenate(row, axis=1).round().astype(np.uint8)))
    return out
