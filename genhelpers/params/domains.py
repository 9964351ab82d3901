"""Rules that belong to one notebook's domain: each checks with the domain's own code (imported when the rule runs,
so checking stays free of torch) or knows a model's constraints (Shap-E's ray batches, MVDiffusion's ring).
The domain keeps the check; this module only takes it into the rules table."""
from __future__ import annotations

from ..errors import ParameterError
from .kinds import _is_int, _is_number, model_ref


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


def dvae_weights(name, v):
    from ..models.dvae import check_source

    check_source(v, name)


def pairs_dir(name, v):
    """None (drawn pairs) or a folder of pictures with same-name .txt captions."""
    if v is None:
        return
    from pathlib import Path

    from ..classroom.filtering import caption_files

    if not isinstance(v, str) or not Path(v).expanduser().is_dir():
        raise ParameterError(name, f"{name}={v!r} must be None or a folder of pictures with same-name .txt captions")
    if not caption_files(v):
        raise ParameterError(name, f"{name}={v!r} holds no picture with a caption: put cat.jpg beside cat.txt "
                                   f"(the caption's text), one pair per picture")


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
    from ..models.ipadapter import check_adapter

    model_ref(name, v)
    check_adapter(name, v)


def ip_scale(name, v):
    from ..models.ipadapter import check_scale

    check_scale(name, v)


def ip_blocks(name, v):
    from ..models.ipadapter import check_blocks

    check_blocks(name, v)
def plan_json(name, v):
    """"" (the LLM plans) or a plan's JSON text; the notebook checks it against its schema in the same cell."""
    from ..models.planner import check_json_text

    check_json_text(name, v)


def base_motion(name, v):
    """One of the motion classroom's 20 kinds, by its caption."""
    from ..classroom.motion_edit import CAPTIONS

    if v not in CAPTIONS:
        import difflib

        close = difflib.get_close_matches(str(v), list(CAPTIONS), n=1)
        raise ParameterError(name, f"{name}={v!r} is not one of the generated motions"
                                   + (f" (did you mean {close[0]!r}?)" if close else "") + ": choose one of "
                                   + ", ".join(repr(c) for c in CAPTIONS))
# --- mvdiffusion notebook (issue 28) ---------------------------------------------------------------------------
def caa_weights(name, v):
    from ..models.mvdiffusion_weights import locate

    locate(v)


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


def motion_name(name, v):
    from ..classroom.poses import check_motion_name

    check_motion_name(name, v)


# MotionDirector (notebooks/motion_director.ipynb): the checks live with the LoRA code
def lora_rank(name, v):
    from ..models.motiondirector import check_rank

    check_rank(name, v)


def lora_targets(name, v):
    from ..models.motiondirector import check_targets

    check_targets(name, v)


def motion_lora(name, v):
    from ..models.motiondirector_lora import check_source

    check_source(name, v)
