"""Check a notebook's parameters before any model loads; every error names the parameter and the fix.

``check(**params)`` validates the parameters it has a rule for and returns them as a dict (the record that
goes into every sidecar). Rules are looked up by parameter name, so notebooks share them.
"""
from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path

from .errors import ParameterError
from .hub import memory, weights
from .models.cross_frame import compared_frames, compared_within_clip, cross_frame_alpha, scale_pair
from .outputs import tryon  # virtual_tryon's checks (imports nothing heavy)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def multiple_of_8(name, v):
    if not _is_int(v) or v <= 0:
        raise ParameterError(name, f"{name}={v!r} must be a positive whole number of pixels, e.g. {name}=1024")
    if v % 8:
        lo, hi = v - v % 8, v - v % 8 + 8
        options = f"{lo} or {hi}" if lo > 0 else f"{hi}"
        raise ParameterError(name, f"{name}={v} must be a multiple of 8 (the VAE shrinks images 8×): try {options}")


EXAMPLES = {"views": 4, "steps": 30, "num_images": 1, "batch": 1, "train_steps": 1500, "batch_size": 128}


def positive_int(name, v):
    if not _is_int(v) or v <= 0:
        raise ParameterError(name, f"{name}={v!r} must be a whole number ≥ 1, e.g. {name}={EXAMPLES.get(name, 1)}")


def non_negative_number(name, v):
    if not _is_number(v) or v < 0:
        raise ParameterError(name, f"{name}={v!r} must be a number ≥ 0 (1 turns classifier-free guidance off; "
                                   f"5-8 is usual)")


def seed(name, v):
    if not _is_int(v) or not 0 <= v < 2**63:
        raise ParameterError(name, f"{name}={v!r} must be a whole number between 0 and 2**63-1, e.g. {name}=42")


def open_fraction(name, v):
    if not _is_number(v) or not 0 < v < 1:
        raise ParameterError(name, f"{name}={v!r} must lie strictly between 0 and 1: it is where the base model "
                                   f"hands over to the refiner on the noise scale (0.8 is usual: the base takes the "
                                   f"noisiest 80 %, the refiner the rest)")


def prompt(name, v):
    if not isinstance(v, str) or not v.strip():
        raise ParameterError(name, f"{name}={v!r} is empty: describe what to generate, e.g. "
                                   f"{name}='a watercolor fox in the snow'")


def optional_text(name, v):
    if v is not None and not isinstance(v, str):
        raise ParameterError(name, f"{name}={v!r} must be text or None")


def model_ref(name, v):
    try:
        weights.kind_of(v)
    except ValueError as e:
        raise ParameterError(name, str(e).replace("model=", f"{name}=", 1)) from None


def optional_model_ref(name, v):
    if v is not None and v != "auto":
        model_ref(name, v)


def memory_request(name, v):
    if v != "auto" and v not in memory.PLANS:
        raise ParameterError(name, f"{name}={v!r} is not a plan: use 'auto' or one of {', '.join(memory.PLANS)}")


def threads(name, v):
    if v is not None and (not _is_int(v) or v < 1):
        raise ParameterError(name, f"{name}={v!r} must be None (torch's default) or a number of threads ≥ 1")


