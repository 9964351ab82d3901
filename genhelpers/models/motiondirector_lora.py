"""MotionDirector LoRA files: ours (``.safetensors``, keyed) and the authors' published ones (pickled lists).

The authors publish their temporal LoRAs (apache-2.0) as ``torch.save`` of a Python list ``[up_0, down_0, up_1,
down_1, …]`` of float32 tensors, without names: pair *i* belongs to the *i*-th temporal linear layer in module
order (``motiondirector.selected``), checked here by count and shape, and pinned to the authors' order by
tests/test_motiondirector.py (their traversal on the full-size UNet, their forward on tiny weights). Being pickles,
they are read only after the explicit ``allow_pickle=True`` opt-in, and then with torch's weights-only reader.

Sources (``motion_lora``): ``"ruizhaocv/MotionDirector:<motion>"`` (``<motion>/checkpoint-*/temporal/lora/``),
``"ruizhaocv/MotionDirector_weights:<motion>"`` (``train/<motion>/checkpoint-*/temporal/lora/``), a local file or
folder (a Kaggle dataset), or ``"tiny:motiondirector-lora:<motion>"``, the twin in the first repository's layout.
A folder's LoRA is found as the authors' inference finds it: a file whose name contains ``unet`` and ends in
``.pt`` or ``.safetensors``, preferring ``.safetensors``. Every published LoRA was trained on
``cerspense/zeroscope_v2_576w`` (CC-BY-NC-4.0); ModelScope 1.7B has the same layout, so they load there too.
"""
from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path

from ..errors import ParameterError
from .motiondirector import placed, selected, use

REPOS = {"ruizhaocv/MotionDirector": "{motion}/checkpoint-*/temporal/lora/",
         "ruizhaocv/MotionDirector_weights": "train/{motion}/checkpoint-*/temporal/lora/"}
# the motions seen on the hub's pages (tests/reference/hub_tree_additions.json, ruizhaocv/*)
MOTIONS = {"ruizhaocv/MotionDirector": (
    "chest_transition", "dolly_zoom_(hitchcockian_zoom)_1", "dolly_zoom_(hitchcockian_zoom)_2", "follow",
    "left_to_right", "lifting_weights", "mini_jib_reveal", "orbit", "playing_golf", "pull_back", "reverse_follow",
    "riding_bicycle", "riding_horse", "right_to_left", "right_to_left_24", "skateboarding", "zoom_in", "zoom_out"),
    "ruizhaocv/MotionDirector_weights": ("car_16", "car_24", "dolly_zoom", "riding_bicycle", "zoom_in",
                                         "zoom_out")}
TWIN = "tiny:motiondirector-lora"
TWIN_MOTIONS = ("riding_bicycle", "zoom_in")  # the twin mirrors ruizhaocv/MotionDirector's layout
LORA_SUFFIXES = (".pt", ".safetensors")


def parse(source: str) -> tuple[str, str | None, str | None]:
    """("hub" | "tiny" | "path", repository, motion)."""
    for repo in (TWIN, *REPOS):
        if source.startswith(repo + ":"):
            return ("tiny" if repo == TWIN else "hub"), repo, source[len(repo) + 1:]
    return "path", None, None


def check_source(name, v) -> None:
    """None, a published motion, the twin's, or a local LoRA file/folder; a teaching error otherwise."""
    if v is None:
        return
    forms = (f"None (no published LoRA), 'ruizhaocv/MotionDirector:<motion>' (e.g. "
             f"'ruizhaocv/MotionDirector:riding_bicycle'), 'ruizhaocv/MotionDirector_weights:<motion>', a .pt/"
             f".safetensors file or a folder holding one, or '{TWIN}:riding_bicycle' (the twin)")
    if not isinstance(v, str) or not v.strip():
        raise ParameterError(name, f"{name}={v!r} must be {forms}")
    kind, repo, motion = parse(v)
    if kind != "path":
        known = TWIN_MOTIONS if kind == "tiny" else MOTIONS[repo]
        if motion not in known:
            raise ParameterError(name, f"{name}={v!r}: {repo} has no motion {motion!r}; choose one of "
                                       f"{', '.join(known)}")
        return
    path = Path(v).expanduser()
    if not path.exists():
        raise ParameterError(name, f"{name}={v!r} is not a file or folder here: give {forms}")
    if path.is_file() and path.suffix not in LORA_SUFFIXES:
        raise ParameterError(name, f"{name}={v!r} is not a LoRA file (.pt or .safetensors)")
    if path.is_dir() and in_folder(path) is None:
        raise ParameterError(name, f"{name}={v!r} holds no LoRA: the authors' files are named *unet*.pt (or "
                                   f".safetensors), usually under <motion>/checkpoint-*/temporal/lora/")


