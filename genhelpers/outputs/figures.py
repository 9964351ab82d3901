"""The notebooks' teaching figures, drawn with matplotlib: block diagrams (a model's parts and what flows between
them), camera rings seen from above and from the side, and labelled grids (attention patterns, similarity
matrices). Every function takes the numbers to draw as arguments — the notebook reads them from the catalog and
the recorded configs, so a figure cannot drift from the code — and returns a PIL image whose ``info["labels"]``
lists every text drawn (what the tests read)."""
from __future__ import annotations

import math

# fill colours by role: what goes in or comes out, a model that runs frozen, what is trained, the paper's idea
STYLES = {"data": "#eef3fb", "model": "#f1f1f1", "frozen": "#dcdcdc", "trained": "#ffd9a8", "idea": "#c9ecc9",
          "out": "#fff6c2"}


def _figure(width: float, height: float):
    """A matplotlib Figure made without pyplot: pyplot's backend (the notebook's inline one) is left as it was,
    so a chart the notebook draws later with plt.show() still shows."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    ax.set_axis_off()
    return fig, ax


def _image(fig, labels: list[str]):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.08, facecolor="white")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    image.info["labels"] = [str(x) for x in labels if x]
    return image


def flow(rows, links=(), styles=None, title: str = "", note: str = "", col_width: float = 2.3,
         row_height: float = 1.25, unchained=()):
    """A block diagram. ``rows``: rows of boxes from top to bottom; an item is the box's text, or ``(text,
    label)`` where ``label`` is written on the arrow to the next box of the row, or ``None`` for an empty slot.
    Consecutive boxes of a row are joined left to right, except in the rows listed in ``unchained`` (alternatives
    side by side). ``links``: more arrows, ``((row, col), (row, col))``, ``((row, col), (row, col), label)`` or
    ``(…, label, at)`` with the label that share of the way along (0.5). ``styles``: ``{(row, col): role}`` with a
    role of ``STYLES`` ("model" when not given)."""
    styles = styles or {}
    cols = max(len(r) for r in rows)
    fig, ax = _figure(max(4.0, col_width * cols), row_height * len(rows) + (0.5 if title else 0.2)
                           + (0.3 if note else 0))
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(-len(rows) + 0.45, 0.55)
    boxes, labels = {}, [title, note]
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            if item is None:
                continue
            text = item[0] if isinstance(item, tuple) else item
            role = styles.get((r, c), "model")
            boxes[(r, c)] = ax.text(c, -r, text, ha="center", va="center", fontsize=7.5, wrap=False,
                                    bbox=dict(boxstyle="round,pad=0.45", fc=STYLES[role], ec="#555555", lw=0.8))
            labels.append(text)

    def arrow(a, b, label=None, straight=True, at=0.5):
        ta, tb = boxes[a], boxes[b]
        (xa, ya), (xb, yb) = ta.get_position(), tb.get_position()
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya),
                    arrowprops=dict(arrowstyle="-|>", color="#333333", lw=0.9, shrinkA=0, shrinkB=0,
                                    patchA=ta.get_bbox_patch(), patchB=tb.get_bbox_patch(),
                                    connectionstyle="arc3,rad=0" if straight else "arc3,rad=0.15"))
        if label and ya == yb:  # along a row: above the arrow's middle
            ax.text((xa + xb) / 2, ya + 0.2, label, ha="center", va="bottom", fontsize=6.5, color="#1f4e99")
        elif label:  # a link: beside the arrow, the share ``at`` of the way along
            ax.text(xa + at * (xb - xa) + 0.06, ya + at * (yb - ya), label, ha="left", va="center",
                    fontsize=6.5, color="#1f4e99")
        if label:
            labels.append(label)

    for r, row in enumerate(rows):
        if r in unchained:
            continue
        placed = [(c, item) for c, item in enumerate(row) if item is not None]
        for (c1, item), (c2, _) in zip(placed, placed[1:], strict=False):
            arrow((r, c1), (r, c2), item[1] if isinstance(item, tuple) else None)
    for link in links:
        label, at = (link[2] if len(link) > 2 else None), (link[3] if len(link) > 3 else 0.5)
        arrow(link[0], link[1], label, straight=False, at=at)
    if title:
        ax.set_title(title, fontsize=9.5)
    if note:
        fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=7, color="#444444")
    return _image(fig, labels)


def cameras(views, title: str = "", radius_label: str = "", elevation_note: str = ""):
    """Cameras around an object at the origin, seen from above (azimuth) and from the side (elevation).
    ``views``: ``(azimuth°, elevation°, label)``, azimuth counted anticlockwise from the +x axis."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    fig = Figure(figsize=(8.6, 4.0))
    top, side = fig.subplots(1, 2)
    labels = [title, radius_label, elevation_note]
    for ax in (top, side):
        ax.set_aspect("equal")
        ax.set_xlim(-1.45, 1.45)
        ax.set_ylim(-1.45, 1.45)
        ax.plot(0, 0, "s", color="#8a5a2b", ms=9)
        ax.axhline(0, color="#cccccc", lw=0.6)
        ax.axvline(0, color="#cccccc", lw=0.6)
        ax.set_xticks([])
        ax.set_yticks([])
    top.add_patch(Circle((0, 0), 1.0, fill=False, ls=":", color="#888888"))
    side.add_patch(Circle((0, 0), 1.0, fill=False, ls=":", color="#888888"))
    top.set_title("seen from above: azimuth", fontsize=8.5)
    side.set_title("seen from the side: elevation", fontsize=8.5)
    colours = colormaps["viridis"]
    for i, (azimuth, elevation, label) in enumerate(views):
        a, e = math.radians(azimuth), math.radians(elevation)
        colour = colours(i / max(1, len(views) - 1))
        x, y = math.cos(a) * math.cos(e), math.sin(a) * math.cos(e)
        top.annotate("", xy=(0.12 * x, 0.12 * y), xytext=(x, y),
                     arrowprops=dict(arrowstyle="-|>", color=colour, lw=0.8, alpha=0.7))
        top.plot(x, y, "o", color=colour, ms=6)
        top.text(1.22 * x, 1.22 * y, label, ha="center", va="center", fontsize=6.5)
        h, z = math.cos(e), math.sin(e)
        side.plot(h, z, "o", color=colour, ms=6)
        side.plot([0, h], [0, z], color=colour, lw=0.6, alpha=0.6)
        labels.append(label)
    for elevation in sorted({round(v[1], 3) for v in views}):
        e = math.radians(elevation)
        side.text(math.cos(e) + 0.08, math.sin(e), f"{elevation:.3g}°", fontsize=7, va="center")
        labels.append(f"{elevation:.3g}°")
    if title:
        fig.suptitle(title, fontsize=9.5)
    if radius_label:
        top.text(0, -1.38, radius_label, ha="center", fontsize=7, color="#444444")
    if elevation_note:
        side.text(0, -1.38, elevation_note, ha="center", fontsize=7, color="#444444")
    fig.tight_layout()
    return _image(fig, labels)


