import math

import pytest
import torch

from genhelpers.outputs import marching_cubes


@pytest.fixture(scope="module")
def decoder():
    from diffusers.pipelines.shap_e.renderer import MeshDecoder

    d = MeshDecoder()
    cases, masks = marching_cubes.tables()
    d.cases.copy_(cases)
    d.masks.copy_(masks)
    return d


def mesh_of(decoder, field):
    import trimesh

    out = decoder(field, torch.tensor([-1.0, -1, -1]), torch.tensor([2.0, 2, 2]))
    return trimesh.Trimesh(out.verts.numpy(), out.faces.numpy(), process=True)


def grid(n=40):
    g = torch.linspace(-1, 1, n)
    return torch.meshgrid(g, g, g, indexing="ij")


def test_tables_shape_and_limits():
    cases, masks = marching_cubes.tables()
    assert cases.shape == (256, 5, 3) and masks.shape == (256, 5)
    assert not masks[0].any() and not masks[255].any()  # all outside / all inside: no surface
    assert masks.sum(1).max() <= 5 and (cases < 12).all()
    assert masks[1].sum() == 1  # one corner inside: one triangle cutting it off


def test_sphere_is_closed_with_the_right_volume(decoder):
    x, y, z = grid()
    m = mesh_of(decoder, 0.6 - (x**2 + y**2 + z**2).sqrt())
    assert m.is_watertight and len(m.split()) == 1
    assert m.volume == pytest.approx(4 / 3 * math.pi * 0.6**3, rel=0.02)
    assert m.volume > 0  # outward normals: a positive volume


def test_two_separate_balls(decoder):
    x, y, z = grid()
    field = torch.maximum(0.35 - ((x - 0.45) ** 2 + y**2 + z**2).sqrt(), 0.35 - ((x + 0.45) ** 2 + y**2 + z**2).sqrt())
    m = mesh_of(decoder, field)
    assert m.is_watertight and len(m.split()) == 2


def test_install_fills_a_renderer(twins):
    from diffusers.pipelines.shap_e import ShapERenderer

    r = ShapERenderer.from_pretrained(twins["shap-e"] / "shap_e_renderer")
    assert r.mesh_decoder.masks.any()  # the tables travel with the twin, as with the published checkpoint
    assert torch.equal(r.mesh_decoder.cases, marching_cubes.tables()[0])
