"""A procedural scene (``procedural.build``) seen and judged from its mesh, never from its plan.

* ``measure``: facts read from a scene as loaded back from its GLB, with each node's transform applied (GLB bounds
  are local to a node): objects per kind, tree heights, crown shapes (width/height of the foliage), dominant colours
  (the named colour most vertices are nearest to), the terrain's relief and snow share, water, clouds, the sky;
* ``judge``: a small table of words a description may use and the measured fact each one asks for
  ("forest" → at least 10 trees, "pine" → cone crowns, "snowy" → snow on 30 % of the land, "dusk" → a low sun and a
  warm sky in the preview…);
* ``view`` / ``turntable``: previews with no GPU or display: a perspective camera, triangles painted far to near
  (PIL), Lambert shading from the plan's sun, a sky gradient by sun elevation (warm below 15°, dark below 0°).
"""
from __future__ import annotations

import re

import numpy as np

from .procedural import COLOURS

CROWN_SHAPES = ((0.85, "cone"), (1.6, "round"), (np.inf, "umbrella"))  # foliage width / height below → shape
_TREE = re.compile(r"^tree_([a-z]+)_(\d+)_(\d+)_(trunk|crown|fruit)$")


def colour_name(rgb) -> str:
    names = list(COLOURS)
    table = np.array([COLOURS[n] for n in names], float)
    return names[int(np.argmin(((table - np.asarray(rgb, float)) ** 2).sum(1)))]


def dominant_colour(colours) -> str:
    """The named colour most vertices are nearest to."""
    table = np.array(list(COLOURS.values()), float)
    nearest = ((np.asarray(colours, float)[:, None, :3] - table[None]) ** 2).sum(2).argmin(1)
    return list(COLOURS)[int(np.bincount(nearest, minlength=len(table)).argmax())]


def world_parts(scene) -> dict:
    """{node: (world vertices, faces, vertex RGB)} with every node's transform applied."""
    import trimesh

    out = {}
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        g = scene.geometry[name]
        rgb = g.visual.vertex_colors[:, :3] if g.visual.kind == "vertex" else np.full((len(g.vertices), 3), 180)
        out[node] = (trimesh.transform_points(g.vertices, transform), np.asarray(g.faces), np.asarray(rgb))
    return out


def measure(scene) -> dict:
    parts = world_parts(scene)
    trees: dict = {}
    for node, (v, _, rgb) in parts.items():
        m = _TREE.match(node)
        if m:
            t = trees.setdefault((m[2], m[3]), {"kind": m[1], "parts": {}})
            t["parts"][m[4]] = (v, rgb)
    tree_facts = []
    for t in trees.values():
        allv = np.concatenate([v for v, _ in t["parts"].values()])
        fact = {"kind": t["kind"], "height_m": round(float(np.ptp(allv[:, 1])), 3), "crown": "none"}
        if "crown" in t["parts"]:
            v, rgb = t["parts"]["crown"]
            ratio = max(np.ptp(v[:, 0]), np.ptp(v[:, 2])) / max(np.ptp(v[:, 1]), 1e-6)
            fact.update(crown=next(s for r, s in CROWN_SHAPES if ratio < r), crown_ratio=round(float(ratio), 3),
                        leaf_colour=dominant_colour(rgb))
        if "fruit" in t["parts"]:
            fact["fruit_colour"] = dominant_colour(t["parts"]["fruit"][1])
        tree_facts.append(fact)
    kinds = {k: [p for n, p in parts.items() if n.startswith(k + "_")] for k in ("rock", "flower", "cloud")}
    terrain_v, _, terrain_rgb = parts["terrain"]
    out = {
        "nodes": len(parts),
        "faces": int(sum(len(f) for _, f, _ in parts.values())),
        "trees": len(tree_facts),
        "trees_by_kind": {k: sum(t["kind"] == k for t in tree_facts) for k in sorted({t["kind"] for t in tree_facts})},
        "tree_heights_m": sorted(t["height_m"] for t in tree_facts),
        "crowns": {s: sum(t["crown"] == s for t in tree_facts) for s in sorted({t["crown"] for t in tree_facts})},
        "leaf_colours": sorted({t["leaf_colour"] for t in tree_facts if "leaf_colour" in t}),
        "tree_facts": tree_facts,
        "rocks": len(kinds["rock"]),
        "rock_colour": dominant_colour(np.concatenate([c for _, _, c in kinds["rock"]])) if kinds["rock"] else None,
        "rock_size_m": round(float(np.mean([np.ptp(v, 0).max() for v, _, _ in kinds["rock"]])), 3)
        if kinds["rock"] else None,
        "flowers": len(kinds["flower"]),
        "flower_colour": dominant_colour(np.concatenate([c for _, _, c in kinds["flower"]]))
        if kinds["flower"] else None,
        "flower_faces": int(len(kinds["flower"][0][1])) if kinds["flower"] else 0,
        "clouds": len(kinds["cloud"]),
        "relief_m": round(float(np.ptp(terrain_v[:, 1])), 3),
        "size_m": round(float(np.ptp(terrain_v[:, 0])), 3),
        "snow_share": round(float((terrain_rgb.min(1) > 225).mean()), 3),
        "water": "water" in parts,
        "grass_blades": int(len(parts["grass"][1])) if "grass" in parts else 0,
        "particles": sorted(n.removeprefix("particles_") for n in parts if n.startswith("particles_")),
        "sky": dict(scene.metadata.get("extras", {})),
    }
    return out