def grid(values, row_labels, col_labels, title: str = "", xlabel: str = "", ylabel: str = "", annotate=True,
         cmap: str = "Greens", fmt: str = "{:g}"):
    """A matrix as coloured cells (an attention pattern, a similarity matrix), each cell written out when
    ``annotate`` and the matrix is small."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    side = min(7.0, 1.2 + 0.42 * max(rows, cols))
    fig, ax = _figure(side + 1.0, side)
    ax.set_axis_on()
    ax.imshow(values, cmap=cmap, vmin=min(0.0, float(values.min())) if values.size else 0.0)
    col_labels, row_labels = [str(c) for c in col_labels], [str(r) for r in row_labels]
    ax.set_xticks(range(cols) if any(col_labels) else [], col_labels if any(col_labels) else [], fontsize=7)
    ax.set_yticks(range(rows) if any(row_labels) else [], row_labels if any(row_labels) else [], fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    labels = [title, xlabel, ylabel]
    if annotate and rows * cols <= 400:
        top = values.max() if values.size else 1
        for r in range(rows):
            for c in range(cols):
                text = fmt.format(values[r, c])
                ax.text(c, r, text, ha="center", va="center", fontsize=6.5,
                        color="white" if values[r, c] > 0.6 * top else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _image(fig, labels)


def lines(x, series: dict, title: str = "", xlabel: str = "", ylabel: str = "", marks=True, width: float = 4.2,
          height: float = 2.8):
    """Curves over a shared x axis (``series``: ``{label: values}``), each point marked and labelled in the
    legend."""
    fig, ax = _figure(width, height)
    ax.set_axis_on()
    for label, ys in series.items():
        ax.plot(list(x), list(ys), marker="o" if marks else None, ms=3, lw=1.2, label=label)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(series) > 1 or any(series):
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _image(fig, [title, xlabel, ylabel, *series])


def side_by_side(*images, gap: int = 12):
    """Several figures in one picture, left to right, top-aligned (their labels joined)."""
    from PIL import Image

    width = sum(i.width for i in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for i in images:
        out.paste(i.convert("RGB"), (x, 0))
        x += i.width + gap
    out.info["labels"] = [label for i in images for label in i.info.get("labels", [])]
    return out


# ------------------------------------------------------------------------------------------- nb/lessons-b
# A panorama's cameras share one position and look outwards, which `cameras` (a ring looking in at an object) cannot
# show: each view is drawn as the wedge of its field of view, seen from above.
def views_from_one_point(views, fov_deg: float, title: str = "", note: str = ""):
    """Cameras at one point looking outwards, seen from above. ``views``: ``(yaw°, label)``, yaw counted clockwise
    from straight up the page (0 ahead, 90 to the right); each view is the wedge of its horizontal field of view
    ``fov_deg``, with an arrow along its line of sight."""
    from matplotlib import colormaps
    from matplotlib.patches import Wedge

    fig, ax = _figure(4.4, 4.4)
    ax.set_aspect("equal")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    colours = colormaps["viridis"]
    labels = [title, note]
    for i, (yaw, label) in enumerate(views):
        colour = colours(i / max(1, len(views) - 1))
        ax.add_patch(Wedge((0, 0), 1.0, 90 - yaw - fov_deg / 2, 90 - yaw + fov_deg / 2, color=colour, alpha=0.12))
        x, y = math.sin(math.radians(yaw)), math.cos(math.radians(yaw))
        ax.annotate("", xy=(x, y), xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.1))
        ax.text(1.22 * x, 1.22 * y, label, ha="center", va="center", fontsize=7.5)
        labels.append(label)
    ax.plot(0, 0, "o", color="#333333", ms=5)
    if title:
        ax.set_title(title, fontsize=9)
    if note:
        ax.text(0, -1.45, note, ha="center", va="bottom", fontsize=7, color="#444444")
    return _image(fig, labels)
