"""MotionDirector's dual-path LoRA on a text-to-video UNet3D, with peft.

What we follow (Zhao et al., "MotionDirector: Motion Customization of Text-to-Video Diffusion Models", 2023; the
authors' code at showlab/MotionDirector, Apache-2.0; facts in tests/reference/motion_director/):

* two LoRAs on one frozen ``UNet3DConditionModel`` (ModelScope T2V / ZeroScope). The **spatial** LoRA sits on the
  self-attention (``attn1``: q, k, v, out) and feed-forward (``ff``) linears of every spatial transformer
  (``*.attentions.*``); the **temporal** LoRA on ``attn1``, ``attn2`` (both attend over frames) and ``ff`` of every
  temporal transformer (``transformer_in`` and ``*.temp_attentions.*``). A LoRA adds ``up(down(x))`` with scale 1;
  ``down`` starts Normal(0, std 1/r), ``up`` at zero, dropout 0.1 while training (peft: ``lora_alpha = r``,
  ``init_lora_weights="gaussian"``);
* each step draws one timestep and one noise for the clip. The **spatial path** runs the UNet on one random frame
  (a 1-frame clip) with the spatial LoRA alone and fits that frame's noise: it absorbs the clip's appearance. The
  **temporal path** runs the whole clip with both LoRAs (the spatial one masked with probability 0.2) and fits the
  noise plus the **appearance-debiased** term: with a random anchor frame a, β = 1 and α = √2, the MSE between
  α·ε̂ − β·ε̂[a] and α·ε − β·ε[a]. Only the temporal LoRA learns from it. AdamW, lr 5e-4, weight decay 1e-2 (one
  clip), constant schedule;
* at inference only the temporal LoRA is kept, so the motion moves to new subjects; with the spatial LoRA kept too,
  the training clip's look comes back;
* the published LoRAs (``ruizhaocv/MotionDirector``) are unkeyed pickled lists ``[up_0, down_0, up_1, …]`` in the
  authors' module order, which our regex selection reproduces (tests/test_motiondirector.py, against the authors'
  own traversal and their forward on tiny weights).

Deliberate differences: peft drops out the LoRA's *input* where the authors drop its output (same in eval mode);
the spatial gradient is taken before the temporal pass and both optimisers step after it (the authors step the
spatial optimiser between the two backward passes, which in float32 raises "modified by an inplace operation";
the gradients are the same); the clip's latents are the VAE's mean, not one sample of it; diffusers' UNet3D has no
gradient checkpointing in 0.42.1, so ``block_checkpointing`` wraps each down/mid/up block in
``torch.utils.checkpoint``; one training clip (the authors also train one spatial LoRA per clip on several clips).
"""
from __future__ import annotations

import contextlib
import functools
import math
import warnings
from pathlib import Path

from ..errors import ParameterError

# ----------------------------------------------------------------------------------------------- where the LoRAs go
LINEARS = {"attn1": r"attn1\.(?:to_q|to_k|to_v|to_out\.0)", "attn2": r"attn2\.(?:to_q|to_k|to_v|to_out\.0)",
           "ff": r"ff\.net\.(?:0\.proj|2)"}
HOMES = {"spatial": r"(?:down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+",  # not temp_attentions
         "temporal": r"(?:transformer_in|(?:down_blocks\.\d+|mid_block|up_blocks\.\d+)\.temp_attentions\.\d+)"}
AUTHORS = {"spatial": ("attn1", "ff"), "temporal": ("attn1", "attn2", "ff")}
MEANING = {"spatial": "attn1 (self-attention over the pixels of a frame), attn2 (cross-attention to the text), "
                      "ff (feed-forward)",
           "temporal": "attn1 and attn2 (both self-attention over the frames), ff (feed-forward)"}
LORA_DROPOUT = 0.1
SPATIAL_MASK_P = 0.2  # the share of steps in which the spatial LoRA is switched off
WEIGHT_DECAY = 1e-2  # the authors' single-clip setting
MAX_RANK = 256


def target_regex(path: str, parts=None) -> str:
    """The peft ``target_modules`` regex of one path's LoRA (``parts`` of its transformer blocks)."""
    parts = [p for p in LINEARS if p in (parts or AUTHORS[path])]
    return rf"^{HOMES[path]}\.transformer_blocks\.\d+\.(?:{'|'.join(LINEARS[p] for p in parts)})$"


