"""The SD1.5 IP-Adapter (Ye et al., 2023; ``h94/IP-Adapter``, Apache-2.0) as the stock route uses it: an image
prompt beside the text prompt. A CLIP image embedding is projected to four extra tokens; every cross-attention
layer of the UNet gets a second key/value pair for them, and its output is the text attention's plus
``scale`` × the image attention's. diffusers loads it itself (``pipe.load_ip_adapter``); this module fetches the
two published pieces (the adapter file and the ViT-H/14 image encoder in ``models/image_encoder/``), from the twin,
a folder, an attached Kaggle input or the hub, file by file (the repository holds many variants; only these are
read), and describes the adapter's weights as a model so the catalog can count them on the meta device.
"""
from __future__ import annotations

from pathlib import Path

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

ADAPTER_FILE = "models/ip-adapter_sd15.safetensors"
ENCODER_FILES = ("models/image_encoder/config.json", "models/image_encoder/model.safetensors")
FILES = {"ip-adapter-sd15": (ADAPTER_FILE,), "ip-adapter-image-encoder": ENCODER_FILES}


class IPAdapterWeights(ModelMixin, ConfigMixin):
    """The parameters of an IP-Adapter file, as modules (for counting; diffusers' loader does the real work):
    the image projection (embedding → ``num_tokens`` tokens of the cross-attention width, LayerNorm) and one
    ``to_k_ip``/``to_v_ip`` pair per cross-attention layer, of that layer's width."""

    @register_to_config
    def __init__(self, cross_attention_dim: int = 768, image_embed_dim: int = 1024, num_tokens: int = 4,
                 hidden_sizes: tuple = ()):
        import torch
        from diffusers.models.embeddings import ImageProjection

        super().__init__()
        self.image_proj = ImageProjection(image_embed_dim=image_embed_dim, cross_attention_dim=cross_attention_dim,
                                          num_image_text_embeds=num_tokens)
        self.layers = torch.nn.ModuleList(torch.nn.ModuleDict({
            "to_k_ip": torch.nn.Linear(cross_attention_dim, h, bias=False),
            "to_v_ip": torch.nn.Linear(cross_attention_dim, h, bias=False)}) for h in hidden_sizes)


def fetch(ref: str, files) -> Path:
    """The folder holding ``files`` (paths inside the published repository) for ``ref``: ``tiny:<key>`` (the
    twin), a folder, an attached Kaggle input holding them, or the hub (those files only)."""
    from ..hub import catalog
    from ..hub.weights import hub_token, offline, twin_folder
    from ..platform.folders import find_in_inputs

    ref = str(ref)
    if ref.startswith("tiny:"):
        return twin_folder(ref.removeprefix("tiny:"))
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser()
    for hit in find_in_inputs(Path(files[0]).name):
        top = hit.parents[len(Path(files[0]).parts) - 1]
        if all((top / f).is_file() for f in files):
            return top
    from huggingface_hub import hf_hub_download

    entry = catalog.find(ref)
    repo = entry.repo if entry else ref
    paths = [hf_hub_download(repo, f, token=hub_token(), local_files_only=offline()) for f in files]
    return Path(paths[0]).parents[len(Path(files[0]).parts) - 1]


def load_ip_adapter(pipe, adapter_ref: str = "ip-adapter-sd15", encoder_ref: str = "ip-adapter-image-encoder",
                    dtype=None):
    """Give ``pipe`` (an SD1.5-based diffusers pipeline) the IP-Adapter: the image encoder and a CLIP image
    processor become its components, then diffusers' ``load_ip_adapter`` installs the adapter's attention."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    encoder_dir = fetch(encoder_ref, ENCODER_FILES) / "models" / "image_encoder"
    dtype = dtype or pipe.unet.dtype
    encoder = CLIPVisionModelWithProjection.from_pretrained(encoder_dir, dtype=dtype)
    pipe.register_modules(image_encoder=encoder.to(pipe.unet.device), feature_extractor=CLIPImageProcessor())
    pipe.load_ip_adapter(str(fetch(adapter_ref, (ADAPTER_FILE,))), subfolder="models",
                         weight_name=Path(ADAPTER_FILE).name, image_encoder_folder=None)
    return pipe
