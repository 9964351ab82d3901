"""Iterative Motion Editing's executor (genhelpers.classroom.motion_edit, motion_judge), no LLM: the frame pickers and
time warps against values computed once by the authors' own helpers (tests/reference/motion_editing), the halfway
rule, the tent blend, two-bone IK, mirrored skeletons, every operator measured on the skeleton, the edit history."""
import json
from pathlib import Path

import numpy as np
import pytest

from genhelpers.classroom import motion, motion_judge, motion_time
from genhelpers.classroom import motion_edit as me
from genhelpers.errors import ParameterError
from genhelpers.models import planner

FACTS = json.loads((Path(__file__).parent / "reference" / "motion_editing" / "facts.json").read_text())
FIXTURES = FACTS["fixtures_from_authors_helpers"]


def synthetic():
    """The fixtures' motion (facts: synthetic_motion): T = 60, zeros but the pelvis, right wrist, right ankle."""
    t = np.arange(60)
    m = np.zeros((60, 22, 3))
    m[:, 0] = np.c_[np.zeros(60), np.full(60, 0.95), 0.02 * t]
    m[:, 21] = np.c_[-0.3 + 0.4 * np.sin(2 * np.pi * t / 50), 1.0 + 0.3 * np.sin(2 * np.pi * t / 40), 0.02 * t]
    m[:, 8] = np.c_[np.full(60, -0.1), 0.1 + 0.5 * np.maximum(0, np.sin(2 * np.pi * t / 30)),
                    0.02 * t + 0.2 * np.sin(2 * np.pi * t / 30)]
    return m


PICKS = {  # the fixture's call -> (our time expression, the operator's joint)
    "when_joint(right_hand, highest)": ({"anchor": "when_joint", "joint": "right_hand", "moment": "highest"}, None),
    "when_joint(right_hand, lowest)": ({"anchor": "when_joint", "joint": "right_hand", "moment": "lowest"}, None),
    "when_joint(right_hand, furthest_from_body)": (
        {"anchor": "when_joint", "joint": "right_hand", "moment": "furthest_from_body"}, None),
    "when_joint(right_hand, closest_to_body)": (
        {"anchor": "when_joint", "joint": "right_hand", "moment": "closest_to_body"}, None),
    "when_joint(right_foot, highest)": ({"anchor": "when_joint", "joint": "right_foot", "moment": "highest"}, None),
    "before_joint(right_hand, highest, is_verb=True)": (
        {"anchor": "before_joint", "joint": "right_hand", "moment": "highest", "is_verb": True}, None),
    "before_joint(right_hand, highest, is_verb=False)": (
        {"anchor": "before_joint", "joint": "right_hand", "moment": "highest", "is_verb": False}, None),
    "at_global_moment(start_of_motion, is_verb=False)": ({"anchor": "start"}, None),
    "at_global_moment(start_of_motion, is_verb=True) [joint right_hand]": ({"anchor": "start", "is_verb": True},
                                                                            "right_hand"),
    "at_global_moment(middle_of_motion, is_verb=False)": ({"anchor": "middle"}, None),
    "at_global_moment(middle_of_motion, is_verb=True) [joint right_hand]": ({"anchor": "middle", "is_verb": True},
                                                                             "right_hand"),
    "at_global_moment(end_of_motion, is_verb=True)": ({"anchor": "end", "is_verb": True}, None),
    "at_frame(40, is_verb=True) [joint right_foot]": ({"anchor": "frame", "frame": 40, "is_verb": True},
                                                       "right_foot"),
    "at_frame(57, is_verb=True) [joint right_foot]": ({"anchor": "frame", "frame": 57, "is_verb": True},
                                                       "right_foot"),
}


@pytest.mark.parametrize("call", sorted(FIXTURES["frame_picker"]))
def test_frame_pickers_match_the_authors_helpers(call):
    time, joint = PICKS[call]
    assert me.pick(synthetic(), time, joint or "right_hand", fps=20) == FIXTURES["frame_picker"][call]


@pytest.mark.parametrize("name", sorted(FIXTURES["timewarp_T60_on_identity_motion"]))
def test_time_warps_match_the_authors_helpers(name):
    expected = FIXTURES["timewarp_T60_on_identity_motion"][name]
    speed, span = name.rstrip("]").split("[")
    s, e = map(int, span.split(","))
    assert [list(p) for p in motion_time.warp_points(speed, s, e, 60, 20)] == expected["control_points"]
    identity = np.tile(np.arange(60.0)[:, None, None], (1, 22, 3))
    baked, _ = me.change_speed(identity, speed, s, e, 20)
    assert np.abs(baked[:, 0, 0] - expected["baked_source_time_per_output_frame"]).max() < 1e-4


