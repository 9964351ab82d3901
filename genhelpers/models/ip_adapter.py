"""The SD1.5 IP-Adapter (Ye et al., 2023; ``h94/IP-Adapter``, Apache-2.0) as Animate Anyone's stock route uses it:
an image prompt beside the text prompt. A CLIP image embedding is projected to four extra tokens; every
cross-attention layer of the UNet gets a second key/value pair for them, and its output is the text attention's plus
``scale`` × the image attention's. diffusers loads it itself (``pipe.load_ip_adapter``); the two published pieces
(the adapter file and the ViT-H/14 image encoder in ``models/image_encoder/``) are the catalog entries
``ip-adapter-sd15`` and ``ip-adapter-image-encoder``, resolved like any weights (twin, folder, Kaggle input or the
hub, exactly the files the entries list). The adapter's parameters as a model: ``ipadapter_weights``.
"""
from __future__ import annotations

from pathlib import Path

ADAPTER_FILE = "models/ip-adapter_sd15.safetensors"


def load_ip_adapter(pipe, adapter_ref: str = "ip-adapter-sd15", encoder_ref: str = "ip-adapter-image-encoder",
                    dtype=None):
    """Give ``pipe`` (an SD1.5-based diffusers pipeline) the IP-Adapter: the image encoder and a CLIP image
    processor become its components, then diffusers' ``load_ip_adapter`` installs the adapter's attention."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    from ..hub.weights import resolve

    encoder = CLIPVisionModelWithProjection.from_pretrained(resolve(encoder_ref).path,
                                                            dtype=dtype or pipe.unet.dtype)
    pipe.register_modules(image_encoder=encoder.to(pipe.unet.device), feature_extractor=CLIPImageProcessor())
    pipe.load_ip_adapter(str(resolve(adapter_ref).path), subfolder=str(Path(ADAPTER_FILE).parent),
                         weight_name=Path(ADAPTER_FILE).name, image_encoder_folder=None)
    return pipe
