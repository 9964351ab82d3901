"""Model reference -> local folder of weights.

Tried in this order, first hit wins:
  1. ``tiny:<key>``        the offline random-weight twin (built on first use, cached)
  2. an existing folder    used as it is
  3. the Kaggle input mount, ``/kaggle/input`` (override with GENHELPERS_KAGGLE_INPUT): an attached dataset or
     model whose slug is the repository name, e.g. ``stable-diffusion-xl-base-1-0``
  4. kagglehub, for ``kaggle:<handle>`` references or catalog entries with a known Kaggle handle
  5. the Hugging Face hub via huggingface_hub (its cache; no network when HF_HUB_OFFLINE=1)
A miss raises WeightsNotFound listing every way to provide the weights. Nothing here loads a model.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import catalog

SAFE = ".safetensors"
PICKLE = (".bin", ".ckpt", ".pt", ".pth")
WEIGHT_FILES = (SAFE, *PICKLE)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class WeightsNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Resolved:
    ref: str
    path: Path
    source: str  # "tiny" | "path" | "kaggle-input" | "kagglehub" | "hf-hub"
    entry: catalog.Entry | None = None

    def variants(self) -> set[str]:
        """File-name variants present in the folder (``fp16`` for ``*.fp16.safetensors``)."""
        found = set()
        for f in self.path.rglob("*" + SAFE):
            parts = f.name.split(".")
            if len(parts) >= 3:
                found.add(parts[-2])
        return found


def kaggle_input_root() -> Path:
    return Path(os.environ.get("GENHELPERS_KAGGLE_INPUT", "/kaggle/input"))


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def kind_of(ref) -> str:
    """Classify a reference without touching the disk beyond one existence check. Raises ValueError for a
    reference that cannot name a model, so a typo is caught before anything loads."""
    if not isinstance(ref, (str, os.PathLike)) or not str(ref).strip():
        raise ValueError(f"model reference {ref!r} is empty: give a hub id such as "
                         f"'stabilityai/stable-diffusion-xl-base-1.0', a local folder, or 'tiny:sdxl-base'")
    ref = str(ref)
    if ref.startswith("tiny:"):
        from . import tiny

        if ref[5:] not in tiny.BUILDERS:
            raise ValueError(f"model={ref!r}: no tiny twin by that name; choose one of "
                             + ", ".join(f"'tiny:{k}'" for k in sorted(tiny.BUILDERS)))
        return "tiny"
    if ref.startswith("kaggle:"):
        return "kaggle"
    if Path(ref).expanduser().is_dir():
        return "path"
    if ref.startswith(("/", "./", "../", "~")):
        raise ValueError(f"model={ref!r} looks like a folder but it does not exist; check the path "
                         f"(it must be a diffusers folder with model_index.json or config.json)")
    if catalog.find(ref):
        return "catalog"
    if HUB_ID.match(ref):
        return "hub"
    known = ", ".join(sorted(catalog.ENTRIES))
    raise ValueError(f"model={ref!r} is not a model reference genhelpers knows: use a catalog key ({known}), "
                     f"a Hugging Face id 'owner/name', a local folder, 'kaggle:<handle>' or 'tiny:<key>'")


def check_weights(folder: Path, allow_pickle: bool = False) -> None:
    """Refuse a folder whose weights are only pickles (they can run code when loaded) unless allowed."""
    files = [f for f in folder.rglob("*") if f.suffix in WEIGHT_FILES]
    if files and not allow_pickle and not any(f.suffix == SAFE for f in files):
        names = ", ".join(sorted({f.name for f in files})[:3])
        raise ValueError(f"{folder} holds only pickle weights ({names}). Pickles can execute code when loaded, "
                         f"so genhelpers loads .safetensors only. Convert them, or pass allow_pickle=True if "
                         f"you trust the source.")


def check_layout(folder: Path, cls_name: str, wanted=None) -> None:
    """A pipeline folder must hold model_index.json and a subfolder for every component it lists that the
    loading class uses (``wanted``; None: all). Names what is missing before any weights are read."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ValueError(f"{folder} is not a {cls_name} folder: it has no model_index.json (a diffusers pipeline "
                         f"folder lists its components there, one subfolder each)")
    index = json.loads(index_file.read_text())
    listed = {k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None}
    missing = sorted(c for c in listed if (wanted is None or c in wanted) and not (folder / c).is_dir())
    if missing:
        raise ValueError(f"{folder} is not a complete {cls_name} folder: missing component(s) "
                         f"{', '.join(missing)} (model_index.json lists them; each needs its subfolder with "
                         f"config and weights). Re-download the model or fix the folder.")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _weights_folder(top: Path) -> Path | None:
    """The folder under ``top`` that holds a diffusers layout. Kaggle Models mount a model at
    <slug>/<framework>/<variation>/<version>/, datasets at <slug>/; accept both (shallowest wins)."""
    for marker in ("model_index.json", "config.json"):
        hits = sorted(top.glob(f"**/{marker}"), key=lambda p: (len(p.parts), str(p)))
        if hits:
            return hits[0].parent
    return None


