"""GPT4Motion: a valid, reported plan from the twin LLM, a simulation that does what the plan says (measured again
here), the maps beside the frames, steadiness with and without cross-frame attention, a hand-edited plan, bad inputs."""
import json
import math

import nbformat
import pytest
from PIL import Image

from genhelpers.models import physics_scene as ps
from genhelpers.models import planner

from ..conftest import NOTEBOOKS
from .common import PROFILES, assert_stopped, from_collection, parameter_names

SMOKE = PROFILES["gpt4motion"]["smoke"]


@pytest.fixture(scope="module")
def g4m_run(collection):
    return from_collection(collection, "gpt4motion")


def sidecar(folder, stem="clip"):
    return json.loads((folder / f"{stem}.json").read_text())


def test_gpt4motion_clip_maps_and_comparison(g4m_run):
    out, result = g4m_run
    assert result["status"] == "passed", result.get("error")
    folder, frames, size = out / "gpt4motion", SMOKE["frames"], (SMOKE["width"], SMOKE["height"])
    side = sidecar(folder)
    assert side["clip"]["frames"] == frames and (side["clip"]["width"], side["clip"]["height"]) == size
    assert Image.open(folder / "clip.gif").size == size
    maps = Image.open(folder / "maps_and_frames.gif")  # depth | edges | frame, side by side
    assert maps.size == (3 * size[0], size[1]) and sidecar(folder, "maps_and_frames")["clip"]["frames"] == frames
    assert sidecar(folder, "without_cross_frame")["clip"]["frames"] == SMOKE["compare_frames"]
    steadiness = side["generation"]["background_change"]
    assert len(steadiness["with"]) == len(steadiness["without"]) == SMOKE["compare_frames"] - 1
    assert steadiness["with"] != steadiness["without"]  # the processor changes the frames (frame 0 aside)
    assert side["generation"]["calls"] == [[0, 1, 2, 3, 4], [0, 5, 6, 7]]  # frame 0 anchors every call
    assert set(side["parameters"]) == set(parameter_names(nbformat.read(NOTEBOOKS / "gpt4motion.ipynb", as_version=4)))
    names = [m["class"] for m in side["models"]]
    assert names == ["StableDiffusionXLControlNetPipeline"]
    assert side["models"][0]["components"]["controlnet"] == "MultiControlNetModel"


def test_the_twin_llm_plan_is_valid_reported_and_executed_as_written(g4m_run):
    out, _ = g4m_run
    gen = sidecar(out / "gpt4motion")["generation"]
    plan, report = gen["plan"], gen["plan_report"]
    assert planner.validate(plan, ps.SCHEMA) == plan  # the model's plan, always valid
    assert set(gen["plan_counts"]) <= set(planner.SOURCES) and sum(gen["plan_counts"].values()) == len(report)
    rows = {r["path"]: r for r in report}
    assert rows["objects[]"]["value"] == len(plan["objects"]) and rows["camera"]["value"] == plan["camera"]
    for i, obj in enumerate(plan["objects"]):
        for name, value in obj.items():
            assert rows[f"objects[{i}].{name}"]["value"] == value
    # the executor does what the plan says: the recorded physics is the plan's, simulated again here
    again = ps.measure(plan, ps.simulate(plan, SMOKE["frames"], SMOKE["fps"]))
    assert gen["physics"] == json.loads(json.dumps(again))
    assert gen["image_prompt"] == ps.prompt_for(PROFILES["gpt4motion"]["kaggle-t4"]["prompt"], plan)


HAND_PLAN = ps.default_plan(objects=[ps.default_object(size=0.5, z=3.0, restitution=0.5, colour="red"),
                                     ps.default_object(shape="box", aspect="flat", size=0.4, x=-1.5, y=-1.5, z=1.0,
                                                       vx=2.0)],
                            camera="front", scene_words="street")


RUNS = {"gpt4motion-hand-plan": ("gpt4motion", {"plan_json": json.dumps(HAND_PLAN), "compare_frames": 0})}


def test_a_hand_edited_plan_skips_the_model_and_drives_the_simulation(runs):
    result, out = runs("gpt4motion-hand-plan")
    assert result["status"] == "passed", result.get("error")
    gen = sidecar(out / "gpt4motion")["generation"]
    assert gen["plan"] == HAND_PLAN and set(gen["plan_counts"]) == {"user"}
    assert "red ball" in gen["image_prompt"] and "city street" in gen["image_prompt"]
    ball, box = gen["physics"]
    fall = math.sqrt(2 * (3.0 - 0.5) / 9.81)  # the planned 2.5 m of free fall: 0.714 s, i.e. frame 5.7 at 8 fps
    assert ball["floor_hit_frames"] == [math.ceil(fall * SMOKE["fps"])] and box["shape"] == "box"
    assert not (out / "gpt4motion" / "without_cross_frame.gif").exists()


def _edited(**change):
    plan = json.loads(json.dumps(HAND_PLAN))
    for path, value in change.items():
        if path == "objects":
            plan["objects"] = value
        elif path.startswith("o0_"):
            plan["objects"][0][path[3:]] = value
        else:
            plan[path] = value
    return json.dumps(plan)


BAD_INPUTS = [("gpt4motion", override, "ParameterError", evalue, "genhelpers.check(") for override, evalue in [
    ({"prompt": ""}, "prompt='' is empty"),
    ({"frames": 0}, "frames=0 must be a whole number ≥ 1"),
    ({"plan_json": _edited(o0_restitution=1.5)}, "objects[0].restitution=1.5 is outside [0, 0.95]"),
    ({"plan_json": _edited(o0_z=7.0)}, "objects[0].z=7.0 is outside [0, 5] m"),
    ({"plan_json": _edited(o0_shape="cylinder")}, "objects[0].shape='cylinder' is not an option"),
    ({"plan_json": _edited(o0_colour_name="red")}, "objects[0] has an unknown field 'colour_name'"),
    ({"plan_json": _edited(objects=[])}, "objects has 0 item(s): it needs at least 1"),
    ({"plan_json": "{\"objects\": [}"}, "plan_json is not valid JSON"),
    ({"controlnet_scales": [0.8]}, "controlnet_scales=[0.8] must be two numbers"),
    ({"compare_frames": 9}, "compare_frames=9 is more than the clip's frames=8"),
]]


@pytest.mark.parametrize("name, override, ename, evalue, stops_at", BAD_INPUTS)
def test_bad_input_stops_before_loading(bad_inputs, name, override, ename, evalue, stops_at):
    """Through papermill (the session's batch, conftest.bad_inputs): stopped in the named cell with the named
    error, before any model loads, and no files left behind."""
    assert_stopped(*bad_inputs(name, override), ename, evalue, stops_at)
