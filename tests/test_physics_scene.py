"""GPT4Motion's first half: the scene plan, the MuJoCo simulation measured against an analytic oracle and against the
authors' shipped basketball maps (numbers in tests/reference/gpt4motion/facts.json), and the ray-cast maps."""
import json
import math

import numpy as np
import pytest

from genhelpers.errors import ParameterError
from genhelpers.models import physics_scene as ps
from genhelpers.models import planner

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "gpt4motion" / "facts.json").read_text())
G = 9.81


def drop(**obj):
    """A plan of one object dropped from rest (every other field at its default)."""
    return ps.default_plan(objects=[ps.default_object(**obj)])


# ------------------------------------------------------------------------------------------------ an oracle
def bouncing_ball(z0: float, r: float, e: float, fps: float, frames: int):
    """A ball dropped from rest with its centre at z0 on a rigid floor, written from Newton's laws alone: contact
    times and peak heights (above the resting height) of each flight. Independent of the module under test."""
    h, t, v = z0 - r, math.sqrt(2 * (z0 - r) / G), math.sqrt(2 * G * (z0 - r))
    hits, peaks = [], [h]
    while t < (frames - 1) / fps and v > 0.5:  # (slower hits are the ball settling: not counted as bounces)
        hits.append(t)
        v *= e
        peaks.append(v * v / (2 * G))
        t += 2 * v / G
    return hits, peaks


@pytest.mark.parametrize("e", [0.9, 0.8, 0.5])
def test_a_dropped_ball_follows_the_oracle(e):
    plan = drop(size=0.3, z=3.0, restitution=e)
    sim = ps.simulate(plan, 72, 24)
    hits, peaks = bouncing_ball(3.0, 0.3, e, 24, 72)
    got = ps.measure(plan, sim)[0]
    # a soft contact lasts ~π/√k = 31 ms where the oracle's is instantaneous: each hit comes up to that much later
    assert len(got["floor_hits_s"]) >= len(hits) >= 2
    late = [a - b for a, b in zip(got["floor_hits_s"], hits, strict=False)]
    assert all(0 <= d <= 0.005 + 0.035 * k for k, d in enumerate(late))
    ratios = [b / a for a, b in zip(peaks, peaks[1:], strict=False)][:len(got["rebound_ratios"])]
    assert got["rebound_ratios"] and got["rebound_ratios"] == pytest.approx(ratios, abs=0.03)
    assert got["ideal_ratio"] == pytest.approx(e * e)


def test_the_authors_basketball_touches_the_floor_at_their_frames():
    """Their shipped maps: ball 1.2 m across dropped from 4.8 m, restitution 0.825 on a floor of 1.0, 24 fps."""
    ex = FACTS["blender_scene_rules"]["basketball_example"]
    measured = FACTS["shipped_basketball_maps_measured"]["floor_contact_frames"]
    plan = ps.default_plan(objects=[ps.default_object(size=ex["ball_max_dimension_m"] / 2, z=ex["ball_position"][2],
                                                      restitution=ex["ball_restitution"], mass=ex["ball_mass_kg"])],
                           floor_restitution=ex["floor_elasticity"])
    got = ps.measure(plan, ps.simulate(plan, 101, FACTS["blender_scene_rules"]["fps"]))[0]["floor_hit_frames"]
    assert len(got) == len(measured) and all(abs(a - b) <= 2 for a, b in zip(got, measured, strict=True))


def test_restitution_is_what_the_contact_returns():
    """The damping chosen for each restitution returns that share of the speed (a contact that lets go at zero
    force); the textbook formula of a contact that also pulls would be too bouncy."""
    for e in (0.95, 0.8, 0.5, 0.2):
        assert ps._exit_speed(ps.damping_ratio(e)) == pytest.approx(e, abs=1e-6)
        textbook = -math.log(e) / math.sqrt(math.pi ** 2 + math.log(e) ** 2)
        assert ps.damping_ratio(e) > textbook and ps._exit_speed(textbook) > e
    assert ps.damping_ratio(1.0) == 0 and ps.damping_ratio(0.0) == ps.ZETA_MAX


def test_the_floor_and_the_object_multiply():
    a = ps.measure(p := drop(restitution=0.9, z=2.0), ps.simulate(p, 48, 24))[0]
    b = ps.measure(p := ps.default_plan(objects=[ps.default_object(restitution=0.9, z=2.0)], floor_restitution=0.5),
                   ps.simulate(p, 48, 24))[0]
    assert b["restitution"] == pytest.approx(0.45) and b["rebound_ratios"][0] < a["rebound_ratios"][0] / 3


