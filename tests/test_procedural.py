"""procedural_3d's generators and judge (genhelpers.classroom.procedural, scene_view), with hand-written plans: every
plan field changes the mesh, the mesh does what the plan says (measured after a GLB round trip), placement keeps
its spacing, the same seed gives the same scene, and the judge reads words against measured facts."""
import copy
import hashlib
import io
from dataclasses import replace

import numpy as np
import pytest
import trimesh

from genhelpers.classroom import procedural as pr
from genhelpers.classroom import scene_view as sv
from genhelpers.errors import ParameterError
from genhelpers.models import planner as P

GRID = 24


def base_plan() -> dict:
    """Every generator on, small counts (quick to build)."""
    plan = P.defaults([replace(n, when=None) for n in pr.SCHEMA])
    plan["dispatch"] = {g: True for g in pr.GENERATORS}
    plan["terrain"].update(type="hills", relief_m=8.0, water_level=0.2)
    plan["trees"] = [{**plan["trees"][0], "count": 3, "fruit": "apple"}]
    plan["rocks"]["count"] = 2
    plan["flowers"]["count"] = 3
    plan["grass"]["density"] = 0.05
    plan["particles"] = {"snow": True, "rain": False, "leaves": False}
    return P.validate(plan, pr.SCHEMA)


def glb_round_trip(scene):
    return trimesh.load(io.BytesIO(scene.export(file_type="glb")), file_type="glb")


def built(plan, seed=0):
    return glb_round_trip(pr.build(plan, seed, GRID)[0])


def fingerprint(scene) -> str:
    h = hashlib.sha256()
    for node, (v, f, rgb) in sorted(sv.world_parts(scene).items()):
        h.update(node.encode())
        h.update(np.round(v, 5).tobytes() + np.ascontiguousarray(f).tobytes())
        h.update(np.ascontiguousarray(rgb).tobytes())
    h.update(repr(sorted(scene.metadata.get("extras", {}).items())).encode())
    return h.hexdigest()


def _fields(nodes, path=""):
    for node in nodes:
        sub = f"{path}.{node.name}" if path else node.name
        if isinstance(node, P.Field):
            yield sub, node
        elif isinstance(node, P.Group):
            yield from _fields(node.fields, sub)
        else:
            yield from _fields(node.fields, f"{sub}[0]")


def _set(plan, path, value):
    keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]
    node = plan
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value


def _other(field: P.Field, current):
    if field.kind == "choice":
        return next(c for c in field.choices if c != current and c != "none") if field.name != "fruit" else "orange"
    if field.kind == "bool":
        return not current
    span = field.hi - field.lo
    v = current + 0.37 * span if current + 0.37 * span <= field.hi else current - 0.37 * span
    return int(round(v)) if field.kind == "int" else round(v, 2)


FIELDS = [(p, f) for p, f in _fields(pr.SCHEMA) if f.kind != "text"]


@pytest.fixture(scope="module")
def base():
    return fingerprint(built(base_plan()))


@pytest.mark.parametrize("path, field", FIELDS, ids=[p for p, _ in FIELDS])
def test_every_plan_field_changes_the_mesh(base, path, field):
    plan = base_plan()
    if path.endswith(".leaf_colour") or path.endswith(".fruit"):
        plan["trees"][0]["crown"] = "round"
    if path.endswith(".min_spacing_m"):  # spacing shows only where trees would stand closer
        plan["trees"][0]["count"] = 30
    current = copy.deepcopy(plan)
    keys = path.replace("[", ".").replace("]", "").split(".")
    for k in keys:
        current = current[int(k) if k.isdigit() else k]
    _set(plan, path, _other(field, current))
    plan = P.validate(plan, pr.SCHEMA)
    ref = base
    if path.endswith((".leaf_colour", ".fruit", ".min_spacing_m")):  # compare with the same plan, field unchanged
        other = base_plan()
        other["trees"][0].update({"count": 30} if "spacing" in path else {"crown": "round"})
        ref = fingerprint(built(P.validate(other, pr.SCHEMA)))
    assert fingerprint(built(plan)) != ref


def test_the_concept_text_is_context_only():
    """3D-GPT's conceptualisation feeds the modelling step; no generator reads it."""
    plan = base_plan()
    other = {**plan, "concept": "tall dark pines, a low orange sun"}
    assert fingerprint(built(plan)) == fingerprint(built(other))


def test_same_seed_same_scene_other_seed_other_scene():
    plan = base_plan()
    assert fingerprint(built(plan, 3)) == fingerprint(built(plan, 3)) != fingerprint(built(plan, 4))


def test_the_glb_keeps_nodes_colours_and_the_sky():
    scene, _ = pr.build(base_plan(), 0, GRID)
    back = glb_round_trip(scene)
    assert set(back.graph.nodes_geometry) == set(scene.graph.nodes_geometry)
    assert back.metadata["extras"]["sun_elevation_deg"] == 45.0
    assert all(g.visual.kind == "vertex" for g in back.geometry.values())


@pytest.mark.parametrize("kind, crown", [("pine", "cone"), ("broadleaf", "round"), ("palm", "umbrella"),
                                         ("birch", "round"), ("dead", None)])
