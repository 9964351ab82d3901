"""Twins of the instruct language models the planner asks (``genhelpers.models.planner``): Qwen2.5-Instruct.

The twin is the published class (``Qwen2ForCausalLM``, 2 layers, width 64, random weights from a fixed seed) with
a byte-level BPE tokenizer trained here, offline, with ``tokenizers`` on the planners' own words (schema field
names, options, digits, JSON punctuation). It is written under the published file names (config.json,
generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json, vocab.json, merges.txt) and
loads through ``AutoTokenizer`` / ``AutoModelForCausalLM`` like the real model.

Two details keep it honest:

* the tokenizer is trained with Qwen's own pre-tokenizer (its split regex, then byte-level), because
  transformers' ``Qwen2Tokenizer`` rebuilds that pre-tokenizer on load: a twin trained with another one would
  tokenise differently once loaded (digits, for one, are single pre-tokens, so numbers are read digit by digit);
* its generation config mirrors the published sampling defaults (``do_sample`` true, temperature 0.7, top-p 0.8,
  top-k 20, repetition penalty 1.1), so the planner's explicit greedy, penalty-free settings are exercised.

The chat template is our own text in the ChatML form the published model was trained on
(``<|im_start|>role\\ncontent<|im_end|>\\n``); it is not Qwen's template.
"""
from __future__ import annotations

import json
from pathlib import Path

from .common import SEED, seeded

# The pre-tokenizer regex of Qwen2Tokenizer in transformers 5.24 (tests/reference/planner/facts.json)
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
# The planners' words: what the twin's vocabulary is learned from (any other text still tokenises, byte by byte).
_CORPUS = """
You fill a JSON plan. Use only the listed options and ranges. Description: a pine forest on a hill at dusk.
{"terrain":{"type":"hills","relief_m":12,"size_m":60,"material":"grass","water":false,"water_level":0.2},
"trees":[{"kind":"pine","count":24,"height_m":9.5,"crown":"cone","leaf_colour":"green","fruit":"none"}],
"rocks":{"count":6,"size_m":1.2,"roughness":0.4,"colour":"grey"},"flowers":{"count":30,"petals":5},
"sky":{"sun_elevation_deg":8,"sun_azimuth_deg":135,"cloud_cover":0.2,"haze":0.3},"snow":true,"rain":false}
plain hills mountain desert canyon coast arctic forest floor dirt sand snow stone mud ice broadleaf palm birch dead
round umbrella none apple orange berry pink red yellow white purple blue brown black grey sandstone dark dry
{"op":"rotate","joint":"left_knee","direction":"flex","time":{"anchor":"when_joint","moment":"highest"}}
{"op":"translate","joint":"right_hand","direction":"up","amount":"large","frame":12,"is_verb":true}
{"op":"change_speed","speed":"slow","start":"start","end":"middle","base":"latest","undo":false}
left_shoulder right_shoulder left_elbow right_elbow left_hip right_hip left_knee right_knee waist head ground
extend abduct adduct forward backward towards above in_front next_to contact fast pause small normal large
lowest furthest_from_body closest_to_body before_joint entire end start middle frame
{"objects":[{"shape":"ball","size":0.12,"aspect":"cube","mass":0.6,"restitution":0.8,"x":0,"y":0,"z":2.0,
"vx":0,"vy":0,"vz":0,"spin":0,"colour":"orange"}],"floor_restitution":1.0,"camera":"front","scene_words":"court"}
box flat tall side top street table grass studio green 0 1 2 3 4 5 6 7 8 9 10 0.5 -2.5 12.75 100 true false
"""


def train_tokenizer():
    """A byte-level BPE with Qwen's pre-tokenizer and ChatML specials (the last ids), as a ``tokenizers`` object."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    tok.train_from_iterator(lines * 20, trainer=trainer)
    tok.add_special_tokens(list(SPECIALS))
    return tok


def write_tokenizer(folder: str | Path, tok=None) -> dict[str, int]:
    """tokenizer.json, vocab.json + merges.txt and tokenizer_config.json (Qwen2Tokenizer, pad <|endoftext|>,
    eos <|im_end|>, no bos, our ChatML template). Returns the special tokens' ids."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = tok or train_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))  # vocab.json + merges.txt
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    config = {
        "tokenizer_class": "Qwen2Tokenizer", "add_prefix_space": False, "errors": "replace",
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
        "model_max_length": 32768, "split_special_tokens": False, "clean_up_tokenization_spaces": False,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "added_tokens_decoder": {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for s, i in ids.items()},
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return ids


class LLMFolder:
    """A causal LM and its tokenizer, written in one folder as the published repository has them."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def save_pretrained(self, folder, **kwargs):
        self.model.save_pretrained(folder, **kwargs)  # config.json, generation_config.json, model.safetensors
        write_tokenizer(folder, self.tokenizer)


def qwen2_5_instruct(seed: int = SEED + 70):
    """Qwen/Qwen2.5-*-Instruct at toy width: Qwen2ForCausalLM, 2 layers, hidden 64, 4 query / 2 key-value heads
    (grouped-query attention as published), tied embeddings, q/k/v biases; random weights from ``seed``."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = train_tokenizer()
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1_000_000.0,
        rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False, sliding_window=None,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    seeded(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.1)
    return LLMFolder(model, tok)


BUILDERS = {  # twin key (the catalog's) -> the function that builds it
    "qwen2.5-1.5b-instruct": qwen2_5_instruct,
}