def from_kaggle_input(repo: str) -> Path | None:
    """An attached dataset/model named after the repository: <root>/<slug> or, where the mount groups
    inputs by owner, <root>/<owner>/<slug>."""
    root = kaggle_input_root()
    if not root.is_dir():
        return None
    name = repo.split("/")[-1]
    for slug in dict.fromkeys([name, _slug(name)]):
        for top in [root / slug, *sorted(root.glob(f"*/{slug}"))]:
            if top.is_dir() and (found := _weights_folder(top)):
                return found
    return None


def from_kagglehub(handle: str) -> Path | None:
    try:
        import kagglehub
    except ImportError:
        return None
    return Path(kagglehub.model_download(handle))


def hub_patterns(index: dict | None, variant: str | None, allow_pickle: bool, only=None) -> list[str]:
    """Files worth downloading: configs and tokenizers of the components model_index.json names (just those in
    ``only`` when given: the ones the loading class uses and the caller does not replace), and one weight file
    per component (the variant's, when asked). Published repos also carry single-file checkpoints, ONNX, Flax
    and pickle copies, several GB each, which we never need."""
    exts = [SAFE] + (list(PICKLE) if allow_pickle else [])
    weight_names = [f"*.{variant}{e}" for e in exts] if variant else [f"*{e}" for e in exts]
    if index is None:  # a single model repo (e.g. a VAE): config + weights at the top
        return ["config.json", *weight_names]
    comps = [k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None
             and (only is None or k in only)]
    pats = ["model_index.json"]
    for c in comps:
        pats += [f"{c}/*.json", f"{c}/*.txt", f"{c}/*.model"] + [f"{c}/{w}" for w in weight_names]
    return pats


def from_hub(repo: str, variant: str | None, allow_pickle: bool, only=None) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    local_only = offline()
    try:
        index = json.loads(Path(hf_hub_download(repo, "model_index.json", local_files_only=local_only)).read_text())
    except EntryNotFoundError:
        index = None
    path = Path(snapshot_download(repo, allow_patterns=hub_patterns(index, variant, allow_pickle, only),
                                  local_files_only=local_only))
    if variant and not any(path.rglob(f"*.{variant}{SAFE}")):  # repo has no such variant: take the default
        path = Path(snapshot_download(repo, allow_patterns=hub_patterns(index, None, allow_pickle, only),
                                      local_files_only=local_only))
    return path


def not_found_message(ref: str, repo: str | None, entry: catalog.Entry | None, why: str) -> str:
    repo = repo or ref
    slug = _slug(repo.split("/")[-1])
    hub_state = "HF_HUB_OFFLINE=1, so the hub was not asked" if offline() else "the hub could not provide it"
    lines = [
        f"Could not find weights for {ref!r} ({why}; {hub_state}). Provide them one of these ways:",
        "  1. a local folder: model='/path/to/folder' (a diffusers folder with model_index.json or config.json)",
        f"  2. on Kaggle, attach the weights as a dataset or model named '{slug}' "
        f"(searched under {kaggle_input_root()})",
        "  3. kagglehub: model='kaggle:<owner>/<model>/<framework>/<variation>' (needs `pip install kagglehub`)",
        ("  4. the Hugging Face hub: turn the internet on (Kaggle: Settings → Internet on) and unset "
         "HF_HUB_OFFLINE; files are cached under ~/.cache/huggingface"),
    ]
    if entry:
        lines.append(f"  5. for a CPU smoke run without any download: model='{entry.tiny}' (random-weight twin)")
    return "\n".join(lines)


def resolve(ref, variant: str | None = None, allow_pickle: bool = False, only=None) -> Resolved:
    """``only``: the pipeline components worth downloading from the hub (None: all that model_index names)."""
    kind = kind_of(ref)
    ref = str(ref)
    entry = catalog.find(ref)
    if kind == "tiny":
        from . import tiny

        return Resolved(ref, tiny.build(ref[5:]), "tiny", entry)
    if kind == "path":
        path = Path(ref).expanduser().resolve()
        check_weights(path, allow_pickle)
        return Resolved(ref, path, "path", entry)
    if kind == "kaggle":
        try:
            path = from_kagglehub(ref[len("kaggle:"):])
        except Exception as e:  # kagglehub raises its own types for auth / network / not found
            raise WeightsNotFound(not_found_message(ref, None, entry, f"kagglehub failed: {e}")) from e
        if path is None:
            raise WeightsNotFound(not_found_message(ref, None, entry, "kagglehub is not installed"))
        check_weights(path, allow_pickle)
        return Resolved(ref, path, "kagglehub", entry)

    repo = entry.repo if entry else ref
    if (path := from_kaggle_input(repo)) is not None:
        check_weights(path, allow_pickle)
        return Resolved(ref, path, "kaggle-input", entry)
    if entry and entry.kaggle_handle:
        try:
            if (path := from_kagglehub(entry.kaggle_handle)) is not None:
                check_weights(path, allow_pickle)
                return Resolved(ref, path, "kagglehub", entry)
        except Exception:  # fall through to the hub; the final error lists every route
            pass
    try:
        path = from_hub(repo, variant, allow_pickle, only)
    except Exception as e:
        reason = type(e).__name__ if offline() else f"{type(e).__name__}: {e}".splitlines()[0]
        raise WeightsNotFound(not_found_message(ref, repo, entry, f"not in the hub cache ({reason})")) from e
    check_weights(path, allow_pickle)
    return Resolved(ref, path, "hf-hub", entry)
