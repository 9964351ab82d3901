"""The weights of MVDiffusion's CAA blocks: the authors' ``pano.ckpt``, read once behind an explicit opt-in.

The authors released one PyTorch-Lightning checkpoint for panoramas, ``pano.ckpt``, on Dropbox (linked from
their README's Model Zoo; not on the Hugging Face hub). It is a pickle in torch's zip container, ~5–6 GB (est.:
it also holds a copy of SD 2 base's UNet, VAE and text encoder, perhaps the optimizer state), and no size or
SHA-256 is published anywhere we looked (tests/reference/mvdiffusion, ``checkpoint``). A pickle can run code when
it is loaded, so reading it needs ``allow_pickle=True``, refused before anything is downloaded. Then:

1. the file is hashed (SHA-256, recorded in ``conversion.json`` and every sidecar) and, when a digest is pinned
   in ``CHECKPOINT["sha256"]`` (data: none is published yet), compared with it — a mismatch stops here;
2. it is read with torch's weights-only reader (``weights_only=True``, memory-mapped): only tensors and plain
   containers are built; any other class or function the file names (a Lightning container, say) is replaced by
   an inert stand-in, an empty ordered dict that takes what the file stores in it — no code of the file runs;
3. the 9 × 14 tensors under ``mv_base_model.cp_blocks_*`` are kept (the UNet, VAE and text-encoder copies are
   dropped: they are SD 2 base's own, and their old names would not load in today's libraries anyway); they must
   fill ``MVDiffusionCAA`` exactly (strict load: names and shapes), and the stored frequency buffers must equal
   the ones the code computes;
4. they are written once, in float32, as ``diffusion_pytorch_model.safetensors`` + ``config.json`` in the cache;
   every later run reads that folder, without the opt-in; the downloaded pickle is deleted.

Without a pinned digest, what this proves is: the file is a torch checkpoint in the recorded Lightning layout
with exactly the CAA tensors the authors' code defines, read without running code. It does not prove that the
file is the one the authors uploaded. ``base_fingerprint`` records a few tensors of the checkpoint's own UNet
so a notebook can check, after loading, that the mirror's UNet is the base the blocks were trained with.

Sources (``caa_weights``): ``"dropbox"`` (an attached Kaggle input first: a folder already converted, or a
``pano.ckpt``; else the download), a path to a ``.ckpt``, a folder holding a converted copy or ``pano.ckpt``,
``"tiny:mvdiffusion"`` (the twin: a small fake ``pano.ckpt`` in the same Lightning layout), or None (CAA off).
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..errors import ParameterError
from ..platform.download import https_download
from ..platform.folders import sha256

CHECKPOINT = {  # the released file; "sha256": None because no digest is published (pin one here when it is)
    "file": "pano.ckpt",
    "url": "https://www.dropbox.com/scl/fi/yx9e0lj4fwtm9xh2wlhhg/pano.ckpt?rlkey=kowqygw7vt64r3maijk8klfl0&dl=1",
    "page": "https://github.com/Tangshitao/MVDiffusion#model-zoo",
    "sha256": None,
}
VIEWS, FOV_DEG, SIZE = 8, 90.0, 512  # what the released weights were trained on (45° steps, pitch 0)
TWIN = "tiny:mvdiffusion"
PREFIX = "mv_base_model."
CAA_KEYS = ("cp_blocks_encoder.", "cp_blocks_mid.", "cp_blocks_decoder.")
FULL_SIZE = {"encoder_widths": [320, 640, 1280, 1280], "mid_width": 1280, "decoder_widths": [1280, 1280, 640, 320]}
PARAMETERS = 147_572_480  # at FULL_SIZE (the authors' modules counted on the meta device)
FINGERPRINT = ("conv_in.weight", "mid_block.attentions.0.proj_in.weight", "conv_out.weight")
SOURCES = "'dropbox', a path to pano.ckpt, a folder (converted, or holding pano.ckpt), 'tiny:mvdiffusion' or None"


def cache_dir() -> Path:
    from ..platform.folders import cache_dir as root

    return root() / "mvdiffusion"


def _is_converted(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "diffusion_pytorch_model.safetensors").is_file()


def _twin_file() -> Path:
    from ..hub.weights import twin_folder

    return twin_folder(TWIN.removeprefix("tiny:")) / CHECKPOINT["file"]


def _attached() -> Path | None:
    """A Kaggle input holding the converted blocks (no pickle at all), else one holding the authors' pano.ckpt."""
    from ..platform.folders import find_in_inputs

    for config in find_in_inputs("config.json"):
        if '"MVDiffusionCAA"' in config.read_text(errors="ignore") and _is_converted(config.parent):
            return config.parent
    found = find_in_inputs(CHECKPOINT["file"])
    return found[0] if found else None