def in_folder(folder: Path) -> Path | None:
    """The temporal LoRA file in a folder, found as the authors' inference finds it."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and "unet" in p.name
             and p.suffix in LORA_SUFFIXES and "spatial" not in p.parts]
    return pick(files)


def pick(files):
    """The LoRA among candidate files: ``.safetensors`` first (never a pickle where both exist)."""
    files = list(files)
    for suffix in (".safetensors", ".pt"):
        hits = [f for f in files if str(f).endswith(suffix)]
        if hits:
            return hits[0]
    return None


def is_pickle(source) -> bool:
    """Whether reading ``source`` means unpickling (every published MotionDirector LoRA does)."""
    if source is None:
        return False
    kind, _, _ = parse(source)
    if kind != "path":
        return True
    path = Path(source).expanduser()
    found = in_folder(path) if path.is_dir() else path
    return found is not None and found.suffix != ".safetensors"


def pickle_message(name: str, source: str) -> str:
    return (f"{name}={source!r} is a pickle (MotionDirector publishes its LoRAs as torch.save'd lists). A pickle "
            f"can run code when it is loaded, so genhelpers reads one only when you opt in: set allow_pickle=True "
            f"if you trust the source (it is then read with torch's weights-only unpickler)")


def locate(source: str, allow_pickle: bool = False) -> Path:
    """The LoRA file of ``source`` on this machine (downloading one file from the hub if needed). A pickle is
    refused before any download unless ``allow_pickle``."""
    if is_pickle(source) and not allow_pickle:
        raise ParameterError("allow_pickle", pickle_message("motion_lora", source))
    kind, repo, motion = parse(source)
    if kind == "path":
        path = Path(source).expanduser()
        return in_folder(path) if path.is_dir() else path
    if kind == "tiny":
        from ..hub.weights import twin_folder

        found = in_folder(twin_folder(TWIN.removeprefix("tiny:")) / motion)
        if found is None:
            raise FileNotFoundError(f"the twin has no LoRA for {motion!r}")
        return found
    return from_hub(repo, motion)


def from_hub(repo: str, motion: str) -> Path:
    """One motion's temporal LoRA from the hub: the listing says which file (``unet.pt``, ``150_unet.pt`` …)."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    from ..hub.weights import hub_token, offline

    prefix = REPOS[repo].format(motion=motion)
    token = hub_token()
    if offline():  # only the cache: what an earlier online run downloaded
        snap = Path(snapshot_download(repo, local_files_only=True))
        found = pick(sorted(p for p in snap.rglob("*") if p.is_file() and fnmatch.fnmatch(
            p.relative_to(snap).as_posix(), prefix + "*unet*")))
        if found is None:
            raise FileNotFoundError(f"{repo}: no cached LoRA for {motion!r} (HF_HUB_OFFLINE=1)")
        return found
    files = HfApi().list_repo_files(repo, token=token)
    chosen = pick(sorted(f for f in files if fnmatch.fnmatch(f, prefix + "*")
                         and "unet" in f.rsplit("/", 1)[-1] and f.endswith(LORA_SUFFIXES)))
    if chosen is None:
        raise FileNotFoundError(f"{repo} lists no temporal LoRA under {prefix} (looked for *unet*.pt/.safetensors)")
    return Path(hf_hub_download(repo, chosen, token=token))


