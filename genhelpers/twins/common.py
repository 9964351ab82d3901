"""What every twin shares: offline tokenizers (CLIP byte-level BPE, T5 SentencePiece, BART), the toy text
encoder and VAE, seeding, the live-weights fix for zero-initialised paths, and a model folder with its
processors. Imports only the standard library at import time."""
from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
from pathlib import Path

SEED = 0

# ----------------------------------------------------------------------------------------------- tokenizer
VOCAB_SIZE = 1000
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_CORPUS = """
a photo of an astronaut riding a horse on the moon, a watercolor painting of a fox in a snowy forest,
portrait of an old sailor with a pipe, cinematic lighting, highly detailed, sharp focus, 8k, trending,
a cozy cabin by a lake at sunset, studio photo of a red sports car, a bowl of ramen, oil painting,
an isometric 3d render of a tiny castle, low quality, blurry, worst quality, deformed, watermark, text,
a cat wearing sunglasses on the beach, a robot reading a book in a library, neon city street at night,
a teapot shaped like a pumpkin, a dragon flying over the mountains, macro photo of a dew drop on a leaf
"""


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map, as a list indexed by byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _learn_merges(text: str, count: int) -> list[tuple[str, str]]:
    symbols = _byte_symbols()
    words = collections.Counter()
    for w in text.replace(",", " ").lower().split():
        seq = [symbols[b] for b in w.encode("utf-8")]
        seq[-1] += "</w>"
        words[tuple(seq)] += 1
    merges = []
    while len(merges) < count:
        pairs = collections.Counter()
        for seq, n in words.items():
            for pair in zip(seq, seq[1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, ties broken alphabetically
        merges.append(best)
        merged = collections.Counter()
        for seq, n in words.items():
            out, i = [], 0
            while i < len(seq):
                if seq[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def write_clip_tokenizer(folder: str | os.PathLike, pad_token: str = EOS, model_max_length: int = 77) -> Path:
    """Write a CLIP byte-level BPE tokenizer (vocab.json, merges.txt, configs) of VOCAB_SIZE ids.

    Ids 0-255 are the byte symbols, 256-511 their end-of-word forms, then learned merges, and the two special
    tokens last (998, 999) -- so the end token has the highest id, which CLIP's pooling relies on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    merges = _learn_merges(_CORPUS, VOCAB_SIZE - len(vocab) - 2)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    filler = 0
    while len(vocab) < VOCAB_SIZE - 2:  # a short corpus may run out of merges
        vocab[f"unused{filler}</w>"] = len(vocab)
        filler += 1
    vocab[BOS], vocab[EOS] = VOCAB_SIZE - 2, VOCAB_SIZE - 1
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length, "do_lower_case": True,
              **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def clip_tokenizer(pad_token: str = EOS):
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as d:
        return CLIPTokenizer.from_pretrained(write_clip_tokenizer(d, pad_token=pad_token))


# ----------------------------------------------------------------------------------------------- components
def liven(model, std: float = 0.05):
    """Give every all-zero convolution/linear weight small random values (from the seeded stream). A fresh
    ControlNet or SparseCtrl starts its conditioning embedding and output convolutions at zero, so a twin built
    that way ignores its conditioning input: a dead path no test could see. Trained weights are not zero."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)) and not m.weight.any():
                m.weight.normal_(0, std)
    return model


def checker_config():
    """The tiny CLIP a twin's safety checker is built on (SD 1.5's and DeepFloyd IF's checkers are CLIP towers)."""
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={"vocab_size": VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 4},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 14},
        projection_dim=32)


def seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def text_encoder(projection: bool = False, seed: int = SEED):
    """CLIP text transformer, hidden 32. bos/eos ids as in the published configs (eos_token_id=2 makes
    transformers pool at the highest id, i.e. at <|endoftext|>, exactly as for the real checkpoints)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=37, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=77, projection_dim=32, hidden_act="gelu",
                         bos_token_id=0, eos_token_id=2, pad_token_id=1)
    seeded(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def vae(seed: int = SEED, scaling_factor: float = 0.13025, sample_size: int = 1024, force_upcast: bool = True):
    """Four blocks like the real VAEs -> scale factor 8 (SDXL scales latents by 0.13025, SD1.5 by 0.18215)."""
    from diffusers import AutoencoderKL

    seeded(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=sample_size,
                         scaling_factor=scaling_factor, force_upcast=force_upcast).eval()


# Stable Diffusion 1.5 and the video models built on it. The SD1.5 UNet keeps the published four levels so that
# motion modules and SparseCtrl (whose block widths must equal the UNet's) plug into it as into the real one.
SD15_CHANNELS = (8, 16, 16, 16)


class ModelFolder:
    """A transformers model published together with its tokenizer and image processor in one folder (CLIP's
    byte-level BPE tokenizer is written in its published form; a full processor saves its own tokenizer)."""

    def __init__(self, model, processor, clip_tokenizer: bool = True):
        self.model, self.processor, self.clip_tokenizer = model, processor, clip_tokenizer

    def save_pretrained(self, folder, **kwargs):
        self.model.save_pretrained(folder, **kwargs)
        self.processor.save_pretrained(folder)
        if not self.clip_tokenizer:
            return
        write_clip_tokenizer(folder)
        from transformers import CLIPTokenizer  # written back once: tokenizer.json too, as the published repo has

        CLIPTokenizer.from_pretrained(folder).save_pretrained(folder)


# the text tower of the CLIP-family twins (CLIP, X-CLIP): published special-token ids, toy width
TOY_CLIP_TEXT = {"vocab_size": VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 2,
                 "pad_token_id": 1}


# ----------------------------------------------------------------------------------------------- DeepFloyd IF
# IF's tokenizer folder holds a SentencePiece model (spiece.model), as T5's does; the twin's is trained offline
# on the corpus above, so loading it goes through the same conversion (sentencepiece) as the published one.
T5_VOCAB = 160  # the twin T5's embedding rows: the SentencePiece pieces + T5's 100 sentinel tokens fit below


def write_t5_tokenizer(folder: str | os.PathLike, model_max_length: int = 77) -> Path:
    """A T5 tokenizer folder in the published form (spiece.model + tokenizer_config.json)."""
    import io

    import sentencepiece

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    lines = [x.strip() for x in _CORPUS.replace(",", "\n").splitlines() if x.strip()]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 8), model_writer=model, vocab_size=48, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2,
        hard_vocab_limit=False)
    (folder / "spiece.model").write_bytes(model.getvalue())
    config = {"tokenizer_class": "T5Tokenizer", "model_max_length": model_max_length, "extra_ids": 100,
              "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {k: config[k] for k in ("eos_token", "unk_token", "pad_token")}, indent=2))
    return folder


def t5_tokenizer():
    from transformers import T5Tokenizer

    with tempfile.TemporaryDirectory() as d:
        return T5Tokenizer.from_pretrained(write_t5_tokenizer(d))


def t5_encoder(seed: int = SEED):
    """T5-v1.1's encoder (gated GELU, relative position buckets), width 32."""
    from transformers import T5Config, T5EncoderModel

    seeded(seed)
    return T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
                                   dense_act_fn="gelu_new", is_gated_act=True, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0)).eval()


# ----------------------------------------------------------------------------------------------- Florence-2
def bart_tokenizer(extra_special_tokens: dict | None = None):
    """BART's byte-level BPE (GPT-2 style: a leading space is part of the word) learned offline on the twins'
    corpus with `tokenizers`, BART's specials at ids 0-3 (<s>, <pad>, </s>, <unk>) and <mask>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([_CORPUS] * 3, vocab_size=600, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        return BartTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             extra_special_tokens=extra_special_tokens or {})


@contextlib.contextmanager
def quiet():
    """Silence the libraries' progress bars and dtype chatter while twins are written."""
    import diffusers
    import transformers

    levels = diffusers.logging.get_verbosity(), transformers.logging.get_verbosity()
    diffusers.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers.logging.set_verbosity(levels[0])
        transformers.logging.set_verbosity(levels[1])
        transformers.logging.enable_progress_bar()
