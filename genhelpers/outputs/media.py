"""Save what a notebook made, with a JSON sidecar per file, and show it inline.

Every write is atomic: the bytes go to a hidden temporary file in the same folder, which is renamed into place
only when complete, so an error never leaves a half-written image or sidecar behind.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PACKAGES = ("torch", "diffusers", "transformers", "huggingface-hub", "accelerate", "genhelpers")


def _file_mode() -> int:
    """The mode a plain open() would give a new file: temporary files are created 0600, outputs should not be."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _publish(tmp: Path, target: Path) -> None:
    os.chmod(tmp, _file_mode())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder next to ``path``; on success rename it to ``path`` (which must not exist, or be
    an empty folder), on error delete it: the folder appears complete or not at all."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield work
        if path.is_dir():
            path.rmdir()  # only an empty one: rmdir refuses anything else
        work.rename(path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(Path(tmp), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return Path(path)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from ..platform.runtime import python_version

    out = {"python": python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def figure_image(fig, dpi: int = 110):
    """A matplotlib figure as a PIL image (to save it with a sidecar like any picture)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def gpu_peak_gib(reset: bool = True) -> float | None:
    """The largest GPU memory torch allocated since the last reset, over all GPUs, in GiB (None without a GPU);
    resets the counters so the next step of a job (a stage of a cascade) is measured alone."""
    import torch

    if not torch.cuda.is_available():
        return None
    peak = max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
    if reset:
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)
    return round(peak / 2**30, 2)


def peak_memory() -> dict:
    """Peak resident memory of this process and peak GPU memory allocated by torch, in MiB."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"host_peak_mib": round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024))}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu_peak_mib"] = [round(torch.cuda.max_memory_allocated(i) / 2**20)
                                   for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return out


def _png_writer(image, meta: dict) -> Callable[[Path], None]:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", json.dumps(meta.get("parameters", {}), default=str))
    return lambda tmp: image.save(tmp, format="PNG", pnginfo=info)


def save_group(items: list[tuple[Path, Callable[[Path], None], dict]]) -> list[Path]:
    """Write several outputs as one unit: every file and its sidecar ``<name>.json`` goes to a temporary name
    first; only when all are complete are they renamed into place. An error leaves none of them behind."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, writer, meta in items:
            path.parent.mkdir(parents=True, exist_ok=True)
            for target in (path, path.with_suffix(".json")):
                fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
                os.close(fd)
                temps.append((Path(tmp), target))
            writer(temps[-2][0])
            temps[-1][0].write_text(json.dumps({**meta, "file": path.name}, indent=2, default=str) + "\n",
                                    encoding="utf-8")
        for tmp, target in temps:
            _publish(tmp, target)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    return [path for path, _, _ in items]


def save_file(path: Path, writer: Callable[[Path], None], meta: dict) -> Path:
    """One output and its sidecar, atomically (see save_group)."""
    return save_group([(path, writer, meta)])[0]


def save_images(images: Iterable, output_dir, stem: str, meta: dict, seeds: list[int] | None = None,
                grid: bool | int = True) -> list[Path]:
    """Save PIL images as ``<stem>_000.png`` … (+ sidecars), and a ``<stem>_grid.png`` when there are several
    (``grid`` may give its number of columns; True: up to 4). Returns the paths written, grid last."""
    images = list(images)
    output_dir = Path(output_dir)
    items = []
    for i, image in enumerate(images):
        m = {**meta, "index": i, "width": image.width, "height": image.height}
        if seeds is not None:
            m["seed"] = seeds[i]
        items.append((output_dir / f"{stem}_{i:03d}.png", _png_writer(image, m), m))
    if grid and len(images) > 1:
        sheet = image_grid(images, cols=4 if grid is True else int(grid))
        m = {**meta, "grid": {"of": [p.name for p, _, _ in items]}, "width": sheet.width, "height": sheet.height}
        items.append((output_dir / f"{stem}_grid.png", _png_writer(sheet, m), m))
    return save_group(items)


def image_grid(images: list, cols: int = 4):
    """Images side by side, ``cols`` per row, the last row padded with black."""
    from diffusers.utils import make_image_grid

    cols = min(len(images), cols)
    rows = -(-len(images) // cols)
    blank = images[0].copy()
    blank.paste((0, 0, 0), (0, 0, *blank.size))
    return make_image_grid(list(images) + [blank] * (rows * cols - len(images)), rows, cols)


def to_pil(frames) -> list:
    """PIL images from PIL images, or from float arrays/tensors in [0, 1] shaped (N, H, W, 3)."""
    from PIL import Image

    if isinstance(frames, (list, tuple)) and frames and isinstance(frames[0], Image.Image):
        return list(frames)
    import numpy as np

    arr = np.asarray(frames.cpu() if hasattr(frames, "cpu") else frames, dtype=np.float32)
    return [Image.fromarray((np.clip(f, 0, 1) * 255).round().astype("uint8")) for f in arr]


def gif_frame_ms(fps: float) -> int:
    """GIF stores delays in 1/100 s, and browsers slow anything under 20 ms down: the delay a GIF can hold."""
    return max(20, 10 * round(100 / fps))


def save_video(frames, output_dir, stem: str, meta: dict, fps: float, strip_frames: int = 8) -> list[Path]:
    """A clip as MP4 (H.264 via imageio-ffmpeg), GIF, and a PNG strip of evenly spaced frames for a quick look,
    each with its sidecar; all or nothing. Returns [mp4, gif, strip]."""
    import imageio.v2 as imageio
    import numpy as np

    frames = to_pil(frames)
    output_dir = Path(output_dir)
    w, h = frames[0].size
    clip = {"frames": len(frames), "fps": fps, "width": w, "height": h, "duration_s": round(len(frames) / fps, 3)}
    arrays = [np.asarray(f.convert("RGB")) for f in frames]
    # Pillow stores a frame identical to the previous one as a longer display of that frame (same playback)
    repeats = sum(np.array_equal(a, b) for a, b in zip(arrays, arrays[1:], strict=False))

    def mp4(tmp):
        imageio.mimwrite(tmp, arrays, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=8,
                         quality=8, pixelformat="yuv420p")

    gif_ms = gif_frame_ms(fps)

    def gif(tmp):
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=gif_ms, loop=0)

    count = min(strip_frames, len(frames))
    picks = sorted({round(i * (len(frames) - 1) / max(count - 1, 1)) for i in range(count)})
    strip = image_grid([frames[i] for i in picks], cols=len(picks))
    m = {**meta, "clip": clip}
    return save_group([
        (output_dir / f"{stem}.mp4", mp4, m),
        (output_dir / f"{stem}.gif", gif, {**m, "gif_frames": len(frames) - repeats, "gif_frame_ms": gif_ms}),
        (output_dir / f"{stem}_strip.png", lambda tmp: strip.save(tmp, format="PNG"), {**m, "strip_frames": picks}),
    ])


def gif_preview(frames, fps: float = 8):
    """An animated GIF held in memory, for showing a clip inline (e.g. in a panel) without writing a file."""
    import io

    from IPython.display import Image

    frames = to_pil(frames)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=gif_frame_ms(fps), loop=0)
    return Image(data=buf.getvalue(), format="gif")


def to_trimesh(mesh):
    """A trimesh.Trimesh from diffusers' MeshDecoderOutput (verts, faces, vertex_channels R/G/B in [0, 1])."""
    import numpy as np
    import trimesh

    verts = mesh.verts.detach().cpu().numpy()
    faces = mesh.faces.detach().cpu().numpy()
    channels = getattr(mesh, "vertex_channels", None) or {}
    colors = None
    if all(c in channels for c in "RGB"):
        rgb = np.stack([channels[c].detach().cpu().float().numpy() for c in "RGB"], axis=1)
        colors = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    return trimesh.Trimesh(verts, faces, vertex_colors=colors, process=False)


def mesh_facts(tm) -> dict:
    facts = {"vertices": int(len(tm.vertices)), "faces": int(len(tm.faces)),
             "bounds": [[round(float(x), 4) for x in row] for row in tm.bounds],
             "watertight": bool(tm.is_watertight)}
    if tm.is_watertight:
        facts["volume"] = round(float(tm.volume), 4)
    return facts


def mesh_preview(tm, size: int = 512, elevation: float = 25.0, azimuth: float = 35.0, background=(255, 255, 255)):
    """Draw a mesh with no GPU or display: rotate, project orthographically, paint faces far to near with
    their vertex colour shaded by how squarely they face the viewer. Drawn at 2x and downsampled."""
    import numpy as np
    from PIL import Image, ImageDraw

    v = np.asarray(tm.vertices, dtype=np.float64)
    v = v - (v.max(0) + v.min(0)) / 2
    v = v / (np.abs(v).max() or 1.0)
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    p = v[:, [0, 2, 1]] @ turn.T @ tilt.T  # meshes are z-up; the view is y-up
    tri = p[tm.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    shade = 0.3 + 0.7 * np.abs(normal[:, 2])
    colors = tm.visual.vertex_colors[:, :3].astype(np.float64) if tm.visual.kind == "vertex" else None
    base = colors[tm.faces].mean(1) if colors is not None else np.full((len(tm.faces), 3), 180.0)
    fill = np.clip(base * shade[:, None], 0, 255).astype(int)
    big = size * 2
    xy = (tri[:, :, :2] * np.array([1, -1]) * 0.45 + 0.5) * big
    img = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(img)
    for i in np.argsort(tri[:, :, 2].mean(1)):  # far (small z) first
        draw.polygon([tuple(pt) for pt in xy[i]], fill=tuple(fill[i]))
    return img.resize((size, size), Image.LANCZOS)


def save_mesh(mesh, output_dir, stem: str, meta: dict, formats=("ply", "obj", "glb")) -> list[Path]:
    """A mesh as PLY, OBJ and GLB (vertex colours kept) plus a preview PNG, with the mesh facts in every
    sidecar; all or nothing. ``mesh`` is a trimesh.Trimesh or diffusers' MeshDecoderOutput."""
    import trimesh

    tm = mesh if isinstance(mesh, trimesh.Trimesh) else to_trimesh(mesh)
    output_dir = Path(output_dir)
    m = {**meta, "mesh": mesh_facts(tm)}
    items = [(output_dir / f"{stem}.{fmt}", lambda tmp, fmt=fmt: tm.export(tmp, file_type=fmt), m) for fmt in formats]
    preview = mesh_preview(tm)
    items.append((output_dir / f"{stem}_preview.png", lambda tmp: preview.save(tmp, format="PNG"), m))
    return save_group(items)


def record(notebook: str, params: dict, runtime=None, pipe=None, timings: dict | None = None) -> dict:
    """The metadata every sidecar carries."""
    return {
        "notebook": notebook,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "versions": versions(),
        "runtime": runtime.as_dict() if runtime is not None else None,
        "models": [getattr(p, "genhelpers_info", None) for p in (pipe if isinstance(pipe, (list, tuple)) else [pipe])
                   if p is not None],
        "timings": dict(timings or {}),
        "memory": peak_memory(),
    }


def displayable(paths) -> list[Path]:
    """What a person wants to see of a set of outputs: the grid (or else the images), animated GIFs and mesh
    previews; not sidecars, strips, MP4s or mesh files."""
    paths = [Path(p) for p in paths]
    previews = [p for p in paths if p.stem.endswith("_preview")]
    stills = [p for p in paths if p.suffix == ".png" and p not in previews and not p.stem.endswith("_strip")]
    grids = [p for p in stills if p.stem.endswith("_grid")]
    return (grids or stills) + [p for p in paths if p.suffix == ".gif"] + previews


def show(paths: Iterable, width: int = 512) -> None:
    """Display outputs inline in a notebook (see ``displayable``); print their paths elsewhere."""
    shown = displayable(paths)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display

        if get_ipython() is None:
            raise ImportError
    except ImportError:
        for p in shown:
            print(p)
        return
    for p in shown:
        display(Image(filename=str(p), width=width))
