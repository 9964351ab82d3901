"""Moore-AnimateAnyone's published files → a folder ``AnimateAnyonePipeline`` loads, converted once; and the
single files the stock route needs (the IP-Adapter's).

``patrolli/AnimateAnyone`` (Apache-2.0, revision ``REVISION``) holds four float32 **pickles** of plain state dicts:
``reference_unet.pth`` (the SD1.5 UNet's keys less its output head), ``denoising_unet.pth`` (exactly the SD1.5
UNet's keys), ``motion_module.pth`` (AnimateDiff-v2 keys, which diffusers' own converter maps onto a
``MotionAdapter``) and ``pose_guider.pth``. A pickle can run code when it is loaded, so they are read only after an
explicit ``allow_pickle=True``, with torch's weights-only reader, one file at a time, and written once as
``.safetensors`` in a diffusers folder in genhelpers' cache; later runs read that folder. The image encoder comes
from ``lambdalabs/sd-image-variations-diffusers`` (its ``image_encoder/`` is a pickle on the main branch: the same
opt-in) and the VAE from ``stabilityai/sd-vae-ft-mse`` (safetensors). The UNets' configs are SD1.5's and the
motion module's is AnimateDiff v1-5-2's, as Moore builds them (recorded in ``hub/configs/animate-anyone``).

Nothing here imports torch or diffusers at import time: ``check_source`` runs in a notebook's inputs cell.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import ParameterError

REPO = "patrolli/AnimateAnyone"
REVISION = "7fd8ff9dfb0e75c7b7fa2689e4795347b5996b9a"  # the files whose layouts tests/reference/animate_anyone records
KEY = "animate-anyone"
TWIN = f"tiny:{KEY}"
FILES = ("reference_unet.pth", "denoising_unet.pth", "motion_module.pth", "pose_guider.pth")
# where each base comes from: the published configs for the real weights, the matching twins for the twin
UNET_CONFIG = ("sd15", "unet")
MOTION_CONFIG = ("animatediff-motion-adapter-v1-5-2", "motion_adapter")
HEAD = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False, steps_offset=1,
                 prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing")
DONE = "converted.json"  # written last: a folder without it is an interrupted conversion


def _is_converted(folder: Path) -> bool:
    return (folder / DONE).is_file() and (folder / "model_index.json").is_file()


def _has_pickles(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES)


def check_source(name: str, v) -> None:
    """A local folder must hold Moore's four files or a converted folder (raised before anything loads); hub ids,
    catalog keys and the twin are checked by the model-reference rule."""
    if isinstance(v, str) and Path(v).expanduser().is_dir():
        folder = Path(v).expanduser()
        if not (_has_pickles(folder) or _is_converted(folder)):
            missing = [f for f in FILES if not (folder / f).is_file()]
            raise ParameterError(name, f"{name}={v!r} holds neither Moore-AnimateAnyone's files ({', '.join(missing)} "
                                       f"missing) nor a folder converted by genhelpers: give the folder with "
                                       f"{', '.join(FILES)} (from huggingface.co/{REPO}), '{REPO}', or '{TWIN}'")


def _twin(name: str) -> Path:
    from ..hub.weights import twin_folder

    return twin_folder(name)


def is_twin(ref: str) -> bool:
    return str(ref).startswith("tiny:")


def moore_files(ref: str, allow_pickle: bool) -> Path:
    """The folder holding Moore's four files for ``ref``: the twin, a local folder, an attached Kaggle input, or
    the hub (downloaded only with the opt-in, at the pinned revision)."""
    from ..platform.folders import find_in_inputs

    if is_twin(ref):
        return _twin(ref.removeprefix("tiny:"))
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser()
    hits = [p.parent for p in find_in_inputs(FILES[1]) if _has_pickles(p.parent)]
    if hits:
        return hits[0]
    _refuse_without(allow_pickle, ref)
    from huggingface_hub import hf_hub_download

    from ..hub.weights import hub_token, offline

    paths = [hf_hub_download(REPO, f, revision=REVISION, token=hub_token(), local_files_only=offline())
             for f in FILES]
    return Path(paths[0]).parent


def _refuse_without(allow_pickle: bool, what: str) -> None:
    if not allow_pickle:
        raise ParameterError("allow_pickle", f"{what}: Moore-AnimateAnyone publishes its weights as pickles only "
                                             f"({', '.join(FILES)}). A pickle can run code when it is loaded, so "
                                             f"genhelpers reads them only when you opt in: set allow_pickle=True if "
                                             f"you trust the source. They are read with torch's weights-only reader "
                                             f"and converted once to .safetensors")


def converted_dir(ref: str, dtype: str) -> Path:
    """Where the converted folder of ``ref`` lives in genhelpers' cache (a folder given by path: itself)."""
    import hashlib

    from ..platform.folders import cache_dir

    if not is_twin(ref) and Path(ref).expanduser().is_dir() and _is_converted(Path(ref).expanduser()):
        return Path(ref).expanduser()
    if is_twin(ref):  # the twin's folder name carries its version: a rebuilt twin is converted anew
        slug = f"tiny-{_twin(ref.removeprefix('tiny:')).name}"
    elif Path(ref).expanduser().is_dir():
        slug = "folder-" + hashlib.sha1(str(Path(ref).expanduser().resolve()).encode()).hexdigest()[:12]
    else:
        slug = f"{KEY}-{REVISION[:7]}"
    return cache_dir() / "animate_anyone" / f"{slug}-{dtype}"