def sky_colours(elevation: float, haze: float = 0.0):
    """(top, horizon) RGB of the preview's sky: night below 0°, warm below 15°, blue above."""
    if elevation < 0:
        top, horizon = (15, 20, 45), (45, 45, 80)
    elif elevation < 15:
        top, horizon = (150, 95, 120), (250, 150, 80)
    else:
        top, horizon = (70, 130, 220), (180, 210, 240)
    grey = np.array([200, 200, 205])
    return tuple(np.asarray(c) * (1 - 0.6 * haze) + grey * 0.6 * haze for c in (top, horizon))


def warm(rgb) -> bool:
    r, _, b = (float(x) for x in rgb[:3])
    return r > b + 20


JUDGE = [  # (words in the description, what must be measured, the check)
    (("forest", "woods"), "at least 10 trees", lambda f: f["trees"] >= 10),
    (("pine", "pines", "conifer"), "most crowns are cones", lambda f: f["crowns"].get("cone", 0) > f["trees"] / 2),
    (("palm", "palms"), "most crowns are umbrellas", lambda f: f["crowns"].get("umbrella", 0) > f["trees"] / 2),
    (("tall",), "a tree at least 15 m tall", lambda f: max(f["tree_heights_m"], default=0) >= 15),
    (("hill", "hills", "hilly"), "relief at least 5 m", lambda f: f["relief_m"] >= 5),
    (("mountain", "mountains"), "relief at least 15 m", lambda f: f["relief_m"] >= 15),
    (("snow", "snowy", "winter"), "snow on at least 30 % of the land", lambda f: f["snow_share"] >= 0.3),
    (("rock", "rocks", "rocky", "boulders"), "at least 3 rocks", lambda f: f["rocks"] >= 3),
    (("lake", "river", "water", "coast", "beach", "pond"), "a water surface", lambda f: f["water"]),
    (("flower", "flowers", "meadow"), "at least 5 flowers", lambda f: f["flowers"] >= 5),
    (("cloud", "clouds", "cloudy"), "at least 3 clouds", lambda f: f["clouds"] >= 3),
    (("autumn", "fall"), "autumn leaves (orange, red or yellow)",
     lambda f: bool(set(f["leaf_colours"]) & {"orange", "red", "yellow"})),
    (("dusk", "sunset", "sunrise", "dawn"), "sun at most 15° high and a warm sky in the preview",
     lambda f: f["sky"].get("sun_elevation_deg", 90) <= 15 and f.get("preview_warm", False)),
    (("night",), "the sun below the horizon", lambda f: f["sky"].get("sun_elevation_deg", 90) < 0),
]