@pytest.mark.parametrize("f", [5, 30, 58])
def test_the_tent_blend_is_the_authors(f):
    """facts.blend_rule at 20 fps over 60 frames: lo = max(0, f-15), hi = min(60, f+15), linear up then down."""
    lo, hi = max(0, f - 15), min(60, f + 15)
    ref = [(t - lo) / (f - lo) if lo <= t < f else 1 - (t - f) / (hi - f) if f <= t < hi else 0 for t in range(60)]
    assert np.allclose(me.tent(f, 60, me.window(20)), ref) and me.window(20) == 15 and me.window(16) == 12


def standing(frames=32):
    return np.repeat(motion._rest_pose(1.0)[None], frames, 0)


def test_the_halfway_rule_converges_to_the_limit():
    m, seen = standing(), []
    for _ in range(3):
        m, record = me.rotate(m, "left_knee", "flex", 10, motion.FPS)
        seen.append(round(float(me.angle(m, "left_knee", "flex")[10]), 6))
    assert seen == pytest.approx([75.0, 112.5, 131.25], abs=1e-3)
    assert me.halfway(0.0, "left_shoulder", "flex") == 90 and me.halfway(0.0, "left_shoulder", "extend") == -30
    assert me.halfway(0.0, "right_hip", "abduct") == 22.5 and me.halfway(-170, "left_knee", "flex") == 90


@pytest.mark.parametrize("joint, direction", [(j, d) for j in me.ROTATE_JOINTS
                                              for d in ("flex", "extend", "abduct", "adduct")
                                              if d in me.LIMITS[j.split("_")[1]]])
def test_mirrored_skeletons_give_the_same_anatomical_edit(joint, direction):
    """The classroom generator faces +x with left = +z, HumanML3D faces +z with left = +x: mirrored. Angles and
    edits are anatomical, so a mirrored clip gets the same numbers."""
    walk = motion.generate("walk", 0, np.random.default_rng(1))
    mirrored = walk * np.array([1.0, 1.0, -1.0])
    a = me.angle(me.rotate(walk, joint, direction, 12, motion.FPS)[0], joint, direction)
    b = me.angle(me.rotate(mirrored, joint, direction, 12, motion.FPS)[0], joint, direction)
    assert np.allclose(a, b, atol=1e-6)


def test_two_bone_ik_reaches_or_clamps():
    root, mid, end = np.zeros(3), np.array([0.0, -0.4, 0.05]), np.array([0.0, -0.8, 0.0])
    target = np.array([0.2, -0.5, 0.1])
    new_mid, new_end, clamped = me.two_bone(root, mid, end, target, np.array([0, 0, 1.0]))
    assert not clamped and np.allclose(new_end, target)
    assert np.isclose(np.linalg.norm(new_mid - root), np.linalg.norm(mid - root))
    assert np.isclose(np.linalg.norm(new_end - new_mid), np.linalg.norm(end - mid))
    far = np.array([0.0, -2.0, 0.0])
    _, reached, clamped = me.two_bone(root, mid, end, far, np.array([0, 0, 1.0]))
    full = np.linalg.norm(mid - root) + np.linalg.norm(end - mid)
    assert clamped and np.isclose(np.linalg.norm(reached - root), 0.999 * full)


def test_translation_offsets_are_the_authors():
    m = standing()
    up, r = me.translate(m, "left_hand", "up", "normal", 10, motion.FPS)
    assert np.allclose(up[10, 20] - m[10, 20], [0, 0.25, 0]) and r["expected_m"] == [0.0, 0.25, 0.0]
    large, _ = me.translate(m, "left_hand", "up", "large", 10, motion.FPS)
    assert np.isclose(large[10, 20, 1] - m[10, 20, 1], 0.5)
    squat, _ = me.translate(m, "waist", "down", "normal", 10, motion.FPS)
    assert np.isclose(squat[10, 0, 1] - m[10, 0, 1], -0.15)
    assert np.allclose(squat[:, [7, 8, 10, 11]], m[:, [7, 8, 10, 11]])  # the feet stay: a squat
    hop, _ = me.translate(m, "waist", "up", "normal", 10, motion.FPS)
    assert np.allclose(hop[10] - m[10], [0, 0.05, 0])
    down, r = me.translate(m, "left_foot", "down", "normal", 10, motion.FPS)
    assert down[:, [7, 10], 1].min() >= m[:, [7, 10], 1].min() - 1e-9 and r["ground_stop"]  # stops at the ground