def base_configs(ref: str) -> tuple[dict, dict]:
    """(UNet config, MotionAdapter config) Moore's files are built on: SD1.5's and AnimateDiff v1-5-2's as
    published; for the twin, the SD1.5 and motion-adapter twins' own."""
    if is_twin(ref):
        unet = json.loads((_twin(UNET_CONFIG[0]) / "unet" / "config.json").read_text())
        motion = json.loads((_twin(MOTION_CONFIG[0]) / "config.json").read_text())
        return unet, motion
    from ..hub.published import configs

    return configs(KEY)["denoising_unet"], configs(KEY)["motion_module"]


def _read(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def _expect(what: str, got, wanted) -> None:
    got, wanted = set(got), set(wanted)
    if got != wanted:
        raise ValueError(f"{what}: the file's keys are not the layout Moore-AnimateAnyone publishes "
                         f"(missing {sorted(wanted - got)[:3]}, unexpected {sorted(got - wanted)[:3]})")


def _assign(model, state: dict, dtype):
    """Fill a model built on the meta device with ``state`` (no random initialisation of ~0.9 B parameters)."""
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(dtype)


def reference_unet(files: Path, config: dict, dtype):
    """The ReferenceNet: an SD1.5 UNet; the published file has no output head (never used): it is stored as zeros."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(config)
    wanted = model.state_dict()
    state = _read(files / "reference_unet.pth")
    _expect("reference_unet.pth", state, [k for k in wanted if k not in HEAD])
    for k in HEAD:
        state[k] = (torch.ones if k == "conv_norm_out.weight" else torch.zeros)(wanted[k].shape)
    return _assign(model, state, dtype)


def denoising_unet(files: Path, unet_config: dict, motion_config: dict, dtype):
    """The denoiser: ``denoising_unet.pth`` (an SD1.5 UNet) with ``motion_module.pth`` mapped by diffusers' own
    AnimateDiff converter, as one ``UNetMotionModel``; the position tables are the published sinusoid."""
    import torch
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    with torch.device("meta"):
        unet2d = UNet2DConditionModel.from_config(unet_config)
        adapter = MotionAdapter.from_config(motion_config)
        model = UNetMotionModel.from_unet2d(unet2d, adapter, load_weights=False)
    state = _read(files / "denoising_unet.pth")
    _expect("denoising_unet.pth", state, unet2d.state_dict())
    motion = convert_animatediff_checkpoint_to_diffusers(_read(files / "motion_module.pth"))
    tables = [k for k in adapter.state_dict() if k.endswith("pos_embed.pe")]
    _expect("motion_module.pth", motion, [k for k in adapter.state_dict() if k not in tables])
    for k in tables:
        _, length, width = adapter.state_dict()[k].shape
        motion[k] = SinusoidalPositionalEmbedding(width, length).pe
    return _assign(model, {**state, **motion}, dtype)


def pose_guider(files: Path, dtype):
    """The pose guider, its widths read from the file's shapes."""
    from .animate_anyone import PoseGuider

    state = _read(files / "pose_guider.pth")
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    widths = [state["conv_in.weight"].shape[0]] + [state[f"blocks.{i}.weight"].shape[0] for i in blocks if i % 2]
    model = PoseGuider(conditioning_embedding_channels=state["conv_out.weight"].shape[0],
                       conditioning_channels=state["conv_in.weight"].shape[1], block_out_channels=tuple(widths))
    model.load_state_dict(state, strict=True)
    return model.to(dtype)


def image_encoder(ref: str, allow_pickle: bool, dtype):
    """The CLIP image encoder (with projection) of ``lambdalabs/sd-image-variations-diffusers`` (or its twin):
    only its ``image_encoder/`` folder is fetched."""
    from transformers import CLIPVisionModelWithProjection

    from ..hub.weights import resolve

    folder = resolve(ref, allow_pickle=allow_pickle, only={"image_encoder"}).path / "image_encoder"
    safe = any(folder.glob("*.safetensors"))  # a pickle only where the opt-in let resolve fetch one
    return CLIPVisionModelWithProjection.from_pretrained(folder, dtype=dtype, use_safetensors=safe)


def vae(ref: str, dtype):
    from diffusers import AutoencoderKL

    from ..hub.weights import resolve

    return AutoencoderKL.from_pretrained(resolve(ref).path, torch_dtype=dtype)


def convert(model: str = REPO, image_encoder_ref: str = "lambdalabs/sd-image-variations-diffusers",
            vae_ref: str = "stabilityai/sd-vae-ft-mse", allow_pickle: bool = False, dtype: str = "float16") -> Path:
    """The folder ``AnimateAnyonePipeline`` loads for ``model``, converting the published pickles once (which
    needs ``allow_pickle=True``; refused before any download). Returns it at once when already converted."""
    import gc

    import torch
    from diffusers import DDIMScheduler
    from transformers import CLIPImageProcessor

    from .animate_anyone import AnimateAnyonePipeline

    check_source("model", model)
    out = converted_dir(model, dtype)
    if _is_converted(out):
        return out
    _refuse_without(allow_pickle, f"model={model!r}")
    files = moore_files(model, allow_pickle)
    unet_config, motion_config = base_configs(model)
    torch_dtype = getattr(torch, dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        parts = {  # one at a time: each is saved and freed before the next is read (8.7 GB of pickles)
            "reference_unet": lambda: reference_unet(files, unet_config, torch_dtype),
            "unet": lambda: denoising_unet(files, unet_config, motion_config, torch_dtype),
            "pose_guider": lambda: pose_guider(files, torch_dtype),
            "image_encoder": lambda: image_encoder(image_encoder_ref, allow_pickle, torch_dtype),
            "vae": lambda: vae(vae_ref, torch_dtype),
        }
        for name, make in parts.items():
            part = make()
            part.save_pretrained(work / name, safe_serialization=True)
            del part
            gc.collect()
        CLIPImageProcessor().save_pretrained(work / "feature_extractor")
        DDIMScheduler(**SCHEDULER).save_pretrained(work / "scheduler")
        index = {"_class_name": AnimateAnyonePipeline.__name__, **{
            name: [lib, cls] for name, (lib, cls) in AnimateAnyonePipeline.COMPONENTS.items()}}
        (work / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        (work / DONE).write_text(json.dumps({"model": str(model), "revision": None if is_twin(model) else REVISION,
                                             "image_encoder": image_encoder_ref, "vae": vae_ref, "dtype": dtype},
                                            indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"converted {model} once to {out} ({dtype} safetensors; later runs read it without opening a pickle)")
    return out
