"""A panorama viewer in one self-contained HTML file: no network, no CDN, no library.

The panorama is embedded as a base64 JPEG. A 800×450 canvas shows what a perspective camera at the centre
would see: for every canvas pixel, a ray from (yaw, pitch, horizontal field of view) is turned into a
longitude and a latitude, and the picture is sampled there (bilinear). Drag to look around, the wheel zooms
(30–100°), the arrow keys turn by ``step_deg`` (45°: one MVDiffusion view). The picture covers 360° of
longitude and the band of latitudes ``latitudes`` (top, bottom) in degrees, rows spaced evenly in latitude
(an equirectangular band); the pitch is clamped so the view stays inside it. A MultiDiffusion strip has no
cameras: shown here as if it were such a band (approximate, say so where it is shown). "Flat" mode simply
scrolls the picture sideways.
"""
from __future__ import annotations

import base64
import html
import io
import json

TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>body{margin:0;background:#111;color:#ccc;font:13px sans-serif}canvas{display:block;cursor:grab}
#bar{padding:4px 8px}#flat{display:none;width:800px;height:450px;background-repeat:repeat-x;cursor:grab}</style>
</head><body>
<canvas id="view" width="800" height="450"></canvas><div id="flat"></div>
<div id="bar">drag: look around · wheel: zoom · ←/→: turn __STEP__° · <label><input type="checkbox" id="mode">
flat</label> · <span id="info"></span><br>__NOTE__</div>
<img id="pano" alt="panorama" style="display:none" src="data:image/jpeg;base64,__DATA__">
<script>
const P = __PARAMS__, rad = Math.PI / 180;
const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");
const flat = document.getElementById("flat"), info = document.getElementById("info");
const img = document.getElementById("pano");
let src = null, yaw = P.yaw, pitch = 0, hfov = 75, drag = null, queued = false;
function maxPitch() {
  const vfov = 2 * Math.atan(Math.tan(hfov * rad / 2) * canvas.height / canvas.width) / rad;
  return Math.max(0, (P.top - P.bottom) / 2 - vfov / 2);
}
function draw() {
  queued = false;
  if (!src) return;
  pitch = Math.max(-maxPitch(), Math.min(maxPitch(), pitch));
  const W = canvas.width, H = canvas.height, out = ctx.createImageData(W, H), o = out.data;
  const sw = src.width, sh = src.height, s = src.data, t = Math.tan(hfov * rad / 2) / (W / 2);
  const cy = Math.cos(yaw * rad), sy = Math.sin(yaw * rad), cp = Math.cos(pitch * rad), sp = Math.sin(pitch * rad);
  for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) {
    const x = (i + 0.5 - W / 2) * t, y = (j + 0.5 - H / 2) * t;   // camera ray (x right, y down, z = 1)
    const y1 = y * cp - sp, z1 = y * sp + cp;                      // pitch: about the x axis (up is -y)
    const dx = x * cy + z1 * sy, dz = -x * sy + z1 * cy;           // yaw: about the y axis, to the right
    const lon = Math.atan2(dx, dz) / rad, lat = -Math.atan2(y1, Math.hypot(dx, dz)) / rad;
    let u = ((lon + 180) / 360 * sw - 0.5 + sw) % sw, v = (P.top - lat) / (P.top - P.bottom) * sh - 0.5;
    const k = 4 * (j * W + i);
    if (v < -0.5 || v > sh - 0.5) { o[k] = o[k + 1] = o[k + 2] = 0; o[k + 3] = 255; continue; }
    v = Math.max(0, Math.min(sh - 1, v));
    const u0 = Math.floor(u), v0 = Math.floor(v), u1 = (u0 + 1) % sw, v1 = Math.min(v0 + 1, sh - 1);
    const a = u - u0, b = v - v0;
    for (let c = 0; c < 3; c++) {
      const p00 = s[4 * (v0 * sw + u0) + c], p01 = s[4 * (v0 * sw + u1) + c];
      const p10 = s[4 * (v1 * sw + u0) + c], p11 = s[4 * (v1 * sw + u1) + c];
      o[k + c] = (p00 * (1 - a) + p01 * a) * (1 - b) + (p10 * (1 - a) + p11 * a) * b;
    }
    o[k + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  info.textContent = "yaw " + (((yaw % 360) + 360) % 360).toFixed(0) + "°, pitch " + pitch.toFixed(0) +
    "°, field of view " + hfov.toFixed(0) + "°";
  flat.style.backgroundPosition = (-yaw / 360 * flat.clientHeight * src.width / src.height) + "px 0";
}
function later() { if (!queued) { queued = true; requestAnimationFrame(draw); } }
function start() {
  const c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0); src = g.getImageData(0, 0, c.width, c.height);
  flat.style.backgroundImage = "url(" + img.src + ")"; flat.style.backgroundSize = "auto 100%"; later();
}
if (img.complete) start(); else img.onload = start;
for (const el of [canvas, flat]) {
  el.addEventListener("mousedown", e => { drag = [e.clientX, e.clientY, yaw, pitch]; });
  el.addEventListener("wheel", e => {
    e.preventDefault(); hfov = Math.max(30, Math.min(100, hfov + e.deltaY * 0.05)); later();
  });
}
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", e => {
  if (!drag) return;
  const perPixel = hfov / canvas.width;
  yaw = drag[2] - (e.clientX - drag[0]) * perPixel; pitch = drag[3] + (e.clientY - drag[1]) * perPixel; later();
});
window.addEventListener("keydown", e => {
  if (e.key === "ArrowRight") yaw += P.step; else if (e.key === "ArrowLeft") yaw -= P.step; else return;
  e.preventDefault(); later();
});
document.getElementById("mode").addEventListener("change", e => {
  canvas.style.display = e.target.checked ? "none" : "block"; flat.style.display = e.target.checked ? "block" : "none";
});
</script></body></html>
"""


def jpeg_base64(image, quality: int = 88) -> str:
    """A PIL image, or an (H, W, 3) array (floats in [0, 1] or uint8), as base64 JPEG text."""
    import numpy as np
    from PIL import Image

    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
        image = Image.fromarray(arr)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def viewer_html(image, latitudes: tuple[float, float] = (45.0, -45.0), title: str = "panorama",
                start_yaw: float = 0.0, step_deg: float = 45.0, note: str = "") -> str:
    """The viewer page for a 360° ``image`` whose rows span ``latitudes`` (top, bottom) in degrees."""
    top, bottom = float(latitudes[0]), float(latitudes[1])
    if not -90 <= bottom < top <= 90:
        raise ValueError(f"latitudes={latitudes!r}: give (top, bottom) in degrees, top above bottom, within ±90")
    params = json.dumps({"top": top, "bottom": bottom, "yaw": float(start_yaw), "step": float(step_deg)})
    page = TEMPLATE.replace("__PARAMS__", params).replace("__STEP__", f"{step_deg:g}")
    page = page.replace("__TITLE__", html.escape(title)).replace("__NOTE__", html.escape(note))
    return page.replace("__DATA__", jpeg_base64(image))


def iframe(page: str, width: int = 820, height: int = 520):
    """The page shown inline in a notebook (an iframe holding the page itself: no file server needed)."""
    from IPython.display import HTML

    return HTML(f'<div><iframe srcdoc="{html.escape(page, quote=True)}" width="{width}" height="{height}" '
                f'style="border:0"></iframe></div>')


def save(page: str, path, meta: dict):
    """Write the page atomically with its JSON sidecar (``<name>.json``); returns the path."""
    from pathlib import Path

    from .media import save_file

    return save_file(Path(path), lambda tmp: Path(tmp).write_text(page, encoding="utf-8"), meta)