WALK = motion.generate("walk", 0, np.random.default_rng(0))
OPS = ([{"op": "rotate", "joint": j, "direction": d, "time": {"anchor": "when_joint", "joint": "left_foot",
                                                               "moment": "highest", "is_verb": False}}
        for j in me.ROTATE_JOINTS for d in ("flex", "extend", "abduct", "adduct") if d in me.LIMITS[j.split("_")[1]]]
       + [{"op": "translate", "joint": j, "direction": d, "amount": "normal",
           "time": {"anchor": "frame", "frame": 12, "is_verb": False}} for j in me.TRANSLATE_JOINTS for d in me.OFFSETS]
       + [{"op": "relative_translate", "joint": "right_hand", "target": t, "direction": d,
           "start": {"anchor": "frame", "frame": 8, "is_verb": False},
           "end": {"anchor": "frame", "frame": e, "is_verb": False}}
          for t, d, e in [("head", "contact", 8), ("head", "above", 16), ("left_hand", "towards", 16),
                          ("left_knee", "in_front", 16), ("left_hip", "next_to", 16), ("ground", "contact", 10)]]
       + [{"op": "change_speed", "speed": s, "start": {"anchor": a, "is_verb": False},
           "end": {"anchor": "frame", "frame": e, "is_verb": False}}
          for s, a, e in [("fast", "middle", 28), ("slow", "start", 24), ("pause", "middle", 26), ("fast", "entire", 0),
                          ("slow", "entire", 0)]])


@pytest.mark.parametrize("op", OPS, ids=[f"{o['op']}-{o.get('joint', o.get('speed'))}-{o.get('direction', '')}"
                                         f"-{o.get('target', o.get('start', {}).get('anchor', ''))}" for o in OPS])
def test_every_operator_does_what_it_asks_measured_on_the_skeleton(op):
    program = planner.validate({"base": "latest", "undo": False, "ops": [op]}, me.schema(motion.FRAMES))
    edited, (record,) = me.apply(WALK, program, motion.FPS)
    result = motion_judge.check(WALK, edited, record)
    assert result["passed"], result
    assert result["bone_error_m"] < 1e-9 and result["feet_lowest_m"] > -0.01
    assert result.get("unchanged_outside", True)
    if op["op"] in ("rotate", "translate") and not result.get("out_of_reach"):
        assert not np.allclose(edited, WALK)  # (an edit that moves nothing would pass vacuously)


def test_an_edit_history_edits_undoes_and_corrects():
    knee = {"op": "rotate", "joint": "left_knee", "direction": "flex",
            "time": {"anchor": "middle", "is_verb": False}}
    elbow = {**knee, "joint": "right_elbow"}
    edits = [{"base": "latest", "undo": False, "ops": [knee]},
             {"base": "latest", "undo": False, "ops": [knee]},  # "even higher"
             {"base": "previous", "undo": False, "ops": [elbow]},  # "no, the elbow": re-edit the motion before
             {"base": "latest", "undo": True}]
    motions, log = me.run(WALK, edits, motion.FPS)
    mid = motion.FRAMES // 2
    knees = [float(me.angle(m, "left_knee", "flex")[mid]) for m in motions]
    assert knees[2] - knees[1] == pytest.approx(0.5 * (150 - knees[1]), abs=1e-6)  # halfway again
    assert [b for b, _, _ in log] == [0, 1, 1, 3]
    assert np.allclose(motions[3][:, [1, 4, 7, 10]], motions[1][:, [1, 4, 7, 10]])  # the knee edit kept once
    assert np.allclose(motions[4], motions[3]) and log[3][2] == []  # an undo returns its base unchanged


def test_the_blend_removes_the_pop():
    blended, _ = me.rotate(WALK, "left_knee", "flex", 16, motion.FPS)
    alone, _ = me.rotate(WALK, "left_knee", "flex", 16, motion.FPS, blend=False)

    def jump(m):
        return np.linalg.norm(np.diff(m, axis=0), axis=2).max()

    assert jump(alone) > 2 * jump(blended)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["ops"][0].update(joint="left_ear"), r"ops\[0\]\.joint='left_ear' is not an option"),
    (lambda p: p["ops"][0]["time"].update(anchor="frame", frame=99), r"ops\[0\]\.time\.frame=99 is outside \[0, 31\]"),
    (lambda p: p["ops"][0].update(joint="left_hand"), r"ops\[0\]\.joint='left_hand' is not an option .*choose one of "
                                                      r"'left_shoulder'"),
    (lambda p: p.update(ops=[]), r"ops has 0 item\(s\): it needs at least 1"),
])
def test_a_bad_program_is_refused_naming_the_field(edit, message):
    program = {"base": "latest", "undo": False,
               "ops": [{"op": "rotate", "joint": "left_knee", "direction": "flex",
                        "time": {"anchor": "middle", "is_verb": False}}]}
    edit(program)
    with pytest.raises(ParameterError, match=message):
        planner.validate(program, me.schema(motion.FRAMES))


def test_the_captions_name_all_twenty_kinds_and_pairs_mark_the_frames():
    assert len(me.CAPTIONS) == 20 and me.CAPTIONS["a person walks forward slowly"] == ("walk", 0)
    frames = motion_judge.render_pair(WALK, WALK, marks={3}, size=64)
    assert len(frames) == motion.FRAMES and frames[0].size == (128, 64)
    assert np.asarray(frames[3])[2, 66].tolist() == [220, 30, 30]  # the red frame on the edited one
    assert np.asarray(frames[2])[2, 66].tolist() != [220, 30, 30]