def test_a_tilted_box_comes_to_rest_on_a_face():
    plan = drop(shape="box", aspect="flat", size=0.3, z=1.5, spin=4.0, restitution=0.2)
    sim = ps.simulate(plan, 96, 24)
    last = sim["positions"][-1, 0]
    assert last[2] == pytest.approx(0.3 * ps.ASPECTS["flat"][2], abs=0.01)  # on its largest face
    assert np.abs(sim["positions"][-1] - sim["positions"][-2]).max() < 1e-4  # at rest


def test_placement_lifts_and_separates():
    plan = ps.default_plan(objects=[ps.default_object(z=0.1), ps.default_object(z=0.1)])
    start, notes = ps.place(plan)
    assert start[0, 2] == pytest.approx(0.601) and "inside the floor" in notes[0]
    assert np.linalg.norm(start[1] - start[0]) >= 1.2 and "overlapped" in notes[-1]
    assert np.all(np.abs(start[:, :2]) <= ps.HALF_WORLD) and np.all(start[:, 2] <= ps.WORLD_HEIGHT)


# ------------------------------------------------------------------------------------------------ the plan matters
BASE = dict(shape="ball", size=0.4, x=0.0, y=0.0, z=2.0, restitution=0.8)
CHANGES = [("shape", "box"), ("size", 0.2), ("restitution", 0.3), ("x", 1.0), ("y", -1.0), ("z", 3.5), ("vx", 2.0),
           ("vy", -2.0), ("vz", 3.0), ("spin", 6.0)]


def trajectory(plan, frames=24):
    return ps.simulate(plan, frames, 12)["positions"]


@pytest.mark.parametrize("field, value", CHANGES)
def test_every_object_field_changes_the_simulation(field, value):
    before, after = drop(**BASE), drop(**{**BASE, field: value})
    if field == "shape":  # a box dropped flat falls and bounces like a ball of the same size: it looks different
        a, b = (ps.render(p, ps.simulate(p, 2, 12), 48, 32)["labels"] for p in (before, after))
        assert (a != b).sum() > 20
        return
    assert np.abs(trajectory(before) - trajectory(after)).max() > 0.05, field


def test_aspect_mass_and_the_floor_change_the_simulation():
    box = dict(BASE, shape="box", spin=3.0)
    assert np.abs(trajectory(drop(**box, aspect="cube")) - trajectory(drop(**box, aspect="tall"))).max() > 0.05
    # mass matters where objects meet: a light and a heavy ball thrown at each other
    pair = [dict(BASE, x=-1.0, z=0.4, vx=3.0), dict(BASE, x=1.0, z=0.4, vx=-3.0)]
    light = ps.default_plan(objects=[ps.default_object(**pair[0], mass=0.5), ps.default_object(**pair[1], mass=0.5)])
    heavy = ps.default_plan(objects=[ps.default_object(**pair[0], mass=5.0), ps.default_object(**pair[1], mass=0.5)])
    a, b = ps.simulate(light, 24, 12), ps.simulate(heavy, 24, 12)
    assert any(c["a"] == "objects[0]" for c in a["contacts"])  # they did meet
    assert b["positions"][-1, 1, 0] - a["positions"][-1, 1, 0] > 0.2  # the heavy one pushes the other further
    assert np.abs(trajectory(drop(**BASE)) - trajectory(ps.default_plan(
        objects=[ps.default_object(**BASE)], floor_restitution=0.3))).max() > 0.05


def test_camera_colour_and_scene_words_change_the_maps_or_the_prompt():
    plan = drop(**BASE)
    sim = ps.simulate(plan, 2, 8)
    views = [ps.render({**plan, "camera": c}, sim, 48, 32)["labels"] for c in ps.CAMERAS]
    assert not np.array_equal(views[0], views[1]) and not np.array_equal(views[0], views[2])
    text = ps.prompt_for("a ball", plan)
    assert ps.prompt_for("a ball", {**plan, "scene_words": "street"}) != text
    assert ps.prompt_for("a ball", drop(**BASE, colour="red")) != text and "an orange ball" in text


# ------------------------------------------------------------------------------------------------ the maps
@pytest.fixture(scope="module")
def basketball():
    plan = ps.default_plan(objects=[ps.default_object(size=0.6, z=4.8, restitution=0.825)])
    sim = ps.simulate(plan, 24, 24)
    return plan, sim, ps.render(plan, sim, 480, 270)


def test_the_authors_camera_and_lens(basketball):
    """At a quarter of 1920x1080: the shipped ball is 211-214 px wide, the floor's far edge at rows 805-807."""
    _, _, maps = basketball
    ids = maps["ids"][0]
    cols = np.where((ids == 1).any(axis=0))[0]
    lo, hi = FACTS["shipped_basketball_maps_measured"]["ball_width_px"]
    assert lo / 4 - 1 <= cols.max() - cols.min() + 1 <= hi / 4 + 1
    first_floor_row = np.where((ids == 0).any(axis=1))[0].min()
    rows = FACTS["shipped_basketball_maps_measured"]["horizon_rows"]
    assert rows[0] / 4 - 1 <= first_floor_row <= rows[1] / 4 + 1


