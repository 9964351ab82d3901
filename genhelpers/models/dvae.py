"""DALL·E's discrete VAE (dVAE): a picture as a 32×32 grid of tokens from an 8192-word visual vocabulary.

OpenAI released the dVAE (not the transformer that writes the tokens from text) as the ``DALL-E`` package on the
package index, with its weights as two pickled modules on OpenAI's CDN (``encoder.pkl``: 53,786,240 parameters,
``decoder.pkl``: 43,829,766). We use the package's own ``Encoder``/``Decoder`` classes and follow its published
behaviour (its usage notebook): pixels are squeezed into [ε, 1 − ε] (``map_pixels``, ε = 0.1) before encoding;
a token is the arg-max of the encoder's 8192 logits per 8×8 patch; the decoder reads one-hot tokens and its first
three output channels, through a sigmoid, are the pixels (``unmap_pixels`` undoes the squeeze).

Two things of that release need care, both handled here and nowhere else:

* the package's metadata pulls torchvision, mypy and pytest: ``ensure_package`` installs it **without its
  dependencies** (it needs only torch, numpy, Pillow, requests and attrs);
* the weights are pickles of whole modules — and loading a pickle can run code. Our rule is safetensors only, so
  reading them is an explicit opt-in (``allow_pickle=True``). Even then nothing in them runs: ``_unpickle`` reads
  with ``weights_only=True``, allowing only the classes of OpenAI's release (a swapped file naming anything else
  stops before it is built); downloads go over https only (redirects included), their SHA-256 is checked against
  ``PINNED_SHA256`` where it is pinned and recorded in the converted files and the sidecar (``provenance``). Each
  module is converted **once** to ``.safetensors`` (its constructor settings in the file's metadata) in the
  cache, and every later load reads the converted file without any opt-in.

Sources: ``"openai"`` (the CDN), a local folder holding ``encoder.pkl`` and ``decoder.pkl`` (a Kaggle dataset),
or ``"tiny:dalle-dvae"``, the twin: the same classes at their smallest allowed width, random weights, pickled the
way the published files are.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ParameterError
from ..platform.download import https_download

PACKAGE = "DALL-E==0.1"
CDN = "https://cdn.openai.com/dall-e/"
# SHA-256 of OpenAI's published encoder.pkl / decoder.pkl, checked before a downloaded file is opened. Not known
# yet: the CDN was out of reach where this was written and no public record of the hashes was found. Until they
# are filled in, the files are still read only with weights_only=True limited to OpenAI's dall_e classes (a
# swapped file cannot run code), and their SHA-256 is recorded in the converted files and the sidecar.
PINNED_SHA256: dict[str, str | None] = {"encoder": None, "decoder": None}
PARTS = ("encoder", "decoder")
TWIN = "tiny:dalle-dvae"
# constructor settings (the classes' defaults are the published model's)
FULL_SIZE = {"encoder": {"n_hid": 256, "n_blk_per_group": 2, "input_channels": 3, "vocab_size": 8192},
             "decoder": {"n_init": 128, "n_hid": 256, "n_blk_per_group": 2, "output_channels": 3,
                         "vocab_size": 8192}}
SETTINGS = ("n_init", "n_hid", "n_blk_per_group", "input_channels", "output_channels", "vocab_size")
# activation memory per megapixel of input (encode + decode of a batch), published size on a GPU: measured 0.78
# GiB for four 256² pictures (benchmarks/gpu_full_size.json, dalle-dvae); the doctor adds it to the weights
ACTIVATIONS_GIB_PER_MP = 3.0


# attrs (the package's classes are attrs classes) at the version Kaggle's image carries, when a machine lacks it
ATTRS = "attrs==26.1.0"


def ensure_package() -> None:
    """Import ``dall_e``, installing ``DALL-E==0.1`` without its dependencies first if it is missing: from the
    wheelhouse of the genhelpers dataset the user attached (its SHA-256 checked against the dataset's record;
    internet off works), else from the index."""
    if importlib.util.find_spec("dall_e") is None:
        from ..platform.folders import verified
        from ..platform.stack import find_wheelhouse

        house = find_wheelhouse()
        wheels = sorted(house.glob("DALL_E-*.whl")) if house else []
        where = ["--no-index", "--find-links", str(house)] if wheels else []
        if wheels:
            verified(house.parent, wheels)
        print(f"installing {PACKAGE} without its dependencies (its metadata would pull torchvision, mypy, pytest) "
              + (f"from {wheels[0]} (SHA-256 as recorded)" if wheels else "from the package index"))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *where, PACKAGE], check=True)
        importlib.invalidate_caches()
    if importlib.util.find_spec("attr") is None:
        print(f"installing {ATTRS} (DALL·E's classes are attrs classes)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", ATTRS], check=True)
        importlib.invalidate_caches()
    importlib.import_module("dall_e")


def _classes():
    ensure_package()
    from dall_e import Decoder, Encoder

    return {"encoder": Encoder, "decoder": Decoder}


def build(part: str, settings: dict, device=None):
    """A fresh ``dall_e`` Encoder/Decoder with ``settings`` (random weights), on ``device``."""
    import torch

    return _classes()[part](**settings, device=torch.device(device or "cpu"), requires_grad=False)


def meta_count(part: str, settings: dict | None = None) -> int:
    """Parameters of the published-size module, built on the meta device (no memory)."""
    return sum(p.numel() for p in build(part, settings or FULL_SIZE[part], device="meta").parameters())


def cache_dir() -> Path:
    from ..platform.folders import cache_dir as root

    return root() / "dvae"


def check_source(source, name: str = "dvae_weights") -> None:
    """Raise ParameterError (naming the parameter) for a source that cannot be read, before anything loads."""
    if source in ("openai", TWIN):
        return
    if not isinstance(source, str) or not source.strip():
        raise ParameterError(name, f"{name}={source!r} must be 'openai' (the published weights), "
                                     f"'{TWIN}' (the offline twin) or a folder holding encoder.pkl and decoder.pkl")
    folder = Path(source).expanduser()
    missing = [f"{p}.pkl" for p in PARTS if not (folder / f"{p}.pkl").is_file()]
    if missing and not (folder / "encoder.safetensors").is_file():
        raise ParameterError(name, f"{name}={source!r}: {', '.join(missing)} not found there; give a folder with "
                                     f"encoder.pkl and decoder.pkl (from {CDN}), 'openai' to download them, or "
                                     f"'{TWIN}'")


def _twin_folder() -> Path:
    """The twin's pickles: the twins register how ``tiny:`` references resolve (genhelpers.twins.dvae)."""
    from ..hub.weights import twin_folder

    return twin_folder(TWIN.removeprefix("tiny:"))


