import numpy as np
import pytest
import torch

from genhelpers.classroom import digits


@pytest.fixture(scope="module")
def data():
    return digits.split(0)


def test_split_is_stratified_and_fixed(data):
    assert len(data.train_x) == 1437 and len(data.test_x) == 360
    assert np.bincount(data.test_y).min() >= 35  # every class held out
    again = digits.split(0)
    assert np.array_equal(again.test_x, data.test_x)


def test_judge_reads_real_digits(data):
    clf, acc = digits.judge(data)
    assert acc >= 0.97
    assert digits.accuracy(clf, data.test_x, data.test_y) == acc
    assert digits.accuracy(clf, data.test_x, (data.test_y + 1) % 10) < 0.05  # wrong labels score near zero


def test_model_space_round_trip(data):
    x = digits.to_model(data.train_x[:5])
    assert x.shape == (5, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.allclose(digits.to_pixels(x), data.train_x[:5], atol=1e-5)
    assert digits.to_pixels(torch.full((1, 1, 8, 8), 5.0)).max() == 16  # clipped


def test_novelty_tells_copies_from_new_digits(data):
    copies = digits.novelty(data.train_x[:50], data)
    assert copies["generated_to_train"] == 0
    assert copies["heldout_to_train"] > 10


def test_picture_layout(data):
    img = digits.picture(data.train_x[:12], cols=6, scale=2)
    assert img.size == ((6 * 9 + 1) * 2, (2 * 9 + 1) * 2)
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_caption_tokenizer_ids():
    tok = digits.caption_tokenizer(["a handwritten seven", "the digit 7"])
    ids = tok("a handwritten seven").input_ids
    assert ids[0] == 2 and ids[-1] == 3 and tok.eos_token_id == 3  # never eos id 2 (CLIP's legacy pooling)
    assert tok("an image of a seven").input_ids.count(1) == 3  # unseen words (an, image, of) are <unk>


def test_clip_score_and_zero_shot_on_the_twin(twins):
    from transformers import CLIPModel, CLIPProcessor

    from genhelpers.outputs.clipscore import clip_score, zero_shot
    from genhelpers.outputs.images import shapes

    folder = twins["clip-vit-large-patch14"]
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    pics = shapes(64)
    scores = clip_score(model, processor, list(pics.values()), list(pics))
    assert len(scores) == 3 and all(0 <= s <= 100 for s in scores)
    assert clip_score(model, processor, list(pics.values()), list(pics)) == scores  # deterministic
    probs = zero_shot(model, processor, list(pics.values()), list(pics), template="{}")
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="one text per image"):
        clip_score(model, processor, list(pics.values()), ["x"])


def test_clip_twin_has_the_published_layout(twins):
    """Every file of the published repository that a loader reads (tests/reference/hub_trees.json), and no other:
    not the pickle, TensorFlow or Flax copies."""
    import json

    from .conftest import REFERENCE

    tree = json.loads((REFERENCE / "hub_trees.json").read_text())["repos"]["openai/clip-vit-large-patch14"]
    published = {f["path"] for f in tree["files"]} - {".gitattributes", "README.md", "pytorch_model.bin",
                                                       "tf_model.h5", "flax_model.msgpack"}
    names = sorted(p.name for p in twins["clip-vit-large-patch14"].iterdir())
    assert names == sorted(published) == ["config.json", "merges.txt", "model.safetensors", "preprocessor_config.json",
                                          "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
                                          "vocab.json"]
