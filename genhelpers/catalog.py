"""One entry per published model: where it lives, which diffusers class loads it, its licence and defaults.

A model reference in a notebook may be a catalog key (``"sdxl-base"``), the published hub id
(``"stabilityai/stable-diffusion-xl-base-1.0"``), ``"tiny:<key>"`` for the offline random-weight twin, a local
folder, or ``"kaggle:<handle>"``. Hub ids that are not in the catalog (any SDXL fine-tune) are welcome too.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    key: str
    repo: str  # the published Hugging Face repository
    cls: str  # diffusers class that loads the folder (a pipeline, or a single model such as AutoencoderKL)
    title: str
    licence: str
    licence_url: str
    paper: str = ""
    variants: tuple[str, ...] = ()  # file-name variants the repository publishes ("fp16")
    params: dict[str, int] = field(default_factory=dict)  # parameters per component (published counts)
    params_exact: bool = True  # False where the count is an estimate (see `notes`)
    defaults: dict = field(default_factory=dict)
    fp16_vae: str | None = None  # catalog key of a VAE that stays finite in float16, used by vae="auto"
    kaggle_handle: str | None = None  # Kaggle Models handle, when a mirror is known
    notes: str = ""

    @property
    def tiny(self) -> str:
        return f"tiny:{self.key}"

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


SDXL_LICENCE = "CreativeML Open RAIL++-M"

ENTRIES = {
    e.key: e
    for e in [
        Entry(
            key="sdxl-base",
            repo="stabilityai/stable-diffusion-xl-base-1.0",
            cls="StableDiffusionXLPipeline",
            title="Stable Diffusion XL base 1.0",
            licence=SDXL_LICENCE,
            licence_url="https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md",
            paper="https://arxiv.org/abs/2307.01952",
            variants=("fp16",),
            # ../shared/reference/published_counts.md
            params={"unet": 2_567_463_684, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840,
                    "vae": 83_653_863},
            defaults={"steps": 40, "guidance": 5.0, "height": 1024, "width": 1024},
            fp16_vae="sdxl-vae-fp16-fix",
        ),
        Entry(
            key="sdxl-refiner",
            repo="stabilityai/stable-diffusion-xl-refiner-1.0",
            cls="StableDiffusionXLImg2ImgPipeline",
            title="Stable Diffusion XL refiner 1.0",
            licence=SDXL_LICENCE,
            licence_url="https://huggingface.co/stabilityai/stable-diffusion-xl-refiner-1.0/blob/main/LICENSE.md",
            paper="https://arxiv.org/abs/2307.01952",
            variants=("fp16",),
            # text_encoder_2 and vae are the base model's (shared in the ensemble); only the UNet is new.
            # Counted from the recorded config in genhelpers.published (the paper says ~2.3B); no published
            # exact figure is on file to check it against, hence params_exact=False.
            params={"unet": 2_259_526_660},
            params_exact=False,
            defaults={"high_noise_frac": 0.8},
        ),
        Entry(
            key="shap-e",
            repo="openai/shap-e",
            cls="ShapEPipeline",
            title="Shap-E text-to-3D",
            licence="MIT",
            licence_url="https://github.com/openai/shap-e/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2305.02463",
            # counted from the recorded configs in genhelpers.published; no published exact figure on file
            params={"prior": 315_696_128, "text_encoder": 123_650_304, "shap_e_renderer": 226_297_286},
            params_exact=False,
            defaults={"guidance": 15.0, "steps": 64, "frame_size": 256},
        ),
        Entry(
            key="shap-e-img2img",
            repo="openai/shap-e-img2img",
            cls="ShapEImg2ImgPipeline",
            title="Shap-E image-to-3D",
            licence="MIT",
            licence_url="https://github.com/openai/shap-e/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2305.02463",
            params={"prior": 315_960_320, "image_encoder": 303_179_776, "shap_e_renderer": 226_297_286},
            params_exact=False,
            defaults={"guidance": 3.0, "steps": 64, "frame_size": 256},
        ),
        Entry(
            key="sdxl-vae-fp16-fix",
            repo="madebyollin/sdxl-vae-fp16-fix",
            cls="AutoencoderKL",
            title="SDXL VAE, fine-tuned to run in fp16 without overflow",
            licence="MIT",
            licence_url="https://huggingface.co/madebyollin/sdxl-vae-fp16-fix",
            params={"vae": 83_653_863},
            notes="SDXL's own VAE overflows in fp16 and diffusers upcasts it to fp32 for decoding; this one does not.",
        ),
    ]
}


def find(ref: str) -> Entry | None:
    """The catalog entry a reference names (by key, by published hub id, or as ``tiny:<key>``), else None."""
    if not isinstance(ref, str):
        return None
    key = ref[len("tiny:"):] if ref.startswith("tiny:") else ref
    if key in ENTRIES:
        return ENTRIES[key]
    for e in ENTRIES.values():
        if e.repo.lower() == key.lower():
            return e
    return None