def _converted_dir(source: str) -> Path:
    if source == TWIN:  # the twin's folder name carries its version: a rebuilt twin is converted anew
        return cache_dir() / "converted" / f"tiny-{_twin_folder().name}"
    key = source if source == "openai" else str(Path(source).expanduser().resolve())
    slug = "openai" if key == "openai" else hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir() / "converted" / slug


def check_pin(part: str, digest: str, path) -> None:
    """Refuse a downloaded pickle whose SHA-256 differs from the pinned one (where one is pinned)."""
    pinned = PINNED_SHA256.get(part)
    if pinned and digest != pinned:
        raise ValueError(f"{path}: SHA-256 {digest} is not the pinned {pinned} of OpenAI's {part}.pkl; the file was "
                         f"not opened. Delete it and download again, or check what sits between you and {CDN}")


def _safe_classes() -> list:
    """The classes a published dVAE pickle may name: the ``dall_e`` modules' own and the torch layers they use.
    Reading with ``weights_only=True`` and only these allowed, a pickle cannot run code: anything else it names
    stops the read before it is built."""
    import torch
    from dall_e import decoder, encoder, utils

    own = [v for m in (encoder, decoder, utils) for v in vars(m).values()
           if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__.startswith("dall_e")]
    return own + [torch.nn.Sequential, torch.nn.Identity, torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.Upsample]


def _unpickle(path: Path, part: str):
    """Read a published dVAE pickle (a whole pickled ``dall_e`` module) with ``weights_only=True``, allowing only
    the classes of OpenAI's release (``_safe_classes``): no pickle, swapped or not, runs code here."""
    import pickle

    import torch

    cls = _classes()[part]
    try:
        with torch.serialization.safe_globals(_safe_classes()):
            module = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} is not a dVAE pickle genhelpers can read safely: it names something outside "
                         f"OpenAI's dall_e classes ({str(e).splitlines()[-1][:200] if str(e) else e!r}). Nothing "
                         f"in it ran; use the files from {CDN}") from None
    if not isinstance(module, cls):
        raise ValueError(f"{path} holds a {type(module).__name__}, not DALL·E's {cls.__name__}")
    return module


def _convert(pickle_path: Path, part: str, target: Path, source: str, digest: str) -> None:
    from safetensors.torch import save_file

    module = _unpickle(pickle_path, part)
    settings = {k: getattr(module, k) for k in SETTINGS if hasattr(module, k)}
    tensors = {k: v.detach().float().contiguous() for k, v in module.state_dict().items()}
    tmp = target.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"dall_e_class": type(module).__name__, "settings": json.dumps(settings),
                                           "source": source, "source_sha256": digest})
    tmp.rename(target)


def provenance(folder) -> dict:
    """{part: {"source", "source_sha256"}} of a converted folder: where its pickles came from and their SHA-256
    (for the sidecar)."""
    from safetensors import safe_open

    out = {}
    for p in PARTS:
        with safe_open(str(Path(folder) / f"{p}.safetensors"), "pt") as f:
            meta = f.metadata() or {}
        out[p] = {"source": meta.get("source", "unknown"), "source_sha256": meta.get("source_sha256", "unknown")}
    return out


