"""Panoramas from a ring of perspective views, and how well they join: numpy only (no model, no torch).

The cameras are MVDiffusion's (tests/reference/mvdiffusion/reference_behaviour.json, ``cameras``): square views
of ``size`` pixels with a field of view ``fov_deg``, all at one point, turned about the vertical axis; view i
looks ``yaw_offset + i·360/views`` degrees to the right of straight ahead (8 views: 45° apart, each 90° wide,
so every direction on the horizon is seen by two views). OpenCV axes: x right, y down, z forward; ``R`` maps
camera to world. A pixel of view i lands in view j through the homography ``K_j R_jᵀ R_i K_i⁻¹`` (a pure
rotation: no depth needed).

What is here:

* ``ring`` — K and R of every view (float32, as the model uses them);
* ``stitch`` — the views blended into an equirectangular panorama: longitude left to right (−180° … 180°,
  sampled at pixel centres, so the ±180° column is not doubled as in the authors' stitcher), latitude top to
  bottom, each view weighted by a tent in its own pixel columns (1 at its centre column, 0 at its edges) as the
  authors do; the rows every longitude covers are kept (about ±42.7° for 8 views of 90°: above and below, no
  view ever looked);
* ``render_views`` — the inverse: perspective views cut out of an equirectangular picture (tests, and a way to
  check the cameras by eye);
* the seam checks: ``wrap_seam_ratio`` (does the picture join where 360° meets 0°?) and
  ``overlap_disagreement`` (do neighbouring views agree where they see the same directions?).
"""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------------------------- cameras
def yaws(views: int = 8, yaw_offset: float = 0.0) -> list[float]:
    """The yaw of each view in degrees, in [0, 360): view i+1 is 360/views to the right of view i."""
    return [float((yaw_offset + 360.0 / views * i) % 360.0) for i in range(views)]


def intrinsics(size: int, fov_deg: float = 90.0) -> np.ndarray:
    """K of a square view: focal length f = size / 2 / tan(fov / 2), principal point at (size − 1) / 2."""
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    c = (size - 1) / 2
    return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float32)


def rotation(yaw_deg: float) -> np.ndarray:
    """Camera-to-world rotation about the +y (down) axis: positive yaw turns the view to the right."""
    t = math.radians(yaw_deg)
    return np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]], dtype=np.float32)


def ring(size: int, views: int = 8, fov_deg: float = 90.0, yaw_offset: float = 0.0,
         yaws_deg=None) -> tuple[np.ndarray, np.ndarray]:
    """(K, R) of every view, each (views, 3, 3) float32. ``yaws_deg`` overrides the regular ring."""
    angles = list(yaws_deg) if yaws_deg is not None else yaws(views, yaw_offset)
    K = np.stack([intrinsics(size, fov_deg)] * len(angles))
    R = np.stack([rotation(a) for a in angles])
    return K, R


def homography(K_i, R_i, K_j, R_j) -> np.ndarray:
    """The 3×3 map from homogeneous pixels of view i to view j: K_j · R_j⁻¹ · R_i · K_i⁻¹ (float64)."""
    K_i, R_i, K_j, R_j = (np.asarray(a, dtype=np.float64) for a in (K_i, R_i, K_j, R_j))
    return K_j @ np.linalg.inv(R_j) @ R_i @ np.linalg.inv(K_i)


def apply_homography(H, xy):
    """Points (..., 2) through H; returns (points (..., 2), depth sign (...,): > 0 where in front)."""
    xy = np.asarray(xy, dtype=np.float64)
    p = xy @ H[:, :2].T + H[:, 2]
    return p[..., :2] / p[..., 2:3], p[..., 2]


