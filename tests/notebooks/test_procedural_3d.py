"""procedural_3d (3D-GPT's idea): a twin LLM's plan, valid and saved in the sidecar; the scene as GLB, measured from
the mesh; the turntable; a hand-edited plan re-run without the model; bad inputs stop before anything loads."""
import json

import pytest
import trimesh
from PIL import Image

from genhelpers.classroom import procedural, scene_view
from genhelpers.models import planner
from genhelpers.runs import run_notebook

from ..conftest import NOTEBOOKS
from .common import PROFILES, assert_stopped, from_collection

SMOKE = PROFILES["procedural_3d"]["smoke"]


@pytest.fixture(scope="module")
def p3d_run(collection):
    return from_collection(collection, "procedural_3d")


def test_the_twin_plan_is_valid_and_saved_with_its_report(p3d_run):
    out, result = p3d_run
    assert result["status"] == "passed", result.get("error")
    side = json.loads((out / "procedural_3d" / "scene.json").read_text())
    plan, report = side["plan"], side["plan_report"]
    assert planner.validate(plan, procedural.SCHEMA) == plan
    assert {r["source"] for r in report} <= {"model", "fallback", "not applicable"}
    assert any(r["source"] == "fallback" and "model wrote" in r["raw"] for r in report)  # the twin's digit runs
    assert side["models"][0]["class"] == "Qwen2ForCausalLM" and side["models"][0]["dtype"] == "float32"


def test_the_scene_is_judged_from_the_glb(p3d_run):
    out, _ = p3d_run
    folder = out / "procedural_3d"
    side = json.loads((folder / "turntable.json").read_text())["generation"]
    measured = scene_view.measure(trimesh.load(folder / "scene.glb"))
    assert {k: v for k, v in measured.items()} == {k: v for k, v in side["measured"].items() if k != "preview_warm"}
    plan = json.loads((folder / "scene.json").read_text())["plan"]
    assert measured["size_m"] == pytest.approx(plan["terrain"]["size_m"])
    assert measured["relief_m"] == pytest.approx(plan["terrain"]["relief_m"], abs=1e-3)
    assert measured["trees"] == sum(t["placed"] for t in side["built"]["trees"])
    assert {r["word"] for r in side["judge"]} >= {"forest", "pine", "dusk", "red flowers"}
    gif = Image.open(folder / "turntable.gif")
    assert gif.n_frames == SMOKE["views"] and gif.size == (SMOKE["preview_size"],) * 2


def test_the_comparison_and_the_planner_score_are_recorded(p3d_run):
    out, _ = p3d_run
    side = json.loads((out / "procedural_3d" / "comparison_000.json").read_text())["generation"]
    assert side["constrained"]["valid"] and len(side["free_form"]) == SMOKE["free_tries"]
    assert not any(t["valid"] for t in side["free_form"])  # a random twin never writes a valid plan freely
    scores = json.loads((out / "procedural_3d" / "planner_score_000.json").read_text())["generation"]["scores"]
    assert [s["prompt"] for s in scores] == SMOKE["eval_prompts"]
    assert all(0 <= s["passed"] <= s["checks"] and s["checks"] >= 3 for s in scores)  # snowy, pine, forest


def test_a_hand_edited_plan_reruns_without_the_model(p3d_run, tmp_path):
    out, _ = p3d_run
    plan = json.loads((out / "procedural_3d" / "scene.json").read_text())["plan"]
    plan["dispatch"].update(trees=True, water=False)
    plan["terrain"].pop("water_level", None)
    plan["trees"] = [{"kind": "broadleaf", "count": 5, "height_m": 14.0, "crown": "round", "leaf_colour": "red",
                      "fruit": "none", "min_spacing_m": 3.0}]
    plan["sky"]["sun_elevation_deg"] = 6.0
    result = run_notebook(NOTEBOOKS / "procedural_3d.ipynb", {**SMOKE, "plan_json": json.dumps(plan)}, tmp_path)
    assert result["status"] == "passed", result.get("error")
    side = json.loads((tmp_path / "procedural_3d" / "turntable.json").read_text())["generation"]
    m = side["measured"]
    assert (m["trees"], m["crowns"], m["leaf_colours"], m["water"]) == (5, {"round": 5}, ["red"], False)
    assert all(14 * 0.85 <= h <= 14 * 1.15 for h in m["tree_heights_m"]) and m["preview_warm"]
    scene_side = json.loads((tmp_path / "procedural_3d" / "scene.json").read_text())
    assert scene_side["models"] == [] and {r["source"] for r in scene_side["plan_report"]} == {"user"}


def _plan_with(edit) -> str:
    from dataclasses import replace

    plan = planner.defaults([replace(n, when=None) if n.name == "trees" else n for n in procedural.SCHEMA])
    edit(plan)
    return json.dumps(plan)


BAD_INPUTS = [("procedural_3d", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"prompt": ""}, "prompt='' is empty"),
    ({"plan_json": _plan_with(lambda p: p["trees"][0].update(count=500))},
     "plan_json: trees[0].count=500 is outside [0, 60]"),
    ({"plan_json": _plan_with(lambda p: p["trees"][0].update(kind="oak"))},
     "plan_json: trees[0].kind='oak' is not an option"),
    ({"plan_json": _plan_with(lambda p: p["sky"].update(moon=True))}, "plan_json: sky has an unknown field 'moon'"),
    ({"plan_json": '{"dispatch": '}, "plan_json is not valid JSON"),
    ({"terrain_grid": 8}, "terrain_grid=8 must be a whole number from 16 to 256"),
    ({"views": 0}, "views=0 must be a whole number ≥ 1"),
    ({"eval_prompts": ["a forest", ""]}, "eval_prompts[1]='' is empty"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
