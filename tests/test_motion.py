"""The motion generator obeys physics we can check (rigid bones, feet on the ground, each action doing what its
caption says), the retrieval measures match hand-worked ranks, and HumanML3D's published layout loads."""
import math

import numpy as np
import pytest

from genhelpers.classroom import motion


def one(action, variant, seed=0):
    return motion.generate(action, variant, np.random.default_rng(seed))


def variant(action, **want):
    return next(i for i, v in enumerate(motion.ACTIONS[action]) if all(v[k] == x for k, x in want.items()))


def test_the_skeleton_is_hml3d_s_and_its_bones_are_rigid():
    assert len(motion.JOINTS) == len(motion.PARENTS) == 22 and motion.PARENTS[0] == -1
    assert all(p < j for j, p in enumerate(motion.PARENTS) if p >= 0)  # a tree, parents first
    for action, vs in motion.ACTIONS.items():
        for i in range(len(vs)):
            m = one(action, i)
            assert m.shape == (motion.FRAMES, 22, 3)
            lengths = np.stack([np.linalg.norm(m[:, j] - m[:, p], axis=-1) for j, p in motion.BONES], 1)
            assert np.abs(lengths - lengths.mean(0)).max() < 0.03, action  # forward kinematics: bones keep length
            feet = m[:, [7, 8, 10, 11], 1].min(1)
            if action not in ("jump", "run"):  # (running has flight phases too)
                assert np.abs(feet).max() < 0.03, action  # on the ground


def test_each_action_does_what_its_caption_says():
    fwd, back = one("walk", variant("walk", direction="forward", speed="slowly")), one(
        "walk", variant("walk", direction="backward", speed="slowly"))
    facing = lambda m: m[0, 10] - m[0, 7]  # noqa: E731  (the left foot points where the body faces)
    assert np.dot(fwd[-1, 0] - fwd[0, 0], facing(fwd)) > 0 > np.dot(back[-1, 0] - back[0, 0], facing(back))
    slow, quick = (one("run", variant("run", direction="forward", speed=s)) for s in ("slowly", "quickly"))
    assert np.linalg.norm(quick[-1, 0] - quick[0, 0]) > 1.3 * np.linalg.norm(slow[-1, 0] - slow[0, 0])
    jump = one("jump", variant("jump", times="once"))
    assert jump[:, [10, 11], 1].min(1).max() > 0.15  # both feet leave the ground
    twice = one("jump", variant("jump", times="twice"))
    airborne = twice[:, [10, 11], 1].min(1) > 0.05
    assert np.sum(airborne[1:] & ~airborne[:-1]) == 2  # two take-offs
    sit = one("sit", variant("sit", speed="slowly"))
    assert sit[-1, 0, 1] < sit[0, 0, 1] - 0.2
    for arm, wrist in (("left", 20), ("right", 21)):
        wave = one("wave", variant("wave", arm=arm, times="once"))
        assert wave[motion.FRAMES // 2, wrist, 1] > wave[motion.FRAMES // 2, 15, 1]  # that hand above the head
    for side, sign in (("left", 1), ("right", -1)):
        turn = one("turn", variant("turn", direction=side))
        hips = [turn[t, 1] - turn[t, 2] for t in (0, -1)]  # right hip → left hip, seen from above
        cross = hips[0][0] * hips[1][2] - hips[0][2] * hips[1][0]
        angle = math.atan2(cross, hips[0][0] * hips[1][0] + hips[0][2] * hips[1][2])
        assert sign * angle < -0.8  # a quarter turn, the named way (y up: turning left is clockwise in x-z)


def test_held_out_wordings_are_new_sentences_of_known_words():
    for action, held in motion.HELDOUT_TEMPLATES.items():
        assert not set(held) & set(motion.TEMPLATES[action])
        known = {w for t in motion.TEMPLATES[action] for w in t.split()}
        assert {w for t in held for w in t.split()} <= known | {w for ts in motion.TEMPLATES.values() for t in ts
                                                               for w in t.split()}


def test_ranks_and_recall_on_a_hand_worked_gallery():
    sim = np.array([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.1, 0.2, 0.3]])
    assert motion.ranks(sim).tolist() == [1, 2, 1]
    big = np.eye(64) + np.triu(np.full((64, 64), 2.0), 1)  # query i: every later item outranks its own
    r = motion.retrieval(big, np.arange(64), np.arange(64), batch=32)
    assert r["R@1"] == round(1 / 64, 4) and r["median_rank"] == 32.5
    assert r["small_batches_R@1"] == round(2 / 64, 4)  # the last query of each batch of 32
    assert r["top_is_asked_class"] == round(1 / 64, 4)


def test_humanml3d_folders_load_in_their_published_layout(tmp_path):
    (tmp_path / "new_joints").mkdir()
    (tmp_path / "texts").mkdir()
    rng = np.random.default_rng(0)
    for i, n in (("000001", 50), ("000002", 90)):
        np.save(tmp_path / "new_joints" / f"{i}.npy", rng.normal(size=(n, 22, 3)))
        (tmp_path / "texts" / f"{i}.txt").write_text(f"a person walks {i}#a/DET person/NOUN#0.0#0.0\nsecond#x#0#0\n")
    (tmp_path / "test.txt").write_text("000001\n000002\n000404\n")  # 000404 is missing: skipped
    motions, captions, ids = motion.load_humanml3d(tmp_path, "test")
    assert motions.shape == (2, motion.FRAMES, 22, 3) and ids == ["000001", "000002"]
    assert captions == ["a person walks 000001", "a person walks 000002"]
    with pytest.raises(ValueError, match="no motion of split 'val'"):
        (tmp_path / "val.txt").write_text("404\n")
        motion.load_humanml3d(tmp_path, "val")
