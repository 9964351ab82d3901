"""Input images: read one a person gives (with an error that says what is wrong), or draw a demo picture so a
notebook runs with no file at all."""
from __future__ import annotations

import math
import os
from pathlib import Path


def flatten_alpha(image, background=(255, 255, 255)):
    """An RGB picture: a cut-out (RGBA, LA, or a palette with transparency) composited onto ``background``, so
    a model sees that colour where the picture is transparent, not whatever colour is stored there."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)
    return image.convert("RGB")


def demo_image(size: int = 256):
    """A glossy red ball on a grey floor, lit from the upper left, on white: one object, centred, the kind of
    input image-to-3D and image-to-video models expect."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.ones((size, size, 3))
    shadow = ((xx - 0.55) / 0.32) ** 2 + ((yy - 0.8) / 0.06) ** 2 < 1
    img[shadow] = 0.78
    cx, cy, r = 0.5, 0.48, 0.3
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
    inside = d2 < 1
    nz = np.sqrt(np.clip(1 - d2, 0, 1))
    nx, ny = (xx - cx) / r, (yy - cy) / r
    light = np.array([-0.5, -0.6, 0.62]) / np.linalg.norm([-0.5, -0.6, 0.62])
    diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1)
    spec = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1) ** 40
    ball = np.stack([0.15 + 0.8 * diffuse, 0.05 + 0.12 * diffuse, 0.05 + 0.1 * diffuse], -1) + spec[..., None] * 0.9
    img[inside] = np.clip(ball[inside], 0, 1)
    return Image.fromarray((img * 255).round().astype("uint8"))


def key_frames(kind: str, count: int, size: int = 256) -> list:
    """Key frames for SparseCtrl when none are given: a ball travelling left to right across the clip, as RGB
    pictures (kind "rgb") or as white line drawings on black (kind "scribble", what scribble models read)."""
    from PIL import Image, ImageDraw

    frames = []
    for i in range(count):
        t = i / max(count - 1, 1)
        cx, cy, r = size * (0.25 + 0.5 * t), size * (0.55 - 0.15 * (1 - (2 * t - 1) ** 2)), size * 0.16
        box = (cx - r, cy - r, cx + r, cy + r)
        if kind == "scribble":
            im = Image.new("RGB", (size, size), (0, 0, 0))
            d = ImageDraw.Draw(im)
            d.ellipse(box, outline=(255, 255, 255), width=max(2, size // 64))
            d.line((0, size * 0.8, size, size * 0.8), fill=(255, 255, 255), width=max(2, size // 64))
        else:
            ball = demo_image(size)
            im = Image.new("RGB", (size, size), (255, 255, 255))
            im.paste(ball.crop((0, 0, size, size)), (int(cx - size / 2), int(cy - size * 0.48)))
        frames.append(im)
    return frames


def shapes(size: int = 224) -> dict:
    """Three simple pictures CLIP should tell apart: {caption: image}."""
    from PIL import Image, ImageDraw

    out = {}
    for caption, color, kind in [("a red circle", (220, 30, 30), "circle"), ("a blue square", (30, 60, 220), "square"),
                                 ("a green triangle", (30, 170, 60), "triangle")]:
        im = Image.new("RGB", (size, size), (255, 255, 255))
        d = ImageDraw.Draw(im)
        a, b = size * 0.2, size * 0.8
        if kind == "circle":
            d.ellipse((a, a, b, b), fill=color)
        elif kind == "square":
            d.rectangle((a, a, b, b), fill=color)
        else:
            d.polygon([(size / 2, a), (b, b), (a, b)], fill=color)
        out[caption] = im
    return out


def open_image(path: str | os.PathLike, name: str = "image"):
    """Open an image file as RGB, or raise ValueError naming the parameter and what went wrong."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"{name}={str(path)!r}: no such file; give the path of a PNG or JPEG image "
                         f"(or None for the built-in demo picture)")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB") if im.mode != "RGBA" else im.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{name}={str(path)!r} could not be read as an image ({type(e).__name__}); "
                         f"give a PNG or JPEG file") from None


def fit(image, width: int, height: int):
    """Centre-crop ``image`` to the aspect ratio of width x height, then resize: no stretching."""
    from PIL import ImageOps

    return ImageOps.fit(image, (width, height), method=3, centering=(0.5, 0.5))


def load_image(path: str | os.PathLike | None, name: str = "image", size=None):
    """The image at ``path``, or the demo picture when ``path`` is None; fitted to ``size`` (width, height)
    by centre-cropping and resizing when given."""
    image = demo_image(256) if path is None else open_image(path, name)
    return fit(image, *size) if size else image


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio of two lists of pictures or frames (PIL; ``b`` resized to ``a``'s size), in dB."""
    import numpy as np

    x = np.stack([np.asarray(f, dtype=np.float64) for f in a])
    y = np.stack([np.asarray(f.resize(a[0].size), dtype=np.float64) for f in b])
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