def render_size(name, v):
    """Shap-E renders its 20 turntable views in batches of 4096 rays and drops a remainder, so the side must
    be a multiple of 32 (20 * side**2 divisible by 4096)."""
    if not _is_int(v) or v < 32 or v % 32:
        lo = max(32, (v // 32) * 32) if _is_int(v) and v > 0 else 32
        options = f"{lo} or {lo + 32}" if _is_int(v) and v > 32 else "32 or 64"
        raise ParameterError(name, f"{name}={v!r} is not supported: Shap-E renders 20 views in batches of 4096 rays, "
                                   f"so it must be a multiple of 32 — try {options} (256 is the published setting)")


def samples_pair(name, v):
    if (not isinstance(v, (list, tuple)) or len(v) != 2 or not all(_is_int(x) and x >= 1 for x in v)):
        raise ParameterError(name, f"{name}={v!r} must be two whole numbers ≥ 1 [coarse, fine] samples per ray, "
                                   f"e.g. {name}=[64, 128] (the published setting)")


def grid_size(name, v):
    if not _is_int(v) or not 8 <= v <= 512:
        raise ParameterError(name, f"{name}={v!r} must be a whole number of grid cells per side between 8 and 512 "
                                   f"(128 is the published setting; the cost grows with its cube)")


def positive_number(name, v):
    if not _is_number(v) or v <= 0:
        raise ParameterError(name, f"{name}={v!r} must be a number > 0, e.g. {name}=10")


def choice(*options):
    def rule(name, v):
        if v not in options:
            raise ParameterError(name, f"{name}={v!r} must be one of " + ", ".join(repr(o) for o in options))
    return rule


def optional_positive_int(name, v):
    if v is not None:
        positive_int(name, v)


def flag(name, v):
    if not isinstance(v, bool):
        raise ParameterError(name, f"{name}={v!r} must be True or False")


def whole_number(name, v):
    if not _is_int(v) or v < 0:
        raise ParameterError(name, f"{name}={v!r} must be a whole number ≥ 0")


def frame_indices(name, v):
    if not isinstance(v, (list, tuple)) or not v or not all(_is_int(i) for i in v) or len(set(v)) != len(v):
        raise ParameterError(name, f"{name}={v!r} must be a list of distinct frame numbers, e.g. {name}=[0, 8, 15]")


def image_files(name, v):
    """None (drawn by genhelpers) or a list of readable image files."""
    if v is None:
        return
    if not isinstance(v, (list, tuple)) or not v:
        raise ParameterError(name, f"{name}={v!r} must be None or a list of image paths")
    for i, path in enumerate(v):
        image_file(f"{name}[{i}]", path)


def unit_fraction(name, v):
    if not _is_number(v) or not 0 <= v < 1:
        raise ParameterError(name, f"{name}={v!r} must be a number from 0 up to (not including) 1")


def image_file(name, v):
    """None (the demo picture) or a readable image file."""
    if v is None:
        return
    from .outputs.images import open_image

    try:
        open_image(v, name)
    except ValueError as e:
        raise ParameterError(name, str(e)) from None


def elevation_deg(name, v):
    if not _is_number(v) or not -90 <= v <= 90:
        raise ParameterError(name, f"{name}={v!r} must be an angle in degrees from -90 (below) to 90 (above the "
                                   f"object), e.g. {name}=15")


def angle_deg(name, v):
    if not _is_number(v):
        raise ParameterError(name, f"{name}={v!r} must be an angle in degrees, e.g. {name}=0")


def writable_dir(name, v):
    """The folder must exist or be creatable, and accept a file. Only an empty folder may be created here."""
    if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
        raise ParameterError(name, f"{name}={v!r} must be a folder path, e.g. {name}='outputs'")
    path = Path(v).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        hint = "/kaggle/working/outputs" if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") else "outputs"
        raise ParameterError(name, f"{name}={str(v)!r} is not writable ({e.strerror or e}): choose a folder you "
                                   f"can write to, e.g. {name}={hint!r}") from None


def dvae_weights(name, v):
    from .models.dvae import check_source

    check_source(v, name)


def pairs_dir(name, v):
    """None (drawn pairs) or a folder of pictures with same-name .txt captions."""
    if v is None:
        return
    from pathlib import Path

    from .classroom.filtering import caption_files

    if not isinstance(v, str) or not Path(v).expanduser().is_dir():
        raise ParameterError(name, f"{name}={v!r} must be None or a folder of pictures with same-name .txt captions")
    if not caption_files(v):
        raise ParameterError(name, f"{name}={v!r} holds no picture with a caption: put cat.jpg beside cat.txt "
                                   f"(the caption's text), one pair per picture")


def zero_to_one(name, v):
    if not _is_number(v) or not 0 <= v <= 1:
        raise ParameterError(name, f"{name} holds {v!r}: every value must be a number from 0 to 1")


def digit_label(name, v):
    if not _is_int(v) or not 0 <= v <= 9:
        raise ParameterError(name, f"{name} holds {v!r}: every value must be a digit from 0 to 9")


def humanml3d_dir(name, v):
    """None (the generated motions only) or a prepared HumanML3D folder."""
    if v is None:
        return
    from pathlib import Path

    folder = Path(str(v)).expanduser()
    missing = [p for p in ("new_joints", "texts", "test.txt") if not (folder / p).exists()]
    if missing:
        raise ParameterError(name, f"{name}={v!r} is not a prepared HumanML3D folder (missing {', '.join(missing)}): "
                                   f"build it with HumanML3D's own scripts from AMASS (licence-gated), or None")


# stylecrafter: IP-Adapter's scales and InstantStyle's blocks (the checks live with the model code; imported when
# used, so this module stays free of torch)
def ip_adapter_ref(name, v):
    from .models.ipadapter import check_adapter

    model_ref(name, v)
    check_adapter(name, v)


def ip_scale(name, v):
    from .models.ipadapter import check_scale

    check_scale(name, v)


def ip_blocks(name, v):
    from .models.ipadapter import check_blocks

    check_blocks(name, v)
def plan_json(name, v):
    """"" (the LLM plans) or a plan's JSON text; the notebook checks it against its schema in the same cell."""
    from .models.planner import check_json_text

    check_json_text(name, v)


def texts(name, v):
    """A list, maybe empty, of non-empty texts."""
    if not isinstance(v, (list, tuple)):
        raise ParameterError(name, f"{name}={v!r} must be a list of texts (or [] for none), e.g. "
                                   f"{name}=['a pine forest']")
    for i, item in enumerate(v):
        prompt(f"{name}[{i}]", item)


def base_motion(name, v):
    """One of the motion classroom's 20 kinds, by its caption."""
    from .classroom.motion_edit import CAPTIONS

    if v not in CAPTIONS:
        import difflib

        close = difflib.get_close_matches(str(v), list(CAPTIONS), n=1)
        raise ParameterError(name, f"{name}={v!r} is not one of the generated motions"
                                   + (f" (did you mean {close[0]!r}?)" if close else "") + ": choose one of "
                                   + ", ".join(repr(c) for c in CAPTIONS))
# --- mvdiffusion notebook (issue 28) ---------------------------------------------------------------------------
def caa_weights(name, v):
    from .models.mvdiffusion_weights import locate

    locate(v)


def optional_prompts(name, v):
    if v is not None:
        list_of(prompt, "prompts, one per view", "['a kitchen', 'a window', …]")(name, v)


def field_of_view(name, v):
    if not _is_number(v) or not 0 < v < 180:
        raise ParameterError(name, f"{name}={v!r} is out of range: a perspective camera's field of view lies strictly "
                                   f"between 0 and 180 degrees (MVDiffusion's views: 90)")


def strip_width(name, v):
    if not _is_int(v) or v <= 512 or v % 64:
        lo = max(576, (v // 64) * 64) if _is_int(v) and v > 0 else 576
        raise ParameterError(name, f"{name}={v!r} must be a multiple of 64 above 512: MultiDiffusion's windows are "
                                   f"512 px wide and step by 64 px, so a strip of 512 or less is one window with no "
                                   f"360° wrap (try {lo} or {lo + 64}; 2048 is a 360° × 90° strip at 512 px)")


def int_range(lo: int, hi: int, why: str):
    def rule(name, v):
        if not _is_int(v) or not lo <= v <= hi:
            raise ParameterError(name, f"{name}={v!r} must be a whole number from {lo} to {hi} ({why})")
    return rule


def multiple_of_64(name, v):
    if not _is_int(v) or v <= 0 or v % 64:
        lo = (v // 64) * 64 if _is_int(v) and v > 0 else 0
        options = f"{lo} or {lo + 64}" if lo else "64"
        raise ParameterError(name, f"{name}={v!r} must be a positive multiple of 64 (the VAE shrinks 8×, the UNet "
                                   f"halves that three times): try {options}")


def optional_clip(name, v):
    if v is None:
        return
    if not isinstance(v, (str, os.PathLike)) or not Path(v).exists():
        raise ParameterError(name, f"{name}={v!r} is not a file or folder here: give an MP4/GIF, a folder of "
                                   f"frames, or None for the project's drawn clip")


def motion_name(name, v):
    from .classroom.poses import check_motion_name

    check_motion_name(name, v)


def list_of(rule, what: str, example: str):
    """A rule for a non-empty list whose every item passes ``rule`` (the list's name is given in its errors)."""
    def check(name, v):
        if not isinstance(v, (list, tuple)) or not v:
            raise ParameterError(name, f"{name}={v!r} must be a non-empty list of {what}, e.g. {name}={example}")
        for item in v:
            rule(name, item)
    return check


# MotionDirector (notebooks/motion_director.ipynb): the checks live with the LoRA code
def lora_rank(name, v):
    from .models.motiondirector import check_rank

    check_rank(name, v)


def lora_targets(name, v):
    from .models.motiondirector import check_targets

    check_targets(name, v)


def motion_lora(name, v):
    from .models.motiondirector_lora import check_source

    check_source(name, v)
def sweep_of(rule, what: str, example: str):
    """A rule for the values a lesson compares: a list (empty: the comparison is left out) whose every item passes
    ``rule``."""
    def check(name, v):
        if not isinstance(v, (list, tuple)):
            raise ParameterError(name, f"{name}={v!r} must be a list of {what}, e.g. {name}={example} ([] leaves "
                                       f"the comparison out)")
        for item in v:
            rule(name, item)
    return check


RULES = {
    "height": multiple_of_8,
    "width": multiple_of_8,
    "steps": positive_int,
    "num_images": positive_int,
    "guidance": non_negative_number,
    "seed": seed,
    "high_noise_frac": open_fraction,
    "prompt": prompt,
    "negative_prompt": optional_text,
    "model": model_ref,
    "refiner": optional_model_ref,
    "vae": optional_model_ref,
    "memory": memory_request,
    "cpu_threads": threads,
    "output_dir": writable_dir,
    "frame_size": render_size,
    "render_samples": samples_pair,
    "mesh_grid": grid_size,
    "batch": positive_int,
    "fps": positive_number,
    "image_guidance": non_negative_number,
    "image": image_file,
    "mode": choice("text", "image", "both"),
    "text_model": model_ref,
    "image_model": model_ref,
    "base_model": model_ref,
    "adapter": model_ref,
    "sparsectrl_model": model_ref,
    "frames": positive_int,
    "decode_chunk_size": optional_positive_int,
    "motion_bucket_id": whole_number,
    "noise_aug_strength": non_negative_number,
    "min_guidance": non_negative_number,
    "max_guidance": non_negative_number,
    "controlnet_scale": non_negative_number,
    "sparsectrl": flag,
    "conditioning_frames": frame_indices,
    "conditioning_images": image_files,
    "train_steps": positive_int,
    "batch_size": positive_int,
    "learning_rate": positive_number,
    "p_uncond": unit_fraction,
    "ema_decay": unit_fraction,
    "sample_steps": positive_int,
    "samples_per_class": positive_int,
    "clip_model": model_ref,
    "embed_dim": positive_int,
    "controlnet": flag,
    "controlnet_model": model_ref,
    "depth_image": image_file,
    "views": positive_int,
    "elevation": elevation_deg,
    "azimuth_start": angle_deg,
    "models": list_of(model_ref, "model references", "['stable-diffusion-v1-5/stable-diffusion-v1-5']"),
    "sizes": list_of(multiple_of_8, "image sides in pixels, one per model", "[512, 768]"),
    "prompts": list_of(prompt, "prompts", "['a red fox']"),
    "guidance_sweep": list_of(non_negative_number, "numbers", "[1.0, 4.0, 7.5]"),
    "sweep_model": model_ref,
    "allow_pickle": flag,
    # Tune-A-Video
    "clip": optional_clip,
    "caption": prompt,
    "edits": list_of(prompt, "edited captions", "['a blue cube bouncing on a green lawn']"),
    "size": multiple_of_64,
    "gradient_checkpointing": flag,
    "use_8bit_adam": flag,
    "inversion_steps": positive_int,
    # DALL·E's dVAE
    "dvae_weights": dvae_weights,
    "images": image_files,
    "noise_fraction": unit_fraction,
    # CLIP filtering
    "wrong_share": unit_fraction,
    "max_loss": unit_fraction,
    "pairs_dir": pairs_dir,
    "threshold": unit_fraction,
    # video CLIP (Open-VCLIP)
    "clip_steps": positive_int,
    "video_steps": positive_int,
    "alphas": list_of(zero_to_one, "interpolation weights from 0 to 1", "[0, 0.5, 1]"),
    "seen_digits": list_of(digit_label, "digits", "[0, 1, 2, 3, 4]"),
    "xclip_model": model_ref,
    "video": optional_clip,
    "labels": list_of(prompt, "class captions", "['a ball bouncing', 'a person dancing']"),
    # text-to-motion retrieval (TMR)
    "train_motions": int_range(64, 100_000, "generated motions to train on"),
    "test_motions": int_range(32, 10_000, "generated motions in the retrieval gallery (≥ 32: one small batch)"),
    "queries": list_of(prompt, "sentences", "['a person waves the left hand twice']"),
    "top_k": int_range(1, 10, "retrieved motions shown per query"),
    "humanml3d_dir": humanml3d_dir,
    # recaptioning
    "caption_model": model_ref,
    "sd_model": model_ref,
    "short_task": choice("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>"),
    "detailed_task": choice("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>"),
    "max_new_tokens": int_range(8, 1024, "the longest caption the captioner may write, in tokens"),
    "num_beams": int_range(1, 8, "beam search width: 3 is Florence-2's published setting, 1 is greedy"),
    # unCLIP (Karlo)
    "variations_model": model_ref,
    "second_prompt": prompt,
    # UnCLIPScheduler spaces its steps by (1000 - 1) / (steps - 1): one step divides by zero inside diffusers
    "prior_steps": int_range(2, 1000, "unCLIP's scheduler needs at least 2 steps"),
    "decoder_steps": int_range(2, 1000, "unCLIP's scheduler needs at least 2 steps"),
    "super_res_steps": int_range(2, 1000, "unCLIP's scheduler needs at least 2 steps"),
    "prior_guidance": non_negative_number,
    "decoder_guidance": non_negative_number,
    "num_variations": int_range(1, 8, "how many variations of the picture to paint (each costs a decoder run)"),
    "interpolation_steps": int_range(2, 16, "pictures along the walk between two embeddings, both ends included"),
    # DeepFloyd IF's cascade
    "stage_1": model_ref,
    "stage_2": optional_model_ref,
    "stage_3": optional_model_ref,
    "steps_1": positive_int,
    "steps_2": positive_int,
    "steps_3": positive_int,
    "guidance_1": non_negative_number,
    "guidance_2": non_negative_number,
    "guidance_3": non_negative_number,
    "noise_level_2": int_range(0, 999, "the noise added to stage I's image before stage II sharpens it; 250 is "
                                       "IF's default"),
    "noise_level_3": int_range(0, 350, "the noise added to stage II's image before the x4 upscaler; the "
                                       "upscaler was trained up to 350, 100 is usual"),
    # stylecrafter (IP-Adapter + InstantStyle on AnimateDiff)
    "ip_adapter": ip_adapter_ref,
    "style_image": image_file,
    "ip_adapter_scale": ip_scale,
    "style_blocks": ip_blocks,
    "still_image": flag,
    # virtual try-on (CatVTON)
    "person": image_file,
    "garment": image_file,
    "mask": tryon.check_mask_source,
    "mask_box": tryon.check_box,
    "attention_model": model_ref,
    "attention_version": choice("mix", "vitonhd", "dresscode"),
    "repaint": flag,
    # MotionDirector (motion_director)
    "lora_rank": lora_rank,
    "spatial_targets": lora_targets,
    "temporal_targets": lora_targets,
    "debiased_loss": flag,
    "motion_lora": motion_lora,
    # the planner's instruct LLM and a plan edited by hand (issue 27: procedural_3d, motion_editing, gpt4motion)
    "llm": model_ref,
    "plan_json": plan_json,
    # gpt4motion (issue 27): SDXL's two ControlNets, GPT4Motion's cross-frame attention
    "depth_model": model_ref,
    "edge_model": model_ref,
    "controlnet_scales": scale_pair,
    "alpha": cross_frame_alpha,
    "chunk": positive_int,
    "compare_frames": compared_frames,
    # procedural_3d (3D-GPT's idea)
    "terrain_grid": int_range(16, 256, "heightfield samples per side of the land: 64 on a CPU, 128 is fine on Kaggle"),
    "preview_size": int_range(64, 1024, "the turntable's side in pixels"),
    "free_tries": int_range(0, 15, "free-form tries for the comparison; the authors retried up to 15 times"),
    "free_tokens": int_range(16, 2000, "the longest free-form answer, in tokens"),
    "eval_prompts": texts,
    # motion_editing (Iterative Motion Editing)
    "base_motion": base_motion,
    "instructions": list_of(prompt, "sentences", "['lift the left knee higher', 'even higher']"),
    "target_caption": prompt,
    # MVDiffusion (mvdiffusion notebook)
    "caa_weights": caa_weights,
    "view_prompts": optional_prompts,
    "training_prefix": flag,
    "fov_deg": field_of_view,
    "yaw_offset": angle_deg,  # any angle: the ring is turned by it (training drew it at random), wrapped to 0-360
    "strip_width": strip_width,
    # Animate Anyone (animate_anyone notebook)
    "image_encoder": model_ref,
    "reference_image": image_file,
    "motion": motion_name,
    "pose_images": image_files,
    "compare_reference": flag,
    "stock_route": flag,
    "stock_guidance": non_negative_number,
    "ip_adapter_encoder": model_ref,
    # (animate_anyone also reads "ip_adapter" and "ip_adapter_scale": the stylecrafter rules above)
    # issue 29: the values each lesson's on/off comparison sweeps ([] leaves it out)
    "refiner_sweep": sweep_of(open_fraction, "hand-over points between 0 and 1", "[0.7, 0.8, 0.9]"),
    "compare_steps": int_range(0, 100_000, "training steps of each model the comparison trains; 0 leaves it out"),
    "noise_fractions": sweep_of(unit_fraction, "shares of tokens from 0 to 1", "[0.05, 0.1, 0.2]"),
    "mesh_grids": sweep_of(grid_size, "grid sizes (cells per side)", "[32, 64, 128]"),
    "motion_sweep": sweep_of(int_range(0, 255, "motion_bucket_id values: SVD was trained with 0 to 255"),
                             "motion_bucket_id values from 0 to 255", "[30, 127, 220]"),
    "noise_sweep_2": sweep_of(int_range(0, 999, "noise levels added to stage I's image before stage II"),
                              "noise levels from 0 to 999", "[0, 250, 500]"),
}


def _indices_in_clip(p):
    bad = [i for i in p["conditioning_frames"] if not 0 <= i < p["frames"]]
    if bad:
        raise ParameterError("conditioning_frames", f"conditioning_frames={p['conditioning_frames']!r}: frame(s) {bad} "
                                                    f"lie outside the clip of frames={p['frames']} (use 0 to "
                                                    f"{p['frames'] - 1})")


def _guidance_range(p):
    if p["min_guidance"] > p["max_guidance"]:
        raise ParameterError("min_guidance", f"min_guidance={p['min_guidance']} is above max_guidance="
                                             f"{p['max_guidance']}: the guidance ramps from min to max over the clip")


def _one_image_per_index(p):
    if p["conditioning_images"] is not None and len(p["conditioning_images"]) != len(p["conditioning_frames"]):
        raise ParameterError("conditioning_images", f"conditioning_images has {len(p['conditioning_images'])} "
                                                    f"image(s) but conditioning_frames names "
                                                    f"{len(p['conditioning_frames'])} frame(s): give one per frame")


def _one_size_per_model(p):
    if len(p["sizes"]) != len(p["models"]):
        raise ParameterError("sizes", f"sizes has {len(p['sizes'])} value(s) but models names {len(p['models'])}: "
                                      f"give each model its native side (SD 1.5 and 2.1-base 512, SD 2.1 768)")


def _sweep_model_is_compared(p):
    if p["sweep_model"] not in p["models"]:
        raise ParameterError("sweep_model", f"sweep_model={p['sweep_model']!r} is not one of models: the sweep "
                                            f"reuses a loaded model, choose one of {p['models']}")


def _some_digits_unseen(p):
    seen = p["seen_digits"]
    if len(set(seen)) != len(seen) or len(set(seen)) >= 10:
        raise ParameterError("seen_digits", f"seen_digits={seen!r} must list distinct digits and leave at least one "
                                            f"out: the digits left out are the unseen classes the α curve measures")


def _cascade_in_order(p):
    if p["stage_3"] and not p["stage_2"]:
        raise ParameterError("stage_3", f"stage_3={p['stage_3']!r} needs stage_2: the x4 upscaler enlarges stage II's "
                                        f"256 px image (set stage_3=None to stop at 64 px)")


def _pickles_need_the_opt_in(p):
    """A model the catalog knows as pickle-only, in a notebook that has the allow_pickle switch: refused here,
    before anything is imported or written, rather than by the loader later."""
    if p["allow_pickle"] is True:
        return
    from .hub import catalog

    for name, v in p.items():
        if RULES.get(name) in (model_ref, optional_model_ref) and isinstance(v, str):
            entry = catalog.find(v)
            if entry is not None and entry.pickle_only:
                raise ParameterError("allow_pickle", weights.pickle_message(f"{name}={v!r}", ["."]))


def _motion_lora_needs_the_opt_in(p):
    """motion_director: a published MotionDirector LoRA is a pickle; refused here, before any download."""
    from .models.motiondirector_lora import is_pickle, pickle_message

    if p["allow_pickle"] is not True and is_pickle(p["motion_lora"]):
        raise ParameterError("allow_pickle", pickle_message("motion_lora", p["motion_lora"]))
# --- mvdiffusion notebook (issue 28)
def _mvdiffusion_ring(p):
    from .models.mvdiffusion_weights import FOV_DEG, VIEWS

    if p["views"] != VIEWS or p["fov_deg"] != FOV_DEG:
        name = "views" if p["views"] != VIEWS else "fov_deg"
        raise ParameterError(name, f"views={p['views']}, fov_deg={p['fov_deg']}: MVDiffusion's released weights were "
                                   f"trained only on {VIEWS} views of {FOV_DEG:g}° at 45° steps (the attention code "
                                   f"itself would run on any ring of 3 or more views, but no weights exist for it): "
                                   f"set views={VIEWS}, fov_deg={FOV_DEG:g}")


def _one_prompt_per_view(p):
    if p["view_prompts"] is not None and len(p["view_prompts"]) != p["views"]:
        raise ParameterError("view_prompts", f"view_prompts has {len(p['view_prompts'])} prompt(s) for views="
                                             f"{p['views']}: give one per view (view 0 first, turning right), or "
                                             f"None to use prompt for every view")


def _caa_needs_the_opt_in(p):
    from .models.mvdiffusion_weights import check as check_caa

    check_caa(p["caa_weights"], p["allow_pickle"] is True)
MAX_CLIP_FRAMES = 24  # Animate Anyone: Moore's one context window (longer clips need its overlapping windows)


def _one_pose_per_frame(p):
    if not 1 <= p["frames"] <= MAX_CLIP_FRAMES:
        raise ParameterError("frames", f"frames={p['frames']} must be 1 to {MAX_CLIP_FRAMES}: the clip is denoised in "
                                       f"one window (Moore-AnimateAnyone's longer clips use overlapping windows of 24, "
                                       f"which this notebook does not implement)")
    if p["pose_images"] is not None and len(p["pose_images"]) != p["frames"]:
        raise ParameterError("pose_images", f"pose_images has {len(p['pose_images'])} picture(s) but frames="
                                            f"{p['frames']}: give one pose per frame (or set frames="
                                            f"{len(p['pose_images'])}, or pose_images=None to draw the motion)")


# rules that relate two parameters, applied after each parameter passed its own rule
CROSS = [
    (("conditioning_frames", "frames"), _indices_in_clip),
    (("min_guidance", "max_guidance"), _guidance_range),
    (("conditioning_images", "conditioning_frames"), _one_image_per_index),
    (("sizes", "models"), _one_size_per_model),
    (("sweep_model", "models"), _sweep_model_is_compared),
    (("stage_3", "stage_2"), _cascade_in_order),
    (("seen_digits",), _some_digits_unseen),
    (("allow_pickle",), _pickles_need_the_opt_in),
    # virtual_tryon (CatVTON)
    (("mask", "person"), tryon.mask_fits_person),
    (("mask", "person", "mask_box", "height", "width"), tryon.mask_marks_something),
    (("motion_lora", "allow_pickle"), _motion_lora_needs_the_opt_in),  # motion_director
    (("views", "fov_deg"), _mvdiffusion_ring),  # mvdiffusion
    (("view_prompts", "views"), _one_prompt_per_view),  # mvdiffusion
    (("caa_weights", "allow_pickle"), _caa_needs_the_opt_in),  # mvdiffusion
    (("compare_frames", "frames"), compared_within_clip),  # gpt4motion
    (("pose_images", "frames"), _one_pose_per_frame),  # animate_anyone
]


def check(**params) -> dict:
    """Validate every parameter that has a rule, then the rules relating two parameters, and output_dir last
    (the only check that writes); return the parameters as a plain dict."""
    for name, value in params.items():
        if name != "output_dir" and name in RULES:
            RULES[name](name, value)
    for names, rule in CROSS:
        if all(n in params for n in names):
            rule(params)
    if "output_dir" in params:
        writable_dir("output_dir", params["output_dir"])
    return dict(params)
