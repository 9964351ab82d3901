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
    an input's top (a model version folder is 4 below), sorted newest version last."""
    hits = []
    for _, top in kaggle_inputs(root):
        for depth in range(0, 7):
            hits += top.glob("*/" * depth + pattern)
    return sorted(set(hits), key=lambda p: _newest_first(p.parent), reverse=True)