def test_depth_is_near_bright_with_one_range_per_clip(basketball):
    plan, sim, maps = basketball
    depth = ps.depth_maps(maps["depth"])
    ids = maps["ids"]
    assert depth[ids == -1].max() == 0 and depth.max() == pytest.approx(1.0)
    for f in range(len(depth)):  # nearer is brighter: every visible point, in every frame
        seen = ids[f] >= 0
        order = np.argsort(maps["depth"][f][seen])
        assert np.all(np.diff(depth[f][seen][order]) <= 1e-6)
    floor_both = (ids[0] == 0) & (ids[-1] == 0)  # the floor keeps its brightness while the ball moves
    assert np.abs(depth[0][floor_both] - depth[-1][floor_both]).max() < 1e-6


def test_edges_draw_every_silhouette_and_nothing_on_the_floor(basketball):
    _, _, maps = basketball
    edges, ids = ps.edge_maps(maps["labels"]), maps["ids"]
    share = edges.mean()
    lo, hi = FACTS["shipped_basketball_maps_measured"]["freestyle_line_share_alpha_gt_127"]
    assert lo / 2 < share < hi * 2  # about as many line pixels as the authors' Freestyle pass
    for f in range(len(ids)):
        ball = ids[f] == 1
        inner = ball.copy()  # the ball's pixels whose 4 neighbours are ball too
        inner[1:-1, 1:-1] = ball[1:-1, 1:-1] & ball[:-2, 1:-1] & ball[2:, 1:-1] & ball[1:-1, :-2] & ball[1:-1, 2:]
        rim = ball & ~inner
        near_edge = edges[f] | np.roll(edges[f], -1, 0) | np.roll(edges[f], -1, 1)
        assert near_edge[rim].all()  # the silhouette is drawn
        floor = ids[f] == 0
        inside = floor.copy()
        inside[1:-1, 1:-1] = floor[1:-1, 1:-1] & floor[:-2, 1:-1] & floor[2:, 1:-1] & floor[1:-1, :-2] & floor[1:-1, 2:]
        inside[[0, -1], :], inside[:, [0, -1]] = False, False  # (the frame's border has no outer neighbours)
        assert not edges[f][inside].any()  # no line inside the floor


def test_seams_turn_with_a_spinning_ball():
    still = ps.default_plan(objects=[ps.default_object(size=0.8, z=2.5)])
    spun = ps.default_plan(objects=[ps.default_object(size=0.8, z=2.5, spin=8.0)])
    a = ps.edge_maps(ps.render(still, ps.simulate(still, 4, 8), 96, 64)["labels"])
    b = ps.edge_maps(ps.render(spun, ps.simulate(spun, 4, 8), 96, 64)["labels"])
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[-1], b[-1])


def test_box_creases_are_lines():
    plan = ps.default_plan(objects=[ps.default_object(shape="box", size=0.8, z=2.0, spin=2.0)], camera="top")
    maps = ps.render(plan, ps.simulate(plan, 3, 8), 96, 64)
    box = maps["ids"][-1] == 1
    faces = len(np.unique(maps["labels"][-1][box]))
    assert faces >= 2  # seen from above: the top and at least one side, with a crease line between


# ------------------------------------------------------------------------------------------------ hand-edited plans
@pytest.mark.parametrize("edit, message", [
    (lambda p: p["objects"][0].update(restitution=1.5), "objects[0].restitution=1.5 is outside [0, 0.95]"),
    (lambda p: p["objects"][0].update(z=7.0), "objects[0].z=7.0 is outside [0, 5]"),
    (lambda p: p["objects"][0].update(shape="cylinder"), "objects[0].shape='cylinder' is not an option"),
    (lambda p: p["objects"][0].update(colour_name="red"), "unknown field 'colour_name'"),
    (lambda p: p.update(objects=[]), "objects has 0 item(s): it needs at least 1"),
    (lambda p: p.update(camera="drone"), "camera='drone' is not an option"),
])
def test_hand_edited_plans_are_refused_naming_the_field(edit, message):
    plan = ps.default_plan()
    edit(plan)
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        planner.parse(json.dumps(plan), ps.SCHEMA)


def test_defaults_are_a_valid_plan_and_the_listing_names_the_world():
    plan = planner.defaults(ps.SCHEMA)
    assert planner.validate(plan, ps.SCHEMA) == plan == ps.default_plan()
    listing = planner.listing(ps.SCHEMA)
    assert "5x life size" in listing and "number in [0, 5] m" in listing
