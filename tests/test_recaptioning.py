"""Recaptioning's parts: the 77-token budget against the tokenizer itself, Florence-2's full-size counts against
its model card, and the twin captioner's live paths (the picture and the task reach the words)."""
import pytest

import genhelpers
from genhelpers.hub import published
from genhelpers.outputs.clipscore import token_budget
from genhelpers.outputs.images import shapes


@pytest.fixture(scope="module")
def clip_tokenizer(twins):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(twins["clip-vit-large-patch14"])


def test_token_budget_keeps_77_and_names_the_rest(clip_tokenizer):
    short = "a red fox in the snow"
    assert token_budget(clip_tokenizer, short) == {
        "tokens": len(clip_tokenizer(short)["input_ids"]), "kept": short, "cut": ""}
    long = " ".join(["a watercolor painting of a fox in a snowy forest"] * 12)
    b = token_budget(clip_tokenizer, long)
    ids = clip_tokenizer(long, verbose=False)["input_ids"]
    assert b["tokens"] == len(ids) > 77
    # what is kept is exactly what the truncating tokenizer passes to the text encoder (start/end markers aside)
    truncated = clip_tokenizer(long, truncation=True, max_length=77)["input_ids"]
    assert clip_tokenizer(b["kept"])["input_ids"][1:-1] == truncated[1:-1]
    assert len(clip_tokenizer(b["cut"])["input_ids"]) - 2 == len(ids) - 77


def test_florence_2_full_size_counts_match_the_model_card():
    """Model card: Florence-2-base 0.23 B, Florence-2-large 0.77 B parameters."""
    assert round(published.count("florence-2-base", "model") / 1e9, 2) == 0.23
    assert round(published.count("florence-2-large", "model") / 1e9, 2) == 0.77
    config = published.configs("florence-2-base")["model"]
    assert config["image_token_id"] == 51289 and config["text_config"]["vocab_size"] == 51328  # + <image>, padded


def test_the_twin_captioner_sees_the_picture_and_the_task(twins):
    from transformers import Florence2Processor

    rt = genhelpers.runtime(threads=2)
    model = genhelpers.load("tiny:florence-2-base", rt, quiet=True)
    processor = Florence2Processor.from_pretrained(twins["florence-2-base"])

    def describe(picture, task, n=16):
        inputs = processor(text=task, images=picture, return_tensors="pt")
        ids = model.generate(**inputs, max_new_tokens=n, num_beams=1, do_sample=False)
        return processor.post_process_generation(text=processor.batch_decode(ids)[0], task=task,
                                                 image_size=picture.size)[task]

    pics = list(shapes(96).values())
    by_picture = {describe(p, "<CAPTION>") for p in pics}
    assert len(by_picture) == len(pics) and all(c.strip() for c in by_picture)
    assert describe(pics[0], "<CAPTION>") != describe(pics[0], "<MORE_DETAILED_CAPTION>")
    assert "<" not in describe(pics[0], "<CAPTION>")  # task tokens and specials are parsed away
