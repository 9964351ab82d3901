"""A style picture drawn by genhelpers, so a style-transfer notebook runs with no file at all.

It is made to show what a style adapter copies: it has a *style* (flat poster colours in bands, thick black
outlines, white wave strokes) and a *content* of its own (a sun setting over the sea). A prompt about something
else shows the difference: a layer that takes the picture's layout brings the sun and the sea along, a layer that
takes only its style should not."""
from __future__ import annotations

import math

SKY = [(58, 28, 92), (104, 38, 120), (168, 52, 118), (222, 84, 96), (246, 140, 70)]  # top to horizon
SEA = (18, 110, 128)
SUN = [(255, 214, 64), (252, 170, 40)]  # alternate rings, outside in
INK = (20, 16, 24)


def poster(size: int = 512):
    """A flat poster of a sun over the sea, ``size`` × ``size`` RGB."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), SKY[0])
    d = ImageDraw.Draw(im)
    horizon = int(size * 0.62)
    band = horizon / len(SKY)
    for i, colour in enumerate(SKY):
        d.rectangle((0, round(i * band), size, round((i + 1) * band)), fill=colour)
    cx, cy, r = size * 0.5, horizon, size * 0.24
    for k in range(6):  # concentric rings, the lower half hidden by the sea
        rk = r * (1 - k / 6)
        d.ellipse((cx - rk, cy - rk, cx + rk, cy + rk), fill=SUN[k % 2], outline=INK, width=max(2, size // 96))
    d.rectangle((0, horizon, size, size), fill=SEA)
    d.line((0, horizon, size, horizon), fill=INK, width=max(3, size // 64))
    stroke = max(2, size // 128)
    for row in range(5):  # white wave strokes, wider apart towards the viewer
        y0 = horizon + (size - horizon) * (0.12 + 0.19 * row)
        amp, wave = size * (0.008 + 0.006 * row), size * (0.10 + 0.04 * row)
        for start in range(-1, int(size / wave) + 1):
            x0 = start * wave + (row % 2) * wave / 2
            pts = [(x0 + t * wave * 0.6, y0 + amp * math.sin(t * math.pi * 2)) for t in [i / 12 for i in range(13)]]
            d.line(pts, fill=(236, 244, 240), width=stroke)
    d.rectangle((0, 0, size - 1, size - 1), outline=INK, width=max(4, size // 48))
    return im
