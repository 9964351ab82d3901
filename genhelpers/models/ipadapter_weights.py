"""The published IP-Adapter weight file as a module: ``h94/IP-Adapter``'s ``models/ip-adapter_sd15.safetensors``
with exactly its keys, so the catalog counts it on the meta device (``hub/configs/ip-adapter-sd15``) and
``genhelpers.load`` can read and check a folder's file. Generation does not use it: ``pipe.load_ip_adapter`` reads
the file itself and turns it into diffusers' attention processors.

Published layout we follow (tencent-ailab/IP-Adapter's ``ImageProjModel`` and its saved state dict; the facts are
in tests/reference/stylecrafter/facts.json): ``image_proj.proj`` (image embedding -> num_tokens ×
cross_attention_dim, with bias), ``image_proj.norm`` (LayerNorm), and for the k-th cross-attention layer of the
UNet (k = 1, 3, 5, …: the original numbering counts every attention processor, self-attention included)
``ip_adapter.<k>.to_k_ip`` and ``ip_adapter.<k>.to_v_ip`` (no bias).
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config


class IPAdapterWeights(ModelMixin, ConfigMixin):
    """``hidden_sizes``: the width of each cross-attention layer, in the order diffusers numbers them (SD 1.5:
    down 320, 320, 640, 640, 1280, 1280; up 1280 ×3, 640 ×3, 320 ×3; mid 1280)."""

    @register_to_config
    def __init__(self, image_embeds_dim: int = 1024, cross_attention_dim: int = 768, num_tokens: int = 4,
                 hidden_sizes: tuple = ()):
        super().__init__()
        self.image_proj = torch.nn.Module()
        self.image_proj.proj = torch.nn.Linear(image_embeds_dim, num_tokens * cross_attention_dim)
        self.image_proj.norm = torch.nn.LayerNorm(cross_attention_dim)
        layers = {}
        for i, width in enumerate(hidden_sizes):
            pair = torch.nn.Module()
            pair.to_k_ip = torch.nn.Linear(cross_attention_dim, width, bias=False)
            pair.to_v_ip = torch.nn.Linear(cross_attention_dim, width, bias=False)
            layers[str(2 * i + 1)] = pair
        self.ip_adapter = torch.nn.ModuleDict(layers)

    def image_tokens(self, image_embeds):
        """The picture's extra tokens: LayerNorm(reshape(proj(image_embeds), num_tokens × cross_attention_dim))."""
        c = self.config
        tokens = self.image_proj.proj(image_embeds).reshape(-1, c.num_tokens, c.cross_attention_dim)
        return self.image_proj.norm(tokens)

    @classmethod
    def from_pretrained(cls, folder, subfolder: str = "models", weight_name: str = "ip-adapter_sd15.safetensors",
                        dtype=None, use_safetensors: bool = True, **_ignored):
        """Read a published IP-Adapter file (safetensors only); its shapes give the configuration, and every key
        must be there and nothing else (``strict``)."""
        from safetensors.torch import load_file

        if not weight_name.endswith(".safetensors") or not use_safetensors:
            raise ValueError(f"{weight_name}: genhelpers reads IP-Adapter weights as .safetensors only "
                             f"(h94/IP-Adapter publishes both; the .bin copy is a pickle)")
        state = load_file(Path(folder) / subfolder / weight_name)
        proj, norm = state["image_proj.proj.weight"], state["image_proj.norm.weight"]
        keys = sorted({int(k.split(".")[1]) for k in state if k.startswith("ip_adapter.")})
        model = cls(image_embeds_dim=proj.shape[1], cross_attention_dim=norm.shape[0],
                    num_tokens=proj.shape[0] // norm.shape[0],
                    hidden_sizes=tuple(state[f"ip_adapter.{k}.to_k_ip.weight"].shape[0] for k in keys))
        model.load_state_dict(state, strict=True)
        return model.to(dtype) if dtype is not None else model
