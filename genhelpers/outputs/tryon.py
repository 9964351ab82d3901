"""Pictures for virtual try-on (the virtual_tryon notebook): a drawn person and garment when none are given, the
masks (a box or an upper-body polygon, or one drawn by the user), the input preparation CatVTON's authors use
(person: centre crop + LANCZOS; garment: fit + white padding; mask: same crop as the person, binarised at 0.5),
their optional repaint step, the measure of what changed outside the mask, and the data-flow figure.

The preparation follows the facts in tests/reference/virtual_tryon/reference_behaviour.json (``inputs``,
``output.repaint_inference_py``), written in our own words. Checks raise ``ParameterError`` before any model
loads. Pictures and arrays only: nothing here knows a model.
"""
from __future__ import annotations

import os

from ..errors import ParameterError

DEMO_SIZE = (384, 512)  # (width, height) of the drawn person: 3:4 like the try-on datasets
MASK_HELPERS = ("upper_body", "box")
# the upper-body helper: torso and upper arms of a person standing in the middle of a 3:4 picture, with a margin
# (CatVTON's app smooths a drawn mask but does not grow it, so the helper brings its own), as (x, y) fractions
UPPER_BODY = ((0.18, 0.22), (0.82, 0.22), (0.88, 0.62), (0.66, 0.64), (0.34, 0.64), (0.12, 0.62))


