"""The kinds of value a notebook parameter can be, each a rule ``rule(name, value)`` that raises ParameterError
naming the parameter and the fix: sizes, counts, fractions, seeds, prompts, model references, files, folders, lists
of them. Notebooks share them by parameter name (``rules.RULES``)."""
from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path

from ..errors import ParameterError
from ..hub import memory, weights


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
    from ..outputs.images import open_image

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


def zero_to_one(name, v):
    if not _is_number(v) or not 0 <= v <= 1:
        raise ParameterError(name, f"{name} holds {v!r}: every value must be a number from 0 to 1")


def digit_label(name, v):
    if not _is_int(v) or not 0 <= v <= 9:
        raise ParameterError(name, f"{name} holds {v!r}: every value must be a digit from 0 to 9")


def texts(name, v):
    """A list, maybe empty, of non-empty texts."""
    if not isinstance(v, (list, tuple)):
        raise ParameterError(name, f"{name}={v!r} must be a list of texts (or [] for none), e.g. "
                                   f"{name}=['a pine forest']")
    for i, item in enumerate(v):
        prompt(f"{name}[{i}]", item)


def optional_prompts(name, v):
    if v is not None:
        list_of(prompt, "prompts, one per view", "['a kitchen', 'a window', …]")(name, v)


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


def list_of(rule, what: str, example: str):
    """A rule for a non-empty list whose every item passes ``rule`` (the list's name is given in its errors)."""
    def check(name, v):
        if not isinstance(v, (list, tuple)) or not v:
            raise ParameterError(name, f"{name}={v!r} must be a non-empty list of {what}, e.g. {name}={example}")
        for item in v:
            rule(name, item)
    return check
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
