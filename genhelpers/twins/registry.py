"""Tiny random-weight twins of the published models, built offline.

A twin uses the same diffusers/transformers classes as the published checkpoint, with small widths and layer
counts, random weights from a fixed seed, and is written with ``save_pretrained`` in the published folder layout
(model_index.json, one subfolder per component, the ``.fp16`` variant files beside the full-precision ones).
It is then loaded exactly like the real model: ``genhelpers.load("tiny:sdxl-base")``.

What is kept real on purpose: the VAE has four blocks, hence the real scale factor 8 (1024 px -> 128 latents);
the UNets keep the published block types, added conditioning and cross-attention wiring; the tokenizer is a
byte-level BPE CLIP tokenizer whose special tokens sit at the top of the id range like the real ones.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..platform.folders import cache_dir
from . import character, controlnet, dvae, image, ipadapter, llm, motiondirector, panorama, threed, tryon, video, vision
from .common import EOS, quiet, write_clip_tokenizer, write_t5_tokenizer

# one module per family of twins; a new family adds itself here (the notebook that needs it in the comment)
FAMILIES = (image, video, threed, vision,
            ipadapter,  # stylecrafter: h94/IP-Adapter's layout
            tryon,  # virtual_tryon: the inpainting base, its VAE, CatVTON's attention weights
            llm,  # procedural_3d, motion_editing, gpt4motion: the planner's instruct LLM (issue 27)
            panorama,  # mvdiffusion: the SD 2 base and the CAA checkpoint
            controlnet,  # gpt4motion: SDXL's depth and canny ControlNets
            character)  # animate_anyone: Moore-AnimateAnyone's layout, Lambda's image encoder, the OpenPose ControlNet
BUILDERS = {key: build for family in FAMILIES for key, build in family.BUILDERS.items()}  # key -> builder
# twins that are not written by save_pretrained: key -> writer(folder) (published as pickled modules)
WRITERS = {"dalle-dvae": dvae.write,
           **tryon.WRITERS,  # virtual_tryon
           **motiondirector.WRITERS,  # motion_director: its LoRA twin
           **panorama.WRITERS}  # mvdiffusion: a Lightning pano.ckpt

# libraries whose code writes the twins' files (their versions are part of a twin's fingerprint)
WRITTEN_BY = ("torch", "diffusers", "transformers", "tokenizers", "safetensors", "peft", "DALL-E")


@functools.cache
def fingerprint() -> str:
    """What the twins are made from, as 10 hex digits: genhelpers' own code (the builders, and the model classes
    and tables they instantiate) and the versions of the libraries that write the files. A cached twin is used
    only when it was built from exactly these, so no version number has to be remembered, and a cache kept
    between runs (``GENHELPERS_TWIN_CACHE``, e.g. restored by CI) can never serve a stale twin."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    for lib in WRITTEN_BY:
        try:
            h.update(f"{lib}=={version(lib)}".encode())
        except PackageNotFoundError:
            h.update(f"{lib} absent".encode())
    return h.hexdigest()[:10]


def twin_root() -> Path:
    """Where twins are cached: ``GENHELPERS_TWIN_CACHE``, else ``<genhelpers cache>/tiny``."""
    return Path(os.environ.get("GENHELPERS_TWIN_CACHE") or cache_dir() / "tiny")


def folder_of(key: str, root: str | os.PathLike | None = None) -> Path:
    """The folder twin ``key`` is (or would be) built in: its key and the fingerprint of what it is made from."""
    return (Path(root) if root else twin_root()) / f"{key}-{fingerprint()}"


def _save(obj, folder: Path, variant: str | None = None, safe: bool = True) -> None:
    obj.save_pretrained(folder, safe_serialization=safe, variant=variant)