# ------------------------------------------------------------------------------------------ demo pictures
def demo_person(size=DEMO_SIZE):
    """A drawn person (head, plain shirt, trousers) standing in the middle of a light background."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("RGB", size, (226, 230, 236))
    d = ImageDraw.Draw(im)

    def box(x0, y0, x1, y1):
        return (x0 * w, y0 * h, x1 * w, y1 * h)

    def poly(*points):
        return [(x * w, y * h) for x, y in points]

    skin, shirt, trousers = (224, 182, 150), (96, 120, 104), (52, 58, 84)
    d.rectangle(box(0.37, 0.58, 0.49, 0.94), fill=trousers)  # legs
    d.rectangle(box(0.51, 0.58, 0.63, 0.94), fill=trousers)
    d.rectangle(box(0.35, 0.93, 0.49, 0.96), fill=(40, 34, 30))  # shoes
    d.rectangle(box(0.51, 0.93, 0.65, 0.96), fill=(40, 34, 30))
    d.polygon(poly((0.27, 0.27), (0.21, 0.56), (0.26, 0.57), (0.31, 0.36)), fill=skin)  # arms
    d.polygon(poly((0.73, 0.27), (0.79, 0.56), (0.74, 0.57), (0.69, 0.36)), fill=skin)
    d.rectangle(box(0.46, 0.2, 0.54, 0.27), fill=skin)  # neck
    d.polygon(poly((0.3, 0.25), (0.7, 0.25), (0.76, 0.38), (0.68, 0.4), (0.66, 0.6), (0.34, 0.6), (0.32, 0.4),
                   (0.24, 0.38)), fill=shirt)  # shirt with short sleeves
    d.ellipse(box(0.41, 0.06, 0.59, 0.22), fill=skin)  # head
    d.chord(box(0.4, 0.05, 0.6, 0.17), 180, 360, fill=(70, 48, 36))  # hair
    return im


def demo_garment(size=(384, 384)):
    """A drawn T-shirt, laid flat on white: red with white stripes (square, so the padding shows)."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("RGB", size, (255, 255, 255))
    shape = Image.new("L", size, 0)
    points = [(0.3, 0.12), (0.42, 0.1), (0.5, 0.16), (0.58, 0.1), (0.7, 0.12), (0.92, 0.3), (0.8, 0.42),
              (0.74, 0.36), (0.74, 0.9), (0.26, 0.9), (0.26, 0.36), (0.2, 0.42), (0.08, 0.3)]
    ImageDraw.Draw(shape).polygon([(x * w, y * h) for x, y in points], fill=255)
    stripes = Image.new("RGB", size, (200, 36, 44))
    d = ImageDraw.Draw(stripes)
    for y in range(0, h, max(4, h // 12)):
        d.rectangle((0, y, w, y + max(2, h // 40)), fill=(250, 246, 240))
    im.paste(stripes, (0, 0), shape)
    return im


# ------------------------------------------------------------------------------------------ masks
def box_mask(size, box):
    """A mask (L, 0/255) of ``size`` (width, height) that is white inside ``box`` = (x0, y0, x1, y1) fractions."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("L", size, 0)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(im).rectangle((round(x0 * w), round(y0 * h), round(x1 * w) - 1, round(y1 * h) - 1), fill=255)
    return im


def upper_body_mask(size):
    """A mask (L, 0/255) of the torso and upper arms of a person standing in the middle of the picture."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("L", size, 0)
    ImageDraw.Draw(im).polygon([(x * w, y * h) for x, y in UPPER_BODY], fill=255)
    return im


def open_mask(path):
    """A drawn mask file as L: white (or any colour) marks the region to repaint; a transparent layer counts as
    black (the way a mask painted on a transparent layer is saved)."""
    from .images import flatten_alpha, open_image

    return flatten_alpha(open_image(path, "mask"), (0, 0, 0)).convert("L")


# ------------------------------------------------------------------------------------------ preparation
def crop_box(size, width: int, height: int):
    """The centre crop of a picture of ``size`` that has the aspect ratio width:height (integer maths of the
    authors' resize_and_crop)."""
    w, h = size
    if w / h < width / height:
        nw, nh = w, w * height // width
    else:
        nw, nh = h * width // height, h
    return ((w - nw) // 2, (h - nh) // 2, (w + nw) // 2, (h + nh) // 2)


def fit_person(image, width: int, height: int):
    """Centre-crop to width:height, then LANCZOS to width x height (no stretching)."""
    from PIL import Image

    from .images import flatten_alpha

    image = flatten_alpha(image)
    return image.crop(crop_box(image.size, width, height)).resize((width, height), Image.LANCZOS)


def pad_garment(image, width: int, height: int):
    """LANCZOS-resize to fit inside width x height keeping the aspect ratio, centred on white."""
    from PIL import Image

    from .images import flatten_alpha

    image = flatten_alpha(image)
    w, h = image.size
    if w / h < width / height:
        nw, nh = w * height // h, height
    else:
        nw, nh = width, h * width // w
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(image.resize((nw, nh), Image.LANCZOS), ((width - nw) // 2, (height - nh) // 2))
    return canvas


def prepare_mask(mask, width: int, height: int):
    """The person's crop and resize (LANCZOS, so edges turn grey), then binarised at 0.5: L, 0 or 255."""
    from PIL import Image

    mask = mask.convert("L")
    mask = mask.crop(crop_box(mask.size, width, height)).resize((width, height), Image.LANCZOS)
    return mask.point(lambda v: 255 if v >= 128 else 0)


def make_mask(mask, size, box=None):
    """The mask a parameter names, at the person picture's ``size``: a helper's name or a file path."""
    if mask == "upper_body":
        return upper_body_mask(size)
    if mask == "box":
        return box_mask(size, box)
    return open_mask(mask)


def inputs(person, garment, mask, box, width: int, height: int):
    """(person, garment, mask) ready for the pipeline, each width x height: from files or the drawn demos."""
    from .images import open_image

    who = demo_person() if person is None else open_image(person, "person")
    what = demo_garment() if garment is None else open_image(garment, "garment")
    drawn = make_mask(mask, who.size, box)
    return fit_person(who, width, height), pad_garment(what, width, height), prepare_mask(drawn, width, height)


# ------------------------------------------------------------------------------------------ checks (before loading)
def check_mask_source(name, v):
    """A helper's name ('upper_body', 'box') or a readable image file."""
    if v in MASK_HELPERS:
        return
    if not isinstance(v, (str, os.PathLike)):
        raise ParameterError(name, f"{name}={v!r} must be 'upper_body', 'box' (with mask_box) or the path of a "
                                   f"mask picture (white where the garment goes, black elsewhere)")
    try:
        open_mask(v)
    except ValueError as e:
        raise ParameterError(name, f"{e} — or use a helper: {name}='upper_body' or {name}='box'") from None


def check_box(name, v):
    ok = (isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                              for x in v))
    if not ok or not (0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1):
        raise ParameterError(name, f"{name}={v!r} must be [x0, y0, x1, y1]: fractions of the person picture's "
                                   f"width and height with 0 ≤ x0 < x1 ≤ 1 and 0 ≤ y0 < y1 ≤ 1, e.g. "
                                   f"{name}=[0.2, 0.22, 0.8, 0.64] (the upper body of a centred person)")


def check_mask_fits_person(person, mask):
    """CatVTON's authors assert that the mask and the person picture have the same size (the mask is cropped and
    resized exactly like the person)."""
    if mask in MASK_HELPERS:
        return
    from .images import open_image

    size = DEMO_SIZE if person is None else open_image(person, "person").size
    drawn = open_mask(mask).size
    if drawn != size:
        whose = "the drawn demo person (person=None)" if person is None else f"person={str(person)!r}"
        raise ParameterError("mask", f"mask={str(mask)!r} is {drawn[0]}×{drawn[1]} but {whose} is "
                                     f"{size[0]}×{size[1]}: draw the mask on the person picture itself, at its size "
                                     f"(it is cropped and resized exactly like the person)")


def check_mask_marks_something(person, mask, box, width: int, height: int):
    """After the crop, the resize and the binarisation at 0.5, the mask must mark some pixels and leave some."""
    from .images import open_image

    size = DEMO_SIZE if person is None else open_image(person, "person").size
    marked = prepare_mask(make_mask(mask, size, box), width, height)
    share = sum(marked.histogram()[255:]) / (width * height)
    if share == 0:
        raise ParameterError("mask", f"mask={str(mask)!r} marks no pixel at {width}×{height} after binarising at 0.5: "
                                     f"white (≥ 128) marks where the garment goes; draw a larger region, or use "
                                     f"mask='upper_body'")
    if share == 1:
        raise ParameterError("mask", f"mask={str(mask)!r} marks every pixel at {width}×{height}: the person would be "
                                     f"painted over entirely; mark only where the garment goes (black elsewhere)")


def mask_fits_person(p):
    """params.CROSS: the mask file and the person picture have one size."""
    check_mask_fits_person(p["person"], p["mask"])


def mask_marks_something(p):
    """params.CROSS: the prepared mask marks some pixels and leaves some."""
    check_mask_marks_something(p["person"], p["mask"], p["mask_box"], width=p["width"], height=p["height"])


# ------------------------------------------------------------------------------------------ after generation
def repaint(person, result, mask):
    """The authors' --repaint step: blur the mask (radius height // 50, made odd), then
    person·(1 − m) + result·m, truncated to uint8. Where the blurred mask is 0 the person is kept exactly."""
    import numpy as np
    from PIL import Image, ImageFilter

    radius = result.height // 50
    radius += radius % 2 == 0
    m = np.asarray(mask.convert("L").resize(result.size, Image.NEAREST).filter(ImageFilter.GaussianBlur(radius)),
                   dtype=np.float64)[..., None] / 255
    mixed = np.asarray(person, dtype=np.float64) * (1 - m) + np.asarray(result, dtype=np.float64) * m
    return Image.fromarray(mixed.astype(np.uint8)), m[..., 0] == 0


def change(before, after, mask, where: str = "outside") -> dict:
    """How much a picture changed where the mask is 0 (``where="outside"``) or 255 ("inside"): mean and largest
    |difference| (0–255 scale, the largest of the three colours) and the share of those pixels left exactly."""
    import numpy as np

    keep = (np.asarray(mask.convert("L")) < 128) == (where == "outside")
    diff = np.abs(np.asarray(after, dtype=np.int16) - np.asarray(before, dtype=np.int16)).max(axis=-1)[keep]
    return {"pixels": int(keep.sum()), "mean_abs": round(float(diff.mean()), 2), "max_abs": int(diff.max()),
            "exact_share": round(float((diff == 0).mean()), 4)}


def side_by_side(images, gap: int = 4):
    """Pictures of one height in a row on white, with a small gap (RGB)."""
    from PIL import Image

    images = [im.convert("RGB") for im in images]
    row = Image.new("RGB", (sum(im.width for im in images) + gap * (len(images) - 1), images[0].height),
                    (255, 255, 255))
    x = 0
    for im in images:
        row.paste(im, (x, 0))
        x += im.width + gap
    return row


def concat_figure(person, garment, mask, result):
    """What the UNet sees, in pixels: the person and the garment on one canvas twice as tall (person on top), the
    mask canvas [mask; nothing], and the output's top half. Returns a matplotlib figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    p, g = np.asarray(person), np.asarray(garment)
    m = np.asarray(mask.convert("L")) >= 128
    masked = np.where(m[..., None], 127, p).astype(np.uint8)
    panels = [("noisy latent\n(both halves start as noise)", np.vstack([np.full_like(p, 128)] * 2), None),
              ("mask channel\n[mask; zeros]", np.vstack([m, np.zeros_like(m)]).astype(float), "gray"),
              ("condition channels\n[masked person; garment]", np.vstack([masked, g]), None),
              ("output: the top half\n(decoded)", np.vstack([np.asarray(result), np.full_like(g, 255)]), None)]
    fig, axes = plt.subplots(1, 4, figsize=(9, 4.6))
    rng = np.random.default_rng(0)
    for ax, (title, image, cmap) in zip(axes, panels, strict=True):
        if title.startswith("noisy"):
            image = rng.integers(0, 255, image.shape, dtype=np.uint8)
        ax.imshow(image, cmap=cmap, vmin=0, vmax=1 if cmap else None)
        ax.axhline(p.shape[0] - 0.5, color="tab:orange", lw=2)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("CatVTON: one canvas, person on top, garment below; 9 input channels = noise 4 + mask 1 + "
                 "condition 4 (in latent space, 8× smaller)", fontsize=9)
    fig.tight_layout()
    return fig