def test_trees_measured_as_planned(kind, crown):
    plan = base_plan()
    spec = {"kind": kind, "count": 7, "height_m": 12.0, "min_spacing_m": 2.0}
    if crown:
        spec.update(crown=crown, leaf_colour="orange", fruit="berry")
    plan["trees"] = [spec]
    facts = sv.measure(built(P.validate(plan, pr.SCHEMA)))
    assert facts["trees"] == 7 and facts["trees_by_kind"] == {kind: 7}
    assert all(12 * 0.85 - 1e-6 <= h <= 12 * 1.15 + 1e-6 for h in facts["tree_heights_m"]), facts["tree_heights_m"]
    assert facts["crowns"] == {crown or "none": 7}
    if crown:
        assert facts["leaf_colours"] == ["orange"]
        assert {t["fruit_colour"] for t in facts["tree_facts"]} == {"purple"}


def test_counts_colours_relief_water_snow_clouds_particles_as_planned():
    plan = base_plan()
    plan["rocks"].update(count=5, colour="sandstone")
    plan["flowers"].update(count=9, petal_colour="blue")
    plan["terrain"].update(relief_m=17.5)
    plan["sky"].update(cloud_cover=0.5)
    plan["particles"] = {"snow": False, "rain": True, "leaves": True}
    facts = sv.measure(built(P.validate(plan, pr.SCHEMA)))
    assert (facts["rocks"], facts["rock_colour"], facts["flowers"], facts["flower_colour"]) == (5, "sandstone", 9,
                                                                                                  "blue")
    assert facts["relief_m"] == pytest.approx(17.5, abs=1e-3) and facts["water"] and facts["snow_share"] >= 0.3
    assert facts["clouds"] == 6 and facts["particles"] == ["leaves", "rain"]
    plan["dispatch"].update(snow=False, water=False, clouds=False)
    facts = sv.measure(built(P.validate(plan, pr.SCHEMA)))
    assert facts["snow_share"] < 0.05 and not facts["water"] and facts["clouds"] == 0


def test_more_petals_more_faces():
    faces = []
    for petals in (3, 8, 20):
        plan = base_plan()
        plan["flowers"]["petals"] = petals
        faces.append(sv.measure(built(plan))["flower_faces"])
    assert faces[0] < faces[1] < faces[2] and faces[1] - faces[0] == 5 * 20  # 20 triangles per petal


def test_placement_keeps_its_spacing_and_says_when_the_land_is_full():
    rng = np.random.default_rng(0)
    points = pr.place(40, 4.0, 60.0, lambda x, z: True, rng)
    d = np.linalg.norm(points[:, None] - points[None], axis=2) + np.eye(len(points)) * 99
    assert len(points) == 40 and d.min() >= 4.0
    plan = base_plan()
    plan["terrain"]["size_m"] = 20.0
    plan["trees"][0].update(count=60, min_spacing_m=10.0)
    _, info = pr.build(P.validate(plan, pr.SCHEMA), 0, GRID)
    assert info["trees"][0]["asked"] == 60 and info["trees"][0]["placed"] < 10


def test_the_preview_sky_follows_the_sun():
    plan = base_plan()
    warm, day = [], []
    for elevation, out in ((5.0, warm), (60.0, day)):
        plan["sky"]["sun_elevation_deg"] = elevation
        image = sv.turntable(built(plan), views=1, size=64)[0]
        out.append(sv.sky_is_warm(image))
    assert warm == [True] and day == [False]


def test_the_judge_reads_words_against_measured_facts():
    plan = base_plan()
    plan["trees"] = [{"kind": "pine", "count": 12, "height_m": 9.0, "crown": "cone", "leaf_colour": "green",
                      "fruit": "none", "min_spacing_m": 2.0}]
    plan["flowers"].update(petal_colour="red", count=9)
    plan["sky"]["sun_elevation_deg"] = 8.0
    scene = built(P.validate(plan, pr.SCHEMA))
    facts = sv.measure(scene)
    facts["preview_warm"] = sv.sky_is_warm(sv.turntable(scene, views=1, size=64)[0])
    rows = {r["word"]: r["passed"] for r in sv.judge("A snowy pine forest on hills at dusk, red flowers, a lake",
                                                     facts)}
    assert rows == {"forest": True, "pine": True, "hills": True, "snowy": True, "lake": True, "flowers": True,
                    "dusk": True, "red flowers": True}
    facts["trees"] = 4
    assert not {r["word"]: r["passed"] for r in sv.judge("a forest", facts)}["forest"]


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["trees"][0].update(count=500), r"trees\[0\]\.count=500 is outside \[0, 60\]"),
    (lambda p: p["trees"][0].update(kind="oak"), r"trees\[0\]\.kind='oak' is not an option"),
    (lambda p: p["terrain"].update(height=3), r"terrain has an unknown field 'height'"),
])
def test_a_hand_edited_plan_is_refused_naming_the_field(edit, message):
    plan = base_plan()
    edit(plan)
    with pytest.raises(ParameterError, match=message):
        P.parse(P.to_json(plan), pr.SCHEMA)
