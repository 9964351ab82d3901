"""Rules that relate two parameters (``CROSS``), applied after each parameter passed its own rule."""
from __future__ import annotations

from ..errors import ParameterError
from ..hub import weights
from ..models.cross_frame import compared_within_clip
from ..outputs import tryon
from .kinds import model_ref, optional_model_ref
from .rules import RULES


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
    from ..hub import catalog

    for name, v in p.items():
        if RULES.get(name) in (model_ref, optional_model_ref) and isinstance(v, str):
            entry = catalog.find(v)
            if entry is not None and entry.pickle_only:
                raise ParameterError("allow_pickle", weights.pickle_message(f"{name}={v!r}", ["."]))


def _motion_lora_needs_the_opt_in(p):
    """motion_director: a published MotionDirector LoRA is a pickle; refused here, before any download."""
    from ..models.motiondirector_lora import is_pickle, pickle_message

    if p["allow_pickle"] is not True and is_pickle(p["motion_lora"]):
        raise ParameterError("allow_pickle", pickle_message("motion_lora", p["motion_lora"]))
# --- mvdiffusion notebook (issue 28)
def _mvdiffusion_ring(p):
    from ..models.mvdiffusion_weights import FOV_DEG, VIEWS

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
    from ..models.mvdiffusion_weights import check as check_caa

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