def locate(source) -> tuple[str, Path | None]:
    """(kind, path) of a source: kind is 'none', 'converted' (a folder to read), 'pickle' (a file to convert)
    or 'download'. Raises ParameterError (naming ``caa_weights``) when the source cannot be read."""
    if source is None:
        return "none", None
    if source == TWIN:
        return "pickle", None  # built on first use
    if source == "dropbox":
        found = _attached()
        return ("converted" if found.is_dir() else "pickle", found) if found else ("download", None)
    if not isinstance(source, str) or not source.strip():
        raise ParameterError("caa_weights", f"caa_weights={source!r} must be one of {SOURCES}")
    path = Path(source).expanduser()
    if path.is_dir() and _is_converted(path):
        return "converted", path
    if path.is_dir() and (path / CHECKPOINT["file"]).is_file():
        return "pickle", path / CHECKPOINT["file"]
    if path.is_file():
        return "pickle", path
    if _is_converted(converted_dir(source)):  # converted earlier, the pickle deleted since (it is large)
        return "converted", converted_dir(source)
    raise ParameterError("caa_weights", f"caa_weights={source!r}: no such file, nor a folder holding "
                                        f"{CHECKPOINT['file']} or a converted copy (config.json + diffusion_"
                                        f"pytorch_model.safetensors). Use one of {SOURCES}")


def converted_dir(source: str, path: Path | None = None) -> Path:
    """Where the converted blocks of ``source`` live in the cache (one folder per source)."""
    if source == TWIN:
        return cache_dir() / "converted" / f"tiny-{_twin_file().parent.name}"
    key = "dropbox" if source == "dropbox" and path is None else str(Path(path or source).expanduser().resolve())
    return cache_dir() / "converted" / (key if key == "dropbox" else hashlib.sha1(key.encode()).hexdigest()[:12])


def pickle_message(out) -> str:
    return (f"MVDiffusion's released weights are one PyTorch-Lightning checkpoint, {CHECKPOINT['file']} (a pickle, "
            f"~5–6 GB, on Dropbox: {CHECKPOINT['page']}), not on the Hugging Face hub. A pickle can run code when "
            f"it is loaded, so genhelpers reads one only when you opt in: set allow_pickle=True if you trust the "
            f"source. It is then read with torch's weights-only reader (no code of the file runs); its 9 CAA blocks "
            f"are kept and written once to .safetensors ({out}), which later runs read without the opt-in. No "
            f"SHA-256 of the file is published: genhelpers records the one it computes but cannot prove the file "
            f"is the authors'. Or set caa_weights=None to run without the CAA blocks (plain SD 2 views)")


def check(source, allow_pickle: bool) -> None:
    """Before anything loads (and without importing torch): the source exists, and a pickle that still needs
    converting has the opt-in. The twin always asks for it here (finding its converted copy would build it)."""
    kind, path = locate(source)
    if kind in ("pickle", "download") and not allow_pickle:
        out = cache_dir() / "converted" if source == TWIN else converted_dir(
            source, path if source == "dropbox" else None)
        if source == TWIN or not _is_converted(out):
            raise ParameterError("allow_pickle", pickle_message(out))


def resolve(source, allow_pickle: bool = False) -> Path | None:
    """The folder of the converted CAA blocks for ``source`` (converting once if needed), or None (CAA off)."""
    kind, path = locate(source)
    if kind == "none":
        return None
    if kind == "converted":
        return path
    out = converted_dir(source, path if source == "dropbox" else None)
    if _is_converted(out):
        return out
    if not allow_pickle:
        raise ParameterError("allow_pickle", pickle_message(out))
    with tempfile.TemporaryDirectory(prefix="mvdiffusion-") as tmp:  # /tmp: never the notebook's output folder
        if kind == "download":
            path = Path(tmp) / CHECKPOINT["file"]
            digest = download(CHECKPOINT["url"], path)
        else:
            path = _twin_file() if source == TWIN else path
            digest = sha256(path)
        convert(path, out, digest, source=str(source))
    return out