def _write_twin(key: str, folder: Path) -> None:
    from ..hub import catalog

    obj = BUILDERS[key]()
    _save(obj, folder, safe=not catalog.ENTRIES[key].pickle_only)  # pickle-only repos get pickle twins
    if catalog.ENTRIES[key].pickle_only:  # transformers 5 writes safetensors regardless: convert as published
        import torch
        from safetensors.torch import load_file

        for f in [*folder.glob("model.safetensors"), *folder.glob("*/model.safetensors")]:
            torch.save(load_file(f), f.with_name("pytorch_model.bin"))
            f.unlink()
    for sub, pad in (("tokenizer", EOS), ("tokenizer_2", "!")):
        tok = folder / sub
        if (tok / "tokenizer_config.json").is_file() and "T5Tokenizer" in (tok / "tokenizer_config.json").read_text():
            shutil.rmtree(tok)  # published T5 folders hold spiece.model (transformers 5 writes tokenizer.json)
            write_t5_tokenizer(tok)
        elif tok.is_dir():  # published CLIP tokenizer folders hold vocab.json + merges.txt
            pad = "!" if key == "sd-x4-upscaler" else pad
            shutil.rmtree(tok)
            write_clip_tokenizer(tok, pad_token=pad)
    index = folder / "model_index.json"
    if index.exists():  # without torchvision transformers names the PIL processor class; published files don't
        text = index.read_text().replace("CLIPImageProcessorPil", "CLIPImageProcessor")
        # Karlo's published model_index.json names text_proj by the module of its day (see loader.FROZEN_...)
        old, new = '"diffusers",\n    "UnCLIPTextProjModel"', '"unclip",\n    "UnCLIPTextProjModel"'
        index.write_text(text.replace(old, new))
    if "fp16" in catalog.ENTRIES[key].variants:
        _write_fp16(obj, folder)
    for component in SHARDED.get(key, ()):
        _shard_in_two(getattr(obj, component), folder / component, catalog.ENTRIES[key].variants)


# components whose published weights are split in two shards with an index (T5-XXL: ~19 GB in float32)
SHARDED = {"if-i-xl": ("text_encoder",)}


def _shard_in_two(model, folder: Path, variants) -> None:
    """Re-save ``model`` as two shards + index under the published names (model-0000N-of-00002.safetensors,
    model.fp16-0000N-of-00002.safetensors with model.safetensors.index.fp16.json)."""
    import torch

    for f in folder.glob("model*.safetensors*"):
        f.unlink()
    model.to(torch.float32)
    total = sum(p.numel() * 4 for p in model.parameters())  # float32 bytes
    for variant in (None, *(("fp16",) if "fp16" in variants else ())):
        m = model.to(torch.float16) if variant else model
        for share in (0.5, 0.6, 0.7, 0.8, 0.9):  # shards fill greedily by tensor: find a size giving two
            for f in folder.glob(f"model{'.' + variant if variant else ''}-*.safetensors"):
                f.unlink()
            m.save_pretrained(folder, safe_serialization=True, variant=variant,
                              max_shard_size=int(total * share / (2 if variant else 1)))
            if len(list(folder.glob(f"model{'.' + variant if variant else ''}-*-of-00002.safetensors"))) == 2:
                break
    model.to(torch.float32)
    # the fp16 save rewrote config.json's dtype; the default weights (and the published config) are float32
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"float16"', '"float32"'))


def _write_fp16(obj, folder: Path) -> None:
    import torch

    # Where the published repository has them, the fp16 files sit beside the fp32 ones under their published
    # names (…/diffusion_pytorch_model.fp16.safetensors, …/model.fp16.safetensors). Save them aside and move
    # only the weight files in, so the configs keep describing the full-precision default.
    with tempfile.TemporaryDirectory(dir=folder.parent) as aside:
        _save(obj.to(torch.float16), Path(aside), variant="fp16")
        for f in Path(aside).rglob("*.fp16.safetensors"):
            target = folder / f.relative_to(aside)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)


def build(key: str, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Return the folder of twin ``key``, building it first if it is not cached. Safe to call from several
    processes at once: each builds in a private folder and the first to finish renames it into place."""
    if key not in BUILDERS and key not in WRITERS:
        raise ValueError(f"no tiny twin named {key!r}; known twins: {', '.join(sorted(names()))}")
    folder = folder_of(key, root)
    root = folder.parent
    if folder.is_dir() and not force:
        with contextlib.suppress(OSError):  # a read-only cache is still a cache
            os.utime(folder)  # in use: kept by the pruning below
        return folder
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        with quiet():
            (WRITERS[key] if key in WRITERS else lambda w: _write_twin(key, w))(work)
        if force and folder.is_dir():
            shutil.rmtree(folder)
        try:
            os.rename(work, folder)
        except OSError:  # another process won the race; its twin is identical (same seed)
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    # the same twin built from other code and unused for a week. Not sooner: another environment sharing this
    # cache (the Kaggle-image rehearsal, another checkout) has its own fingerprint and is reading its folder now
    week_ago = time.time() - 7 * 24 * 3600
    for old in root.glob(f"{key}-*"):
        if (old != folder and old.is_dir() and old.name[len(key) + 1:].isalnum()
                and len(old.name) == len(folder.name) and old.stat().st_mtime < week_ago):
            shutil.rmtree(old, ignore_errors=True)
    return folder


def names() -> list[str]:
    """Every twin there is (``tiny:<name>``)."""
    return sorted([*BUILDERS, *WRITERS])


def _register() -> None:
    from ..hub.weights import register_twins

    register_twins(names, build)


_register()