def judge(description: str, facts: dict) -> list[dict]:
    """One row per word of ``JUDGE`` the description uses (and ``<colour> flowers``): the check and whether the
    measured scene passes it."""
    words = re.findall(r"[a-z_]+", description.lower())
    rows = [{"word": next(w for w in ws if w in words), "asks": asks, "passed": bool(check(facts))}
            for ws, asks, check in JUDGE if set(ws) & set(words)]
    for i, w in enumerate(words[:-1]):
        if w in COLOURS and words[i + 1] in ("flower", "flowers"):
            rows.append({"word": f"{w} flowers", "asks": f"flowers mostly {w}",
                         "passed": facts["flower_colour"] == w})
    return rows


# ----------------------------------------------------------------------------------------------- previews
def flatten(scene, max_faces: int = 30000, seed: int = 0):
    """All triangles in world space with their colours; above ``max_faces`` a subset drawn by area (a preview)."""
    parts = world_parts(scene)
    tris = np.concatenate([v[f] for v, f, _ in parts.values()])
    cols = np.concatenate([rgb[f].mean(1) for _, f, rgb in parts.values()])
    if len(tris) > max_faces:
        area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1) + 1e-9
        keep = np.random.default_rng(seed).choice(len(tris), max_faces, replace=False, p=area / area.sum())
        tris, cols = tris[keep], cols[keep]
    return tris, cols


def view(tris, cols, sky: dict, azimuth: float, size: int = 256, elevation: float = 25.0, distance: float = 1.0):
    """One preview (PIL) from a camera circling the scene's centre (``distance`` in scene widths): triangles
    painted far to near at twice the size, then downsampled."""
    from PIL import Image, ImageDraw

    lo, hi = tris.reshape(-1, 3).min(0), tris.reshape(-1, 3).max(0)
    centre = (lo + hi) / 2
    width = max(hi[0] - lo[0], hi[2] - lo[2])
    a, e = np.radians(azimuth), np.radians(elevation)
    eye = centre + distance * width * np.array([np.cos(e) * np.cos(a), np.sin(e), np.cos(e) * np.sin(a)])
    fwd = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(fwd, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    rel = tris - eye
    depth = rel @ fwd
    front = depth.min(1) > 0.05 * width
    big = 2 * size
    focal = big / 2 / np.tan(np.radians(28))
    xy = np.stack([rel @ right, -(rel @ up)], -1) * focal / np.maximum(depth, 1e-6)[..., None] + big / 2
    sun_e, sun_a = np.radians(sky.get("sun_elevation_deg", 45)), np.radians(sky.get("sun_azimuth_deg", 135))
    sun = np.array([np.cos(sun_e) * np.cos(sun_a), np.sin(sun_e), np.cos(sun_e) * np.sin(sun_a)])
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    light = 0.35 + 0.65 * np.abs(normal @ sun) * (0.4 if sky.get("sun_elevation_deg", 45) < 0 else 1.0)
    shaded = np.clip(cols * light[:, None], 0, 255).astype(int)
    top, horizon = sky_colours(sky.get("sun_elevation_deg", 45), sky.get("haze", 0))
    rows = np.linspace(0, 1, big)[:, None] * (np.asarray(horizon) - top) + top
    img = Image.fromarray(np.repeat(rows[:, None, :], big, 1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    keep = np.flatnonzero(front)
    for i in keep[np.argsort(-depth[keep].mean(1))]:
        draw.polygon([tuple(pt) for pt in xy[i]], fill=tuple(shaded[i]))
    return img.resize((size, size), Image.LANCZOS)


def sky_is_warm(image) -> bool:
    """Is the preview's sky warm (red above blue)? Read from the median of its top tenth of rows."""
    top = np.asarray(image)[: max(1, image.height // 10)].reshape(-1, 3)
    return warm(np.median(top, 0))


def turntable(scene, views: int = 24, size: int = 256, max_faces: int = 30000) -> list:
    """``views`` previews around the scene, the camera 25° above the horizon."""
    tris, cols = flatten(scene, max_faces)
    sky = dict(scene.metadata.get("extras", {}))
    return [view(tris, cols, sky, 360 * i / views, size) for i in range(views)]


def save_scene(scene, output_dir, stem: str, meta: dict):
    """The scene as ``<stem>.glb`` with its sidecar (plan, report, measured facts in ``meta``), atomically."""
    from pathlib import Path

    from ..outputs.media import save_file

    def write(tmp):
        scene.export(tmp, file_type="glb")

    return save_file(Path(output_dir) / f"{stem}.glb", write, meta)