def download(url: str, target: Path) -> str:
    """Fetch the checkpoint over https (platform.download: redirects too, hashed on the way, nothing half-written
    left); returns the SHA-256. A page instead of a checkpoint (Dropbox answers HTML when a link is gone) is
    refused and removed."""
    try:
        digest = https_download(url, target)
    except OSError as e:
        raise RuntimeError(f"could not download {CHECKPOINT['file']} ({type(e).__name__}: {e}). On Kaggle turn the "
                           f"internet on, or attach the file as a dataset (a folder holding {CHECKPOINT['file']}); "
                           f"caa_weights=None runs the rest of the notebook without the CAA blocks") from e
    with open(target, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if not is_zip:
        target.unlink()
        raise RuntimeError(f"{url} did not return a torch checkpoint (an HTML page? the link may be gone): "
                           f"see {CHECKPOINT['page']} for the current link, or attach {CHECKPOINT['file']}")
    return digest


def _stand_in(name: str):
    """An inert replacement for a class or function the checkpoint names that torch's weights-only reader does
    not know: calling it (or building it) gives an empty OrderedDict that takes whatever the file stores in it."""
    return type("StandIn", (), {"__new__": lambda cls, *a, **k: collections.OrderedDict(), "__qualname__": name})


def read_checkpoint(path: Path) -> tuple[dict, list[str]]:
    """The checkpoint as torch's weights-only reader builds it (memory-mapped), and the names of the globals
    that were replaced by inert stand-ins."""
    import torch

    try:
        unknown = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except ValueError:  # not torch's zip format: the weights-only reader alone decides
        unknown = []
    with torch.serialization.safe_globals([(_stand_in(n), n) for n in unknown]):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            raise ValueError(f"{path.name}: torch's weights-only reader could not read it ({e}). genhelpers never "
                             f"unpickles it fully. On a machine you trust, save the tensors under "
                             f"{PREFIX}cp_blocks_* with safetensors and point caa_weights at that folder") from None
    return data, unknown


def base_fingerprint(unet_state: dict) -> dict:
    """A few tensors of a UNet, summarised (sum and sum of absolute values, float64): enough to tell SD 2 base
    from 2.1 base, or any other UNet."""
    out = {}
    for name in FINGERPRINT:
        if name in unet_state:
            t = unet_state[name].double()
            out[name] = [float(t.sum()), float(t.abs().sum())]
    return out


def same_base(unet, fingerprint: dict, rtol: float = 1e-3) -> dict:
    """Does ``unet`` (the loaded base) hold the UNet the checkpoint was trained on? {tensor: relative
    difference of |sum|}; float16 weights differ from the checkpoint's float32 by ~1e-4 relative."""
    state = unet.state_dict()
    mine = base_fingerprint({k: state[k].detach().cpu() for k in fingerprint if k in state})
    diffs = {k: abs(mine[k][1] - v[1]) / max(abs(v[1]), 1e-12) for k, v in fingerprint.items() if k in mine}
    return {"relative_difference": diffs, "same": bool(diffs) and all(d < rtol for d in diffs.values())}


def convert(path: Path, out: Path, digest: str, source: str) -> None:
    """pano.ckpt → ``out``/{config.json, diffusion_pytorch_model.safetensors, conversion.json}, atomically."""
    import torch

    from ..outputs.media import atomic_dir
    from .mvdiffusion_caa import MVDiffusionCAA, frequencies

    if CHECKPOINT["sha256"] and digest != CHECKPOINT["sha256"] and source != TWIN:
        raise ValueError(f"{path.name} has SHA-256 {digest}, not the pinned {CHECKPOINT['sha256']}: refused")
    data, stand_ins = read_checkpoint(path)
    state = data.get("state_dict", data) if isinstance(data, dict) else {}
    caa = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX) and k[len(PREFIX):].startswith(
        CAA_KEYS)}
    if not caa:
        seen = ", ".join(list(state)[:5]) or "nothing"
        raise ValueError(f"{path.name} holds no {PREFIX}cp_blocks_* tensors (first keys: {seen}): not the "
                         f"panorama checkpoint of MVDiffusion")
    if not all(isinstance(v, torch.Tensor) for v in caa.values()):
        raise ValueError(f"{path.name}: some CAA entries are not tensors (a format this reader does not know)")

    def width(block):
        return int(caa[f"{block}.transformer.norm1.weight"].shape[0])

    encoders = sorted({int(k.split(".")[1]) for k in caa if k.startswith("cp_blocks_encoder.")})
    decoders = sorted({int(k.split(".")[1]) for k in caa if k.startswith("cp_blocks_decoder.")})
    config = {"encoder_widths": [width(f"cp_blocks_encoder.{i}") for i in encoders],
              "mid_width": width("cp_blocks_mid"),
              "decoder_widths": [width(f"cp_blocks_decoder.{i}") for i in decoders]}
    model = MVDiffusionCAA(**config)
    model.load_state_dict({k: v.float() for k, v in caa.items()}, strict=True)  # names and shapes, exactly
    for name, buf in model.named_buffers():
        if not torch.allclose(buf.flatten(), frequencies(4 * buf.numel()), rtol=1e-6):
            raise ValueError(f"{path.name}: {name} differs from the frequencies the CAA code defines")
    unet = {k[len(PREFIX) + 5:]: v for k, v in state.items() if k.startswith(PREFIX + "unet.")}
    params = sum(p.numel() for p in model.parameters())
    record = {
        "source": source, "file": path.name, "bytes": os.path.getsize(path), "sha256": digest,
        "sha256_pinned": CHECKPOINT["sha256"], "url": CHECKPOINT["url"] if source == "dropbox" else None,
        "read_with": "torch.load(weights_only=True, mmap=True)", "stand_ins": stand_ins,
        "top_level_keys": sorted(data) if isinstance(data, dict) else [],
        "lightning": {k: data[k] for k in ("epoch", "global_step", "pytorch-lightning_version")
                      if isinstance(data, dict) and isinstance(data.get(k), (int, str))},
        "kept_tensors": len(caa), "parameters": params, "config": config,
        "dropped": {p: sum(k.startswith(p) for k in state) for p in (PREFIX + "unet.", "vae.", "text_encoder.")},
        "base_fingerprint": base_fingerprint(unet),
        "checked": ["the opt-in (allow_pickle=True)", "read with torch's weights-only reader",
                    "exactly the CAA tensors of MVDiffusionCAA (names and shapes, strict)",
                    "the stored frequency buffers equal the computed ones",
                    *(["the SHA-256 equals the pinned one"] if CHECKPOINT["sha256"] else [])],
        "not_checked": [] if CHECKPOINT["sha256"] else ["that the file is the one the authors uploaded (no SHA-256 "
                                                        "is published; compare 'sha256' with others' records)"],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out) as work:
        model.save_pretrained(work, safe_serialization=True)
        (work / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"converted {path.name} once to {out}: {len(caa)} tensors, {params:,} parameters, SHA-256 {digest[:16]}…"
          + (f" (stand-ins for {', '.join(stand_ins)})" if stand_ins else ""))


def conversion(folder: Path) -> dict:
    """What was recorded when ``folder`` was converted ({} for a folder converted elsewhere)."""
    f = Path(folder) / "conversion.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def load_caa(source, allow_pickle: bool = False, device: str = "cpu"):
    """The CAA blocks from ``source`` in float32 (converting once if needed), or None for ``source=None``."""
    from .mvdiffusion_caa import MVDiffusionCAA

    folder = resolve(source, allow_pickle)
    if folder is None:
        return None
    caa = MVDiffusionCAA.from_pretrained(folder).to(device).eval()
    record = conversion(folder)
    caa.genhelpers_info = {"ref": str(source), "path": str(folder), "sha256": record.get("sha256"),
                           "parameters": sum(p.numel() for p in caa.parameters()), "dtype": "float32"}
    return caa
