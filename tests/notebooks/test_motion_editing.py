"""motion_editing (Iterative Motion Editing): a twin LLM's programs, valid and saved; a hand-written edit history
re-run without the model, every operator measured on the skeleton; the retrieval model asked to find the edit;
stick-figure GIFs before and after; bad inputs stop before anything loads."""
import json

import pytest
from PIL import Image

from genhelpers.classroom import motion, motion_edit
from genhelpers.models import planner

from .common import PROFILES, assert_stopped, from_collection

SMOKE = PROFILES["motion_editing"]["smoke"]
KNEE = {"op": "rotate", "joint": "left_knee", "direction": "flex",
        "time": {"anchor": "when_joint", "joint": "left_foot", "moment": "highest", "is_verb": False}}
HISTORY = {"edits": [
    {"sentence": "walk faster", "base": "latest", "undo": False,
     "ops": [{"op": "change_speed", "speed": "fast", "start": {"anchor": "entire", "is_verb": False}}]},
    {"sentence": "lift the left knee higher when the left foot is highest", "base": "latest", "undo": False,
     "ops": [KNEE]},
    {"sentence": "even higher", "base": "latest", "undo": False, "ops": [KNEE]},
    {"sentence": "and raise the right hand", "base": "latest", "undo": False,
     "ops": [{"op": "translate", "joint": "right_hand", "direction": "up", "amount": "normal",
              "time": {"anchor": "middle", "is_verb": False}}]},
    {"sentence": "undo that", "base": "latest", "undo": True},
]}


@pytest.fixture(scope="module")
def me_run(collection):
    return from_collection(collection, "motion_editing")


def test_the_twin_programs_are_valid_and_saved(me_run):
    out, result = me_run
    assert result["status"] == "passed", result.get("error")
    side = json.loads((out / "motion_editing" / "summary_000.json").read_text())
    history = side["generation"]["history"]
    assert planner.validate(history, motion_edit.history_schema(motion.FRAMES)) == history
    assert [e["sentence"] for e in history["edits"]] == SMOKE["instructions"]
    assert len(side["generation"]["plan_reports"]) == len(SMOKE["instructions"])
    assert side["models"][0]["class"] == "Qwen2ForCausalLM"
    assert Image.open(out / "motion_editing" / "original.gif").n_frames == motion.FRAMES


RUNS = {"motion-editing-hand": ("motion_editing", {"plan_json": json.dumps(HISTORY)})}


@pytest.fixture(scope="module")
def hand_run(runs):
    result, folder = runs("motion-editing-hand")
    return folder, result


def test_a_hand_written_history_runs_without_the_model_and_every_edit_measures_right(hand_run):
    folder, result = hand_run
    assert result["status"] == "passed", result.get("error")
    side = json.loads((folder / "motion_editing" / "summary_000.json").read_text())
    assert side["models"] == []
    checks = side["generation"]["checks"]
    assert [c["op"] for c in checks] == ["change_speed", "rotate", "rotate", "translate"]
    assert all(c["passed"] and c["bone_error_m"] < 1e-9 for c in checks), checks
    assert checks[0]["measured"] > 1.05  # faster: more travel per frame
    assert checks[2]["asked"] < checks[1]["asked"]  # "even higher" asks half of what is left
    assert checks[3]["measured"][1] == pytest.approx(0.25, abs=0.02) or checks[3]["out_of_reach"]
    retrieval = side["generation"]["retrieval"]
    assert set(retrieval) == {"original", "edited"} and all(r["rank"] >= 1 for r in retrieval.values())
    assert side["generation"]["blend_jumps_m"]["blend"] < side["generation"]["blend_jumps_m"]["keyframe only"]


def test_each_edit_has_its_before_and_after_gif_with_the_program(hand_run):
    folder, _ = hand_run
    for i, edit in enumerate(HISTORY["edits"], start=1):
        assert Image.open(folder / "motion_editing" / f"edit{i}.gif").size == (320, 160)
        side = json.loads((folder / "motion_editing" / f"edit{i}.json").read_text())
        assert side["clip"]["frames"] == motion.FRAMES  # (the GIF merges repeated frames: a held pose)
        assert side["generation"]["sentence"] == edit["sentence"] and side["generation"]["base"] == i - 1


def _history_with(edit) -> str:
    history = json.loads(json.dumps(HISTORY))
    edit(history["edits"][1]["ops"][0])
    return json.dumps(history)


BAD_INPUTS = [("motion_editing", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"instructions": ["raise the left arm", " "]}, "is empty"),
    ({"base_motion": "a person dances"}, "base_motion='a person dances' is not one of the generated motions"),
    ({"plan_json": _history_with(lambda op: op.update(joint="left_ear"))},
     "plan_json: edits[1].ops[0].joint='left_ear' is not an option"),
    ({"plan_json": _history_with(lambda op: op["time"].update(anchor="frame", frame=99))},
     "plan_json: edits[1].ops[0].time.frame=99 is outside [0, 31]"),
    ({"plan_json": _history_with(lambda op: op.update(joint="left_hand"))},
     "plan_json: edits[1].ops[0].joint='left_hand' is not an option"),
    ({"plan_json": "[1, 2"}, "plan_json is not valid JSON"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
