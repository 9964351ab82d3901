"""Marching-cubes lookup tables in the conventions of diffusers' Shap-E ``MeshDecoder``.

Published Shap-E checkpoints carry these tables as the buffers ``mesh_decoder.cases`` (256×5×3, long) and
``mesh_decoder.masks`` (256×5, bool). A renderer built from a config (a tiny twin) has zeros there, and
``output_type="mesh"`` then finds no triangles and crashes. ``install(renderer)`` fills them.

Conventions of the decoder: a cube's case number has bit ``dx + 2·dy + 4·dz`` set when that corner is inside
(field > 0); its 12 edges are numbered x-edges 0-3 at (y,z) = (0,0),(1,0),(0,1),(1,1), then y-edges 4-7 at
(x,z), then z-edges 8-11 at (x,y). For each case we walk the six faces, join the crossing edges of each face
into segments (on an ambiguous face every inside corner is cut off on its own, which neighbouring cubes agree
on), chain segments into loops, fan-triangulate each loop, and wind triangles so normals point outwards.
"""
from __future__ import annotations

import itertools

import numpy as np

CORNERS = list(itertools.product((0, 1), repeat=3))
EDGES = (
    [((0, y, z), (1, y, z)) for y, z in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    + [((x, 0, z), (x, 1, z)) for x, z in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    + [((x, y, 0), (x, y, 1)) for x, y in [(0, 0), (1, 0), (0, 1), (1, 1)]]
)
EDGE_ID = {frozenset(e): i for i, e in enumerate(EDGES)}
MIDPOINT = [(np.array(a) + np.array(b)) / 2 for a, b in EDGES]


def _faces():
    """The cube's six faces, each as four corners in cyclic order."""
    for axis in range(3):
        u, v = (i for i in range(3) if i != axis)
        for side in (0, 1):
            face = []
            for p, q in [(0, 0), (1, 0), (1, 1), (0, 1)]:
                c = [0, 0, 0]
                c[axis], c[u], c[v] = side, p, q
                face.append(tuple(c))
            yield face


def _segments(inside: dict) -> list[tuple[int, int]]:
    segs = []
    for f in _faces():
        ring = list(zip(f, f[1:] + f[:1], strict=True))
        crossing = [EDGE_ID[frozenset(e)] for e in ring if inside[e[0]] != inside[e[1]]]
        if len(crossing) == 2:
            segs.append(tuple(crossing))
        elif len(crossing) == 4:  # ambiguous face: cut each inside corner off separately
            for i, corner in enumerate(f):
                if inside[corner]:
                    segs.append((EDGE_ID[frozenset((corner, f[i - 1]))], EDGE_ID[frozenset((corner, f[(i + 1) % 4]))]))
    return segs


def _loops(segs: list[tuple[int, int]]) -> list[list[int]]:
    neighbours: dict[int, list[int]] = {}
    for a, b in segs:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    seen, loops = set(), []
    for start in neighbours:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            step = [n for n in neighbours[cur] if n != prev and n not in seen]
            if not step:
                break
            prev, cur = cur, step[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    return loops


def case_triangles(case: int) -> list[list[int]]:
    """Triangles (as edge ids) for one of the 256 inside/outside patterns; at most 5."""
    inside = {c: bool(case >> (c[0] + 2 * c[1] + 4 * c[2]) & 1) for c in CORNERS}
    outward = [(np.array(b) - np.array(a)) * (1 if inside[a] else -1) for a, b in EDGES]
    tris = []
    for loop in _loops(_segments(inside)):
        for k in range(1, len(loop) - 1):
            t = [loop[0], loop[k], loop[k + 1]]
            normal = np.cross(MIDPOINT[t[1]] - MIDPOINT[t[0]], MIDPOINT[t[2]] - MIDPOINT[t[0]])
            if np.dot(normal, sum(outward[e] for e in t)) < 0:
                t = [t[0], t[2], t[1]]
            tris.append(t)
    return tris[:5]


def tables():
    """(cases [256,5,3] long, masks [256,5] bool) as torch tensors."""
    import torch

    cases = torch.zeros(256, 5, 3, dtype=torch.long)
    masks = torch.zeros(256, 5, dtype=torch.bool)
    for c in range(256):
        for j, t in enumerate(case_triangles(c)):
            cases[c, j] = torch.tensor(t)
            masks[c, j] = True
    return cases, masks


def install(renderer):
    """Fill a ShapERenderer's mesh-decoder tables in place (save_pretrained then writes them)."""
    cases, masks = tables()
    renderer.mesh_decoder.cases.copy_(cases)
    renderer.mesh_decoder.masks.copy_(masks)
    return renderer