def resolve(source: str = "openai", allow_pickle: bool = False) -> Path:
    """The folder of ``encoder.safetensors`` and ``decoder.safetensors`` for ``source``, converting the
    published pickles once if needed (which needs ``allow_pickle=True``; refused before any download)."""
    check_source(source)
    if source not in ("openai", TWIN) and (Path(source).expanduser() / "encoder.safetensors").is_file():
        return Path(source).expanduser()
    out = _converted_dir(source)
    if all((out / f"{p}.safetensors").is_file() for p in PARTS):
        return out
    if not allow_pickle:
        raise ParameterError("allow_pickle", f"DALL·E's dVAE is published as pickles only ({CDN}encoder.pkl, "
                                             f"decoder.pkl). A pickle can run code when it is loaded, so genhelpers "
                                             f"reads one only when you opt in: set allow_pickle=True if you trust the "
                                             f"source. It is converted once to .safetensors ({out}) and read from "
                                             f"there afterwards, without the opt-in")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        for p in PARTS:
            if source == "openai":
                pickle_path = Path(tmp) / f"{p}.pkl"
                # downloaded pickles are removed after conversion
                digest = https_download(CDN + f"{p}.pkl", pickle_path)
                check_pin(p, digest, CDN + f"{p}.pkl")
            else:
                from ..platform.folders import sha256

                pickle_path = (_twin_folder() if source == TWIN else Path(source).expanduser()) / f"{p}.pkl"
                digest = sha256(pickle_path)
                if source != TWIN:
                    check_pin(p, digest, pickle_path)
            _convert(pickle_path, p, out / f"{p}.safetensors", CDN + f"{p}.pkl" if source == "openai" else
                     str(pickle_path), digest)
    print(f"converted the dVAE pickles once to {out} (later loads read .safetensors)")
    return out


def load(source: str = "openai", allow_pickle: bool = False, device: str = "cpu"):
    """(encoder, decoder) from ``source``, in eval mode on ``device``, read from the converted safetensors. Each
    carries ``genhelpers_info`` (where its weights came from, with the SHA-256 of the published pickle), which
    ``genhelpers.save(..., pipe=[encoder, decoder])`` writes into the sidecar."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = resolve(source, allow_pickle)
    origin = provenance(folder)
    models = []
    for p in PARTS:
        path = folder / f"{p}.safetensors"
        with safe_open(str(path), "pt") as f:
            settings = json.loads(f.metadata()["settings"])
        model = build(p, settings)
        model.load_state_dict(load_file(str(path)))
        model = model.to(device).eval()
        model.genhelpers_info = {"ref": source, "class": type(model).__name__, "path": str(path),
                                 "parameters": sum(t.numel() for t in model.parameters()), **origin[p]}
        models.append(model)
    return tuple(models)


# ----------------------------------------------------------------------------------------------- use
def to_input(images, size: int):
    """PIL pictures → (N, 3, size, size) float tensor, centre-cropped square, squeezed into [ε, 1 − ε]."""
    import numpy as np
    import torch
    from dall_e import map_pixels
    from PIL import Image

    batch = []
    for im in images:
        im = im.convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
        batch.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1))
    return map_pixels(torch.stack(batch))


def encode(encoder, x):
    """Tokens (N, H/8, W/8) of long: the arg-max of the encoder's logits per patch."""
    import torch

    with torch.no_grad():
        return encoder(x.to(next(encoder.parameters()).device)).argmax(dim=1).cpu()


def decode(decoder, tokens):
    """Pictures (N, 3, 8h, 8w) in [0, 1] from tokens (N, h, w)."""
    import torch
    import torch.nn.functional as F
    from dall_e import unmap_pixels

    device = next(decoder.parameters()).device
    one_hot = F.one_hot(tokens.to(device), decoder.vocab_size).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        out = decoder(one_hot).float()
    return unmap_pixels(torch.sigmoid(out[:, :3])).cpu()


def to_pil(x) -> list:
    from PIL import Image

    arr = (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype("uint8")
    return [Image.fromarray(a) for a in arr]


def codebook_usage(tokens, vocab_size: int) -> dict:
    """How much of the vocabulary a set of token grids uses: distinct tokens, their share of the vocabulary, and
    the perplexity of the token frequencies (the number of equally used tokens that would be as varied)."""
    import numpy as np

    counts = np.bincount(np.asarray(tokens).ravel(), minlength=vocab_size)
    p = counts[counts > 0] / counts.sum()
    return {"tokens": int(counts.sum()), "distinct": int((counts > 0).sum()),
            "share_of_vocabulary": round(float((counts > 0).mean()), 4),
            "perplexity": round(float(np.exp(-(p * np.log(p)).sum())), 1)}
