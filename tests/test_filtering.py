"""CLIP filtering's measures against hand-worked examples and scikit-learn (independent of our code), and the
pool's construction (its labels are the judge)."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from genhelpers.classroom import digits, filtering


def test_removal_curve_on_a_hand_worked_example():
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    wrong = np.array([True, True, False, True, False, False])
    curve = filtering.removal_curve(score, wrong)
    i = list(curve["threshold"]).index(0.4)
    # threshold 0.4 removes the pairs scoring below it: 0.1, 0.2 (wrong), 0.3 (right)
    assert curve["recall_wrong"][i] == pytest.approx(2 / 3) and curve["loss_right"][i] == pytest.approx(1 / 3)
    assert curve["precision"][i] == pytest.approx(2 / 3)
    chosen = filtering.choose_threshold(curve, max_loss=0.0)  # lose nothing right: stop below 0.3
    assert chosen["threshold"] == 0.3 and chosen["recall_wrong"] == pytest.approx(2 / 3)
    top = filtering.choose_threshold(curve, max_loss=1.0)  # remove everything
    assert top["recall_wrong"] == 1.0 and top["loss_right"] == 1.0


def test_auc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    score, labels = rng.normal(size=200), rng.random(200) < 0.3
    score[labels] += 1
    score[:10] = 0.5  # ties
    assert filtering.auc(score, labels) == pytest.approx(roc_auc_score(labels, score))


def test_aesthetic_fit_recovers_a_linear_rule():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    weights = filtering.fit_aesthetic(x, x @ w + 0.7, ridge=1e-9)
    assert np.allclose(weights, [*w, 0.7], atol=1e-6)


def test_duplicates_by_hash_and_by_embedding():
    x = np.zeros((5, 8, 8), dtype=np.float32)
    x[1, 0, 0] = x[3, 0, 0] = 16  # 1 and 3 identical; 0, 2 and 4 identical
    assert sorted(filtering.exact_duplicates(x)) == [(0, 2), (0, 4), (1, 3)]
    e = np.eye(3)[[0, 1, 0]]
    assert filtering.near_duplicates(e, 0.99) == [(0, 2)]


def test_the_pool_holds_known_wrong_captions_copies_and_degradations():
    data = digits.split(0)
    pool = filtering.make_pool(data, seed=3, wrong_share=0.3, duplicate_share=0.05, degraded_share=0.1)
    n = len(data.test_x)
    kinds = pool["kind"][:n]
    assert (kinds != "right").sum() == round(0.3 * n)
    assert {k: int((kinds == k).sum()) for k in filtering.KINDS[1:]} == {"shuffled": 36, "off_by_one": 36,
                                                                          "nonsense": 36}
    said, true = pool["said"][:n], pool["digit"][:n]
    assert (said[kinds == "right"] == true[kinds == "right"]).all()
    assert (said[kinds == "shuffled"] != true[kinds == "shuffled"]).all()
    assert (np.abs(said[kinds == "off_by_one"] - true[kinds == "off_by_one"]) % 8 == 1).all()  # ±1, 9↔0 wraps
    captions = np.array(pool["captions"])[:n]
    named = [(d, c.split()) for d, c in zip(said, captions, strict=True) if d >= 0]
    assert all(digits.WORDS[d] in words or str(d) in words for d, words in named)
    assert all(not any(w in c.split() for w in digits.WORDS) for c in captions[kinds == "nonsense"])
    copies = np.flatnonzero(pool["duplicate_of"] >= 0)
    assert len(copies) == round(0.05 * n)
    assert (pool["digit"][copies] == pool["digit"][pool["duplicate_of"][copies]]).all()
    assert pool["degraded"][:n].sum() == round(0.1 * n)
    assert pool["x"].min() >= 0 and pool["x"].max() <= 16