# ----------------------------------------------------------------------------------------------- sampling
def bilinear(image, x, y):
    """Sample ``image`` (H, W, C) at float pixel coordinates (x column, y row), clamped to the border."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - ax) + image[y0, x1] * ax
    bottom = image[y1, x0] * (1 - ax) + image[y1, x1] * ax
    return top * (1 - ay) + bottom * ay


def directions(height: int, width: int) -> np.ndarray:
    """World directions (height, width, 3) of an equirectangular grid, at pixel centres: longitude
    −180 + (k + ½)·360/width left to right, latitude 90 − (r + ½)·180/height top to bottom."""
    lon = np.radians(-180 + (np.arange(width) + 0.5) * 360 / width)
    lat = np.radians(90 - (np.arange(height) + 0.5) * 180 / height)
    lon, lat = np.meshgrid(lon, lat)
    return np.stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)], -1)


def stitch(views, K, R, width: int) -> dict:
    """Blend the views (M, S, S, 3) floats in [0, 1] into an equirectangular panorama ``width`` × width/2 and
    keep the band of rows that every longitude covers. Returns {"band": (h, width, 3), "latitudes": (top,
    bottom) of the band in degrees, "coverage": (width/2, width) bool of the whole sphere, "row0": the band's
    first row in the sphere}."""
    views = np.asarray(views, dtype=np.float32)
    height = width // 2
    d = directions(height, width)
    acc = np.zeros((height, width, views.shape[-1]), np.float64)
    total = np.zeros((height, width), np.float64)
    size = views.shape[1]
    for view, k, r in zip(views, K, R, strict=True):
        c = d @ np.asarray(r, np.float64)  # camera coordinates: Rᵀ·d for every direction
        z = c[..., 2]
        front = z > 1e-6
        zs = np.where(front, z, 1.0)
        u = k[0, 0] * c[..., 0] / zs + k[0, 2]
        v = k[1, 1] * c[..., 1] / zs + k[1, 2]
        inside = front & (u >= 0) & (u <= size - 1) & (v >= 0) & (v <= size - 1)
        half = (size - 1) / 2
        weight = np.where(inside, np.clip(1 - np.abs(u - half) / half, 0, 1), 0.0)  # the authors' tent
        acc += weight[..., None] * bilinear(view, u, v)
        total += weight
    coverage = total > 0
    pano = np.where(coverage[..., None], acc / np.maximum(total, 1e-12)[..., None], 0.0)
    full = np.flatnonzero(coverage.all(axis=1))
    if not len(full):
        raise ValueError("no row of the panorama is covered at every longitude: the views leave gaps")
    r0, r1 = int(full[0]), int(full[-1]) + 1
    top, bottom = 90 - r0 * 180 / height, 90 - r1 * 180 / height
    return {"band": pano[r0:r1].astype(np.float32), "latitudes": (top, bottom), "coverage": coverage, "row0": r0}


def render_views(equirect, K, R, size: int):
    """Perspective views (M, size, size, C) cut out of a full-sphere equirectangular picture (H, W, C) with
    the cameras K, R: for each pixel, its ray in the world, then that ray's longitude and latitude."""
    equirect = np.asarray(equirect, dtype=np.float64)
    h, w = equirect.shape[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    pixels = np.stack([xs, ys, np.ones_like(xs)], -1)
    out = []
    for k, r in zip(K, R, strict=True):
        ray = pixels @ np.linalg.inv(np.asarray(k, np.float64)).T @ np.asarray(r, np.float64).T
        lon = np.degrees(np.arctan2(ray[..., 0], ray[..., 2]))
        lat = np.degrees(np.arcsin(-ray[..., 1] / np.linalg.norm(ray, axis=-1)))
        col = (lon + 180) / 360 * w - 0.5
        row = (90 - lat) / 180 * h - 0.5
        wrapped = np.concatenate([equirect, equirect[:, :1]], axis=1)  # longitude wraps around
        out.append(bilinear(wrapped, np.mod(col, w), row))
    return np.stack(out).astype(np.float32)


# ----------------------------------------------------------------------------------------------- seam checks
def wrap_seam_ratio(image) -> float:
    """How visible the join is where a 360° picture wraps around (its last column meets its first): the mean
    |difference| across the wrap divided by the mean |difference| between neighbouring columns inside.
    About 1: seamless; much more than 1: a visible seam."""
    image = np.asarray(image, dtype=np.float64)
    wrap = np.abs(image[:, 0] - image[:, -1]).mean()
    inside = np.abs(np.diff(image, axis=1)).mean()
    return float(wrap / max(inside, 1e-12))


def overlap_disagreement(views, K, R, margin: float = 2.0) -> list[float]:
    """For each view i, the mean |difference| (0–1 scale) between its pixels and what view i+1 shows in the
    same directions (bilinear, before any blending), over the pixels that land inside view i+1 with ``margin``
    pixels to spare. 0 means the neighbours agree exactly where they overlap."""
    views = np.asarray(views, dtype=np.float64)
    m, size = len(views), views.shape[1]
    ys, xs = np.mgrid[0:size, 0:size]
    xy = np.stack([xs, ys], -1).astype(np.float64)
    out = []
    for i in range(m):
        j = (i + 1) % m
        q, depth = apply_homography(homography(K[i], R[i], K[j], R[j]), xy)
        ok = ((depth > 0) & (q[..., 0] >= margin) & (q[..., 0] <= size - 1 - margin)
              & (q[..., 1] >= margin) & (q[..., 1] <= size - 1 - margin))
        if not ok.any():
            raise ValueError(f"views {i} and {j} do not overlap: the ring has gaps")
        seen = bilinear(views[j], q[..., 0][ok], q[..., 1][ok])
        out.append(float(np.abs(views[i][ok] - seen).mean()))
    return out