def read(path: Path, unet) -> dict:
    """Keyed LoRA weights for ``unet`` from a file: our ``.safetensors`` as they are, the authors' pickled list
    through ``from_list`` (read with the weights-only unpickler: plain tensors, no code)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    tensors = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"{path} holds a {type(tensors).__name__}, not MotionDirector's list of LoRA tensors")
    return from_list(unet, [t.detach().float() for t in tensors])


# ----------------------------------------------------------------------------------------------- conversion
def save_lora(unet, adapter: str, path, metadata: dict | None = None) -> Path:
    """One adapter's weights as ``.safetensors`` (keys ``<layer>.lora_A.weight`` / ``.lora_B.weight``), loadable
    with ``apply_lora`` without any pickle."""
    from safetensors.torch import save_file

    tensors = {}
    for name in placed(unet).get(adapter, []):
        m = unet.get_submodule(name)
        tensors[f"{name}.lora_A.weight"] = m.lora_A[adapter].weight.detach().float().cpu().contiguous()
        tensors[f"{name}.lora_B.weight"] = m.lora_B[adapter].weight.detach().float().cpu().contiguous()
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return Path(path)


def save(unet, output_dir, meta: dict, adapters=("temporal", "spatial")) -> list[Path]:
    """Each trained LoRA as ``<adapter>_lora.safetensors`` with its JSON sidecar (``meta`` + the LoRA's facts),
    all or nothing. The temporal one is what MotionDirector keeps: pass it back as ``motion_lora``."""
    from ..outputs.media import save_group

    items = []
    for adapter in adapters:
        layers = placed(unet).get(adapter, [])
        rank = unet.get_submodule(layers[0]).r[adapter]
        facts = {"adapter": adapter, "layers": len(layers), "rank": rank, "format": "peft keys: <layer>.lora_A."
                 "weight (r, in) and .lora_B.weight (out, r), scale 1"}
        writer = (lambda tmp, a=adapter, f=facts: save_lora(unet, a, tmp, f))
        items.append((Path(output_dir) / f"{adapter}_lora.safetensors", writer, {**meta, "lora": facts}))
    return save_group(items)


def from_list(unet, tensors: list) -> dict:
    """The authors' unkeyed list ``[up_0, down_0, up_1, down_1, …]`` → {"<layer>.lora_A/B.weight": tensor},
    paired with the temporal layers in module order, every shape checked against this UNet."""
    names = selected(unet, "temporal")
    if len(tensors) != 2 * len(names):
        spatial = len(selected(unet, "spatial"))
        what = (f"the length of a spatial (appearance) LoRA ({spatial} layers): MotionDirector keeps only the "
                f"temporal LoRA for new subjects, use the file under temporal/lora/" if len(tensors) == 2 * spatial
                else "not a MotionDirector temporal LoRA for this model (a spatial file from multi-clip training "
                     "nests one LoRA per clip and is not supported)")
        raise ValueError(f"the LoRA file holds {len(tensors)} tensors where this UNet's {len(names)} temporal "
                         f"layers need {2 * len(names)} ([up, down] each): {what}")
    out = {}
    for i, name in enumerate(names):
        up, down = tensors[2 * i], tensors[2 * i + 1]
        base = unet.get_submodule(name)
        base = getattr(base, "base_layer", base)
        if up.dim() != 2 or down.dim() != 2 or up.shape[0] != base.out_features or down.shape[1] != \
                base.in_features or up.shape[1] != down.shape[0]:
            raise ValueError(f"pair {i} of the LoRA file has shapes up {tuple(up.shape)}, down {tuple(down.shape)} "
                             f"but layer {name} maps {base.in_features} → {base.out_features}: the LoRA was made "
                             f"for another model (the published ones fit zeroscope_v2_576w and ModelScope 1.7B)")
        out[f"{name}.lora_B.weight"], out[f"{name}.lora_A.weight"] = up, down
    return out


def apply_lora(unet, weights: dict, adapter: str = "published") -> dict:
    """Inject a temporal LoRA from keyed weights (``from_list`` or ``save_lora``) as adapter ``adapter``, scale 1.
    Returns {"rank", "layers"}."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    names = sorted({k.rsplit(".lora_", 1)[0] for k in weights})
    expected = set(selected(unet, "temporal"))
    if not set(names) <= expected or not names:
        raise ValueError(f"the LoRA file names {len(set(names) - expected)} layer(s) that are not this UNet's "
                         f"temporal layers (e.g. {sorted(set(names) - expected)[:2]}): not a temporal LoRA for it")
    ranks = {weights[f"{n}.lora_A.weight"].shape[0] for n in names}
    if len(ranks) != 1:
        raise ValueError(f"the LoRA file mixes ranks {sorted(ranks)}: one rank per LoRA is expected")
    rank = ranks.pop()
    import re

    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, init_lora_weights="gaussian",
                        target_modules=rf"^(?:{'|'.join(re.escape(n) for n in names)})$")
    training = unet.training
    with warnings.catch_warnings():  # a third adapter beside the trained two is the point here
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        inject_adapter_in_model(config, unet, adapter_name=adapter)
    unet.train(training)  # peft's new layers start in training mode
    with torch.no_grad():
        for n in names:
            m = unet.get_submodule(n)
            m.lora_A[adapter].weight.copy_(weights[f"{n}.lora_A.weight"])
            m.lora_B[adapter].weight.copy_(weights[f"{n}.lora_B.weight"])
    use(unet)
    return {"rank": rank, "layers": len(names)}



def load(unet, source: str, allow_pickle: bool = False, adapter: str = "published") -> dict:
    """``locate`` + ``read`` + ``apply_lora``: the LoRA of ``source`` on ``unet`` as adapter ``adapter`` (not
    active until ``use``). Returns what was loaded."""
    path = locate(source, allow_pickle)
    facts = apply_lora(unet, read(path, unet), adapter)
    return {**facts, "file": path.name, "source": source, "pickle": path.suffix != ".safetensors"}