def selected(unet, path: str, parts=None) -> list[str]:
    """The linear layers a path's LoRA goes on, in module order (the order of the published list files)."""
    import re

    import torch

    rx = re.compile(target_regex(path, parts))
    # a layer already wrapped by peft keeps its name and holds the linear as ``base_layer``
    return [n for n, m in unet.named_modules()
            if isinstance(getattr(m, "base_layer", m), torch.nn.Linear) and rx.match(n)]


# ----------------------------------------------------------------------------------------------- input checks
def check_rank(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_RANK:
        raise ParameterError(name, f"{name}={v!r} must be a whole number from 1 to {MAX_RANK}: the LoRA's inner "
                                   f"width (MotionDirector uses 32; 0 would add a layer that cannot learn anything)")


def check_targets(name, v):
    path = "spatial" if name.startswith("spatial") else "temporal"
    if not isinstance(v, (list, tuple)) or not v or len(set(v)) != len(v):
        raise ParameterError(name, f"{name}={v!r} must be a non-empty list of distinct layer names, e.g. "
                                   f"{name}={list(AUTHORS[path])} (MotionDirector's)")
    unknown = [x for x in v if x not in LINEARS]
    if unknown:
        raise ParameterError(name, f"{name} names unknown layer(s) {unknown}: a {path} transformer block has "
                                   f"{MEANING[path]}; MotionDirector puts its {path} LoRA on {list(AUTHORS[path])}")


def check_clip(clip, frames: int) -> None:
    """A motion needs frames ≥ 2, and a user's clip must be readable with at least ``frames`` frames."""
    if frames < 2:
        raise ParameterError("frames", f"frames={frames}: a motion needs at least 2 frames (8 fits a T4, the "
                                       f"authors train 16)")
    if clip is None:
        return
    path = Path(clip)
    try:
        count = clip_length(path, frames)
    except Exception as e:  # imageio raises many kinds for a file that is not a video
        raise ParameterError("clip", f"clip={str(clip)!r} could not be read as a clip ({type(e).__name__}): give "
                                     f"an MP4/GIF, a folder of PNG/JPEG frames, or None for the drawn clip") from None
    if count < frames:
        raise ParameterError("clip", f"clip={str(clip)!r} has {count} frame(s), fewer than frames={frames}: use a "
                                     f"longer clip or fewer frames")


def clip_length(path: Path, enough: int) -> int:
    """Frames in a folder of pictures, or in a video file (counting stops at ``enough``)."""
    if path.is_dir():
        return len([p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")])
    import imageio.v3 as iio

    count = 0
    for _ in iio.imiter(path):
        count += 1
        if count >= enough:
            break
    return count


# ----------------------------------------------------------------------------------------------- the two LoRAs
def _peft():
    try:
        import peft
    except ImportError as e:
        raise ImportError("MotionDirector's LoRAs need peft: pip install peft (Kaggle's and Colab's images have "
                          "it; genhelpers' pyproject lists it)") from e
    return peft


def lora_layers(unet) -> list:
    _peft()
    from peft.tuners.lora import LoraLayer

    return [m for m in unet.modules() if isinstance(m, LoraLayer)]


def inject(unet, rank: int, spatial_targets=None, temporal_targets=None, seed: int = 0) -> dict:
    """Add the spatial and the temporal LoRA to ``unet`` (peft adapters "spatial" and "temporal", fresh: the
    output is unchanged until they learn), none active. Returns {path: [layer names]}."""
    import torch

    peft = _peft()
    torch.manual_seed(seed)  # peft draws the down projections from torch's global generator
    training = unet.training
    for path, parts in (("spatial", spatial_targets), ("temporal", temporal_targets)):
        config = peft.LoraConfig(r=rank, lora_alpha=rank, lora_dropout=LORA_DROPOUT, init_lora_weights="gaussian",
                                 target_modules=target_regex(path, parts))
        with warnings.catch_warnings():  # several adapters on one model is the point here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            peft.inject_adapter_in_model(config, unet, adapter_name=path)
    for name, p in unet.named_parameters():
        if ".lora_" in name:  # trained in float32 (mixed precision keeps master weights; GradScaler needs them)
            p.data = p.data.float()
        else:  # the published model stays frozen
            p.requires_grad_(False)
    unet.train(training)  # peft's new dropout layers start in training mode, whatever the model's mode
    use(unet)
    return placed(unet)


def placed(unet) -> dict:
    """{adapter: [names of the layers that carry it]}."""
    from peft.tuners.lora import LoraLayer

    out: dict[str, list[str]] = {}
    for name, m in unet.named_modules():
        if isinstance(m, LoraLayer):
            for adapter in m.lora_A:
                out.setdefault(adapter, []).append(name)
    return out


def use(unet, *adapters: str) -> None:
    """Switch on exactly ``adapters`` (none: the base model). peft's injection leaves only the adapter injected
    last active on every layer, so each layer is set explicitly; peft also flips ``requires_grad`` with it."""
    for m in lora_layers(unet):
        m.set_adapter([a for a in adapters if a in m.lora_A])


def parameters(unet, adapter: str) -> list:
    return [p for n, p in unet.named_parameters() if f".lora_A.{adapter}." in n or f".lora_B.{adapter}." in n]


# ----------------------------------------------------------------------------------------------- the loss
def debiased_loss(pred, target, anchor: int, beta: float = 1.0):
    """(plain MSE, appearance-debiased term), in float32. The debiased term compares α·x − β·x[anchor] for the
    prediction and the target (α = √(β² + 1)): subtracting one frame from every frame removes what all frames
    share (the appearance), so what is left to fit is how the frames differ — the motion."""
    import torch.nn.functional as F

    alpha = math.sqrt(beta * beta + 1)
    pred, target = pred.float(), target.float()
    debiased_pred = alpha * pred - beta * pred[:, :, anchor:anchor + 1]
    debiased_target = alpha * target - beta * target[:, :, anchor:anchor + 1]
    return F.mse_loss(pred, target), F.mse_loss(debiased_pred, debiased_target)


def draw(g, latents, timesteps: int) -> dict:
    """One step's random choices: timestep, noise, whether the spatial LoRA is masked, the spatial path's frame,
    the debiasing anchor frame."""
    import torch

    frames = latents.shape[2]
    return {"t": torch.randint(0, timesteps, (latents.shape[0],), generator=g),
            "noise": torch.randn(latents.shape, generator=g),
            "masked": bool(torch.rand(1, generator=g).item() < SPATIAL_MASK_P),
            "frame": int(torch.randint(0, frames, (1,), generator=g)),
            "anchor": int(torch.randint(0, frames, (1,), generator=g))}


def _autocast(device):
    import torch

    return torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")


def _noisy(scheduler, latents, d):
    noise, t = d["noise"].to(latents.device, latents.dtype), d["t"].to(latents.device)
    noisy = scheduler.add_noise(latents, noise, t)
    target = scheduler.get_velocity(latents, noise, t) if scheduler.config.prediction_type == "v_prediction" \
        else noise
    return noisy, target, t


def spatial_loss(unet, scheduler, latents, text, d):
    """The spatial path: one frame, spatial LoRA alone (None when this step masks it)."""
    import torch.nn.functional as F

    if d["masked"]:
        return None
    noisy, target, t = _noisy(scheduler, latents, d)
    j = d["frame"]
    use(unet, "spatial")
    with _autocast(latents.device):
        pred = unet(noisy[:, :, j:j + 1], t, encoder_hidden_states=text).sample
    return F.mse_loss(pred[:, :, 0].float(), target[:, :, j].float())


def temporal_loss(unet, scheduler, latents, text, d, debias: bool = True, adapters=None):
    """The temporal path: the whole clip, temporal LoRA with the spatial one (unless masked). Returns
    (loss, plain MSE, debiased term)."""
    noisy, target, t = _noisy(scheduler, latents, d)
    use(unet, *(adapters or (("temporal",) if d["masked"] else ("spatial", "temporal"))))
    with _autocast(latents.device):
        pred = unet(noisy, t, encoder_hidden_states=text).sample
    mse, ad = debiased_loss(pred, target, d["anchor"])
    return (mse + ad if debias else mse), mse, ad


# ----------------------------------------------------------------------------------------------- training
def _checkpointed(forward, *args, **kwargs):
    import torch.utils.checkpoint as cp

    return cp.checkpoint(forward, *args, use_reentrant=False, **kwargs)


@contextlib.contextmanager
def block_checkpointing(unet, enabled: bool = True):
    """Recompute each down/mid/up block's activations in the backward pass instead of keeping them (diffusers'
    UNet3DConditionModel.enable_gradient_checkpointing() raises in 0.42.1). Same gradients, less memory."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks] if enabled else []
    for b in blocks:
        b.forward = functools.partial(_checkpointed, b.forward)
    try:
        yield
    finally:
        for b in blocks:
            del b.forward  # back to the class's own forward


def optimizer(params, learning_rate: float, eight_bit: bool):
    import torch

    if eight_bit:
        try:
            import bitsandbytes as bnb
        except ImportError as e:
            raise ImportError("use_8bit_adam=True needs bitsandbytes (a CUDA machine: pip install bitsandbytes); "
                              "or set use_8bit_adam=False") from e
        return bnb.optim.AdamW8bit(params, lr=learning_rate, weight_decay=WEIGHT_DECAY)
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=WEIGHT_DECAY)


def probe(unet, scheduler, latents, text, draws) -> dict:
    """Each path's loss on fixed draws, in eval mode: the temporal LoRA alone on the whole clip (as it is used
    for new prompts), the spatial LoRA alone on single frames. Before/after compare like with like."""
    import torch

    training = unet.training
    unet.eval()
    with torch.no_grad():
        t = sum(temporal_loss(unet, scheduler, latents, text, d, adapters=("temporal",))[0].item() for d in draws)
        s = sum(spatial_loss(unet, scheduler, latents, text, {**d, "masked": False}).item() for d in draws)
    unet.train(training)
    return {"temporal": t / len(draws), "spatial": s / len(draws)}


def train(unet, latents, text, scheduler, steps: int, learning_rate: float, seed: int = 0, debias: bool = True,
          eight_bit: bool = False, checkpointing: bool = False, probes: int = 4, progress: bool = True) -> dict:
    """MotionDirector's dual-path tuning on one clip's latents (1, C, F, h, w). Returns the per-step losses of
    both paths and the probe losses before and after."""
    import torch
    from tqdm.auto import tqdm

    spatial, temporal = parameters(unet, "spatial"), parameters(unet, "temporal")
    opt_s, opt_t = optimizer(spatial, learning_rate, eight_bit), optimizer(temporal, learning_rate, eight_bit)
    scaler = torch.amp.GradScaler("cuda", enabled=latents.device.type == "cuda")
    g = torch.Generator().manual_seed(seed)
    n = scheduler.config.num_train_timesteps
    fixed = [draw(g, latents, n) for _ in range(probes)]
    text, latents = text.detach(), latents.detach()
    before = probe(unet, scheduler, latents, text, fixed)
    history = {"spatial": [], "temporal": [], "temporal_mse": [], "temporal_debiased": []}
    torch.manual_seed(seed)  # dropout in the LoRAs and the temporal convolutions
    unet.train()
    with block_checkpointing(unet, checkpointing):
        for _ in tqdm(range(steps), desc="dual-path tuning", disable=not progress):
            d = draw(g, latents, n)
            loss_s = spatial_loss(unet, scheduler, latents, text, d)
            # each gradient right after its own pass: the spatial weights must not change before the temporal
            # backward (the fp32 in-place trap), and a checkpointed block recomputes with the adapters it ran with
            grads_s = torch.autograd.grad(scaler.scale(loss_s), spatial) if loss_s is not None else None
            loss_t, mse, ad = temporal_loss(unet, scheduler, latents, text, d, debias)
            grads_t = torch.autograd.grad(scaler.scale(loss_t), temporal)
            for opt, params, grads in ((opt_s, spatial, grads_s), (opt_t, temporal, grads_t)):
                if grads is None:
                    continue
                for p, grad in zip(params, grads, strict=True):
                    p.grad = grad
                scaler.step(opt)
                opt.zero_grad(set_to_none=True)
            scaler.update()
            history["spatial"].append(None if loss_s is None else loss_s.item())
            history["temporal"].append(loss_t.item())
            history["temporal_mse"].append(mse.item())
            history["temporal_debiased"].append(ad.item())
    unet.eval()
    after = probe(unet, scheduler, latents, text, fixed)
    for p in spatial + temporal:
        p.requires_grad_(False)
    use(unet)
    return {"losses": history, "probe_before": before, "probe_after": after}


# ----------------------------------------------------------------------------------------------- measures
def motion_energy(frames) -> float:
    """How much a clip moves: the mean absolute change between consecutive frames (pixels in 0..1)."""
    import numpy as np

    a = np.stack([np.asarray(f.convert("RGB"), dtype=np.float32) / 255 for f in frames])
    return float(np.abs(np.diff(a, axis=0)).mean())


def appearance_gap(frames, reference) -> float:
    """How unlike ``reference`` a clip looks, motion aside: the mean absolute difference of the two clips'
    time-averaged pictures (0: the same average picture)."""
    import numpy as np

    def mean_picture(clip):
        size = reference[0].size
        return np.stack([np.asarray(f.convert("RGB").resize(size), dtype=np.float32) / 255 for f in clip]).mean(0)

    return float(np.abs(mean_picture(frames) - mean_picture(reference)).mean())


def clip_difference(a, b) -> float:
    import numpy as np

    return float(np.abs(np.stack([np.asarray(f, dtype=np.float32) for f in a])
                        - np.stack([np.asarray(f, dtype=np.float32) for f in b])).mean() / 255)


# ----------------------------------------------------------------------------------------------- memory
def counts(key: str, rank: int, spatial_targets=None, temporal_targets=None) -> dict:
    """Parameters of the published model (the catalog's) and of each LoRA at ``rank`` (meta device)."""
    import torch

    from ..hub import catalog, published

    with torch.device("meta"):
        unet = published.meta_model(key, "unet")
    out = {"frozen": catalog.ENTRIES[key].total_params}
    for path, parts in (("spatial", spatial_targets), ("temporal", temporal_targets)):
        layers = [unet.get_submodule(n) for n in selected(unet, path, parts)]
        out[path] = sum(rank * (m.in_features + m.out_features) for m in layers)
    return out


def training_bytes(c: dict, frames: int, side: int, eight_bit: bool, checkpointing: bool) -> dict:
    """What tuning needs on one GPU: the frozen model in float16, both LoRAs in float32 with gradients and AdamW's
    moments, the activations of the temporal pass (the spatial pass's graph is freed before it). The activation
    rate is Tune-A-Video's, measured on a GPU for SD 1.5 inflated with temporal layers (the nearest measured
    family; MotionDirector's UNet3D was not measured: no GPU was lent)."""
    from .tuneavideo import training_bytes as per_frame

    return per_frame(c["frozen"], c["spatial"] + c["temporal"], frames, side, side, eight_bit, checkpointing)


# ----------------------------------------------------------------------------------------------- the figure
def figure(spatial_targets=None, temporal_targets=None):
    """Where the two LoRAs sit in one UNet3D level (left) and what each path sees and fits (right)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    colours = {"spatial": "#f28e2b", "temporal": "#4e79a7", None: "#dddddd"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.35]})

    def box(ax, x, y, w, h, text, colour, size=8):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=colour, ec="#444444", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)

    chosen = {"spatial": spatial_targets or AUTHORS["spatial"], "temporal": temporal_targets or AUTHORS["temporal"]}
    layers = [("ResNet (per frame)", None, ()), ("temporal conv", None, ()),
              ("spatial transformer\n(pixels of one frame)", "spatial", ("attn1", "attn2", "ff")),
              ("temporal transformer\n(one pixel across frames)", "temporal", ("attn1", "attn2", "ff"))]
    for i, (name, path, parts) in enumerate(layers):
        y = 3 - i
        box(left, 0.0, y, 0.42, 0.8, name, "#f7f7f7")
        for k, part in enumerate(parts):
            on = path is not None and part in chosen[path]
            box(left, 0.48 + k * 0.17, y + 0.15, 0.15, 0.5, part, colours[path] if on else colours[None], 7)
    left.set_title("one UNet3D level: where the LoRAs sit", fontsize=9)
    rows = [("one random frame", "spatial LoRA only", "MSE on that frame", "absorbs the look", "spatial"),
            ("the whole clip", "temporal LoRA (learns)\n+ spatial LoRA (fixed)", "MSE + debiased\nα·ε − β·ε[anchor]",
             "learns the motion", "temporal"),
            ("a new prompt", "temporal LoRA only", "(inference)", "new subject,\nlearned motion", "temporal")]
    for i, (seen, lora, loss, learns, path) in enumerate(rows):
        y = 2 - i
        box(right, 0.0, y, 0.22, 0.75, seen, "#f7f7f7")
        box(right, 0.27, y, 0.26, 0.75, lora, colours[path])
        box(right, 0.58, y, 0.24, 0.75, loss, "#f7f7f7", 7)
        right.text(0.85, y + 0.375, learns, va="center", fontsize=8, style="italic")
    right.set_title("the two training paths, and generation", fontsize=9)
    for ax, top in ((left, 4), (right, 3)):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.1, top)
        ax.axis("off")
    fig.tight_layout()
    return fig
