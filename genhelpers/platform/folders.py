"""The folders genhelpers reads and writes: its cache (twins, converted weights, environments) and the inputs a
Kaggle session has attached, in both of Kaggle's mount layouts. Nothing here downloads or imports a model."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """genhelpers' own cache: ``$GENHELPERS_CACHE``, else ``~/.cache/genhelpers``."""
    return Path(os.environ.get("GENHELPERS_CACHE") or Path.home() / ".cache" / "genhelpers")


def kaggle_input_root() -> Path:
    return Path(os.environ.get("GENHELPERS_KAGGLE_INPUT", "/kaggle/input"))


def _newest_first(path: Path):
    """Sort key: shallow folders first, then the highest version number (Kaggle Models keep one folder per
    version: .../<variation>/1, .../<variation>/2)."""
    return (len(path.parts), [(0, -int(p)) if p.isdigit() else (1, p) for p in path.parts])


def kaggle_inputs(root: Path | None = None) -> list[tuple[str, Path]]:
    """Every attached input as (name, folder), in both of Kaggle's mount layouts:

    * today's:  <root>/datasets/<owner>/<slug>/…  and  <root>/models/<owner>/<model>/<framework>/<variation>/<version>/…
    * older sessions: <root>/<slug>/…  (a model: <root>/<model>/<framework>/<variation>/<version>/…)

    ``name`` is the dataset slug or the model name; the folder is the input's top (files may sit deeper)."""
    root = root or kaggle_input_root()
    if not root.is_dir():
        return []
    found = []
    for top in sorted(p for p in root.iterdir() if p.is_dir()):
        if top.name in ("datasets", "models"):
            found += [(p.name, p) for p in sorted(top.glob("*/*")) if p.is_dir()]
        elif top.name != "competitions":
            found.append((top.name, top))
    return found


def find_in_inputs(pattern: str, root: Path | None = None) -> list[Path]:
    """Files matching ``pattern`` (a file name glob) anywhere in the attached inputs, at most 6 folders below
    an input's top (a model version folder is 4 below), the newest version first. For weights a notebook reads
    (a checkpoint outside the hub); never for what genhelpers installs (that comes from ``named_dataset`` only)."""
    hits = []
    for _, top in kaggle_inputs(root):
        for depth in range(0, 7):
            hits += top.glob("*/" * depth + pattern)
    return sorted(set(hits), key=lambda p: _newest_first(p.parent))


# ---------------------------------------------------------------------------------- the genhelpers dataset
# The one attached dataset genhelpers installs from (its wheel, its wheelhouse): the one the user names with
# GENHELPERS_DATASET='<owner>/<slug>', by default the only attached dataset whose slug is DATASET_SLUG (the name
# `genhelpers kaggle build` publishes under; a pushed notebook names its owner too). Every file installed from it
# must match the SHA-256 recorded in its HASHES file, written by `genhelpers kaggle build`. The notebooks' install
# cell applies the same rule before genhelpers exists (notebooks/install_cell.py; the tests hold the two together).
DATASET_SLUG = "genhelpers-wheel"
HASHES = "hashes.json"


class UntrustedInput(RuntimeError):
    """An attached input genhelpers will not install from: not the one named, ambiguous, or not matching its
    recorded hashes."""


def named_dataset(root: Path | None = None) -> Path | None:
    """The attached genhelpers dataset's folder, or None when none is attached; UntrustedInput when the name
    matches several attached datasets (say which one with GENHELPERS_DATASET)."""
    root = root or kaggle_input_root()
    named = os.environ.get("GENHELPERS_DATASET", DATASET_SLUG).strip().strip("/")
    owner, _, slug = named.rpartition("/")
    if not slug or any(p in (".", "..") for p in named.split("/")):
        raise UntrustedInput(f"GENHELPERS_DATASET={named!r} is not a dataset name: write '<owner>/<slug>' as the "
                             f"dataset's page shows it, e.g. 'alice/{DATASET_SLUG}'")
    hits = sorted(root.glob(f"datasets/{owner or '*'}/{slug}"))
    if not owner:  # the older mount layout keeps no owner: <root>/<slug>/
        hits += [root / slug]
    hits = [h for h in hits if h.is_dir()]
    if len(hits) > 1:
        raise UntrustedInput(f"{len(hits)} attached datasets are called {slug!r} ({', '.join(map(str, hits))}): "
                             f"remove the ones you did not mean, or name yours: GENHELPERS_DATASET='<owner>/{slug}'")
    return hits[0] if hits else None


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verified(dataset: Path, files) -> dict[str, str]:
    """{path relative to the dataset: SHA-256} of ``files``, each checked against the dataset's recorded hashes;
    UntrustedInput naming the first file that is not recorded or does not match."""
    import json

    record = dataset / HASHES
    if not record.is_file():
        raise UntrustedInput(f"{dataset} has no {HASHES}: genhelpers installs only what `genhelpers kaggle build` "
                             f"recorded. Rebuild the dataset with it (or attach the one it made)")
    known = json.loads(record.read_text()).get("files", {})
    out = {}
    for f in files:
        rel = Path(f).resolve().relative_to(dataset.resolve()).as_posix()
        digest = sha256(Path(f))
        if known.get(rel) != digest:
            why = "is not listed" if rel not in known else f"has SHA-256 {digest[:16]}…, not the recorded one"
            raise UntrustedInput(f"{dataset / rel} {why} in {dataset / HASHES}: it is not what `genhelpers kaggle "
                                 f"build` wrote, so it is not installed. Rebuild the dataset, or detach the one "
                                 f"that changed")
        out[rel] = digest
    return out


def record_hashes(dataset: Path, extra: dict | None = None) -> dict:
    """Write the dataset's HASHES file: the SHA-256 of every file in it (the build's record)."""
    import json

    files = {p.relative_to(dataset).as_posix(): sha256(p) for p in sorted(dataset.rglob("*"))
             if p.is_file() and p.name != HASHES}
    data = {**(extra or {}), "files": files}
    (dataset / HASHES).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data
