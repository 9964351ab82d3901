import json

import pytest
from PIL import Image

from genhelpers.outputs import media


def images(n, size=(32, 24)):
    return [Image.new("RGB", size, (40 * i, 100, 200)) for i in range(n)]


def test_images_grid_and_sidecars(tmp_path):
    meta = media.record("sdxl", {"prompt": "a fox", "steps": 2})
    paths = media.save_images(images(3), tmp_path, "sdxl", meta, seeds=[7, 8, 9])
    assert [p.name for p in paths] == ["sdxl_000.png", "sdxl_001.png", "sdxl_002.png", "sdxl_grid.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in paths] + [p.with_suffix(".json").name for p in paths])
    side = json.loads((tmp_path / "sdxl_001.json").read_text())
    assert side["seed"] == 8 and side["index"] == 1 and side["file"] == "sdxl_001.png"
    assert side["parameters"] == {"prompt": "a fox", "steps": 2} and side["notebook"] == "sdxl"
    assert side["versions"]["diffusers"] and side["versions"]["torch"] and side["memory"]["host_peak_mib"] > 0
    grid = Image.open(tmp_path / "sdxl_grid.png")
    assert grid.size == (3 * 32, 24)
    assert json.loads((tmp_path / "sdxl_grid.json").read_text())["grid"]["of"] == [p.name for p in paths[:3]]
    png = Image.open(tmp_path / "sdxl_000.png")
    assert json.loads(png.text["parameters"]) == {"prompt": "a fox", "steps": 2}  # readable by image viewers


def test_single_image_has_no_grid(tmp_path):
    paths = media.save_images(images(1), tmp_path, "x", {})
    assert [p.name for p in paths] == ["x_000.png"]


def test_grid_pads_an_incomplete_row(tmp_path):
    paths = media.save_images(images(5), tmp_path, "x", {})
    assert Image.open(paths[-1]).size == (4 * 32, 2 * 24)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def half_then_fail(tmp):
        tmp.write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        media.save_file(tmp_path / "a.png", half_then_fail, {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_unserialisable_metadata_fails_before_the_image_lands(tmp_path):
    class Weird:
        def __repr__(self):
            raise RuntimeError("cannot describe")

    with pytest.raises(RuntimeError):
        media.save_images(images(1), tmp_path, "x", {"parameters": {"w": Weird()}})
    assert list(tmp_path.iterdir()) == []


def test_show_outside_a_notebook_prints_the_grid(tmp_path, capsys):
    paths = media.save_images(images(2), tmp_path, "x", {})
    media.show(paths)
    assert capsys.readouterr().out.strip() == str(tmp_path / "x_grid.png")


def test_versions_lists_the_stack():
    v = media.versions()
    assert set(media.PACKAGES) <= set(v) and v["python"].count(".") == 2


def colored_sphere():
    import numpy as np
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    colors = np.zeros((len(m.vertices), 4), dtype=np.uint8)
    colors[:, 0] = 200
    colors[:, 3] = 255
    colors[m.vertices[:, 2] > 0, 2] = 220  # blue-ish upper half
    m.visual.vertex_colors = colors
    return m


def test_mesh_files_load_back_with_the_same_geometry_and_colours(tmp_path):
    import numpy as np
    import trimesh

    sphere = colored_sphere()
    paths = media.save_mesh(sphere, tmp_path, "ball", {"notebook": "t"})
    assert [p.name for p in paths] == ["ball.ply", "ball.obj", "ball.glb", "ball_preview.png"]
    facts = json.loads((tmp_path / "ball.ply").with_suffix(".json").read_text())["mesh"]
    assert facts["vertices"] == len(sphere.vertices) and facts["faces"] == len(sphere.faces) and facts["watertight"]
    assert facts["volume"] == pytest.approx(sphere.volume, rel=1e-3)
    for p in paths[:3]:
        back = trimesh.load(p, force="mesh", process=False)
        assert (len(back.vertices), len(back.faces)) == (facts["vertices"], facts["faces"]), p.name
        vc = np.asarray(back.visual.vertex_colors)[:, :3]
        assert np.array_equal(np.unique(vc[:, 0]), [200]) and set(np.unique(vc[:, 2])) == {0, 220}, p.name


def test_mesh_from_diffusers_output_keeps_vertex_colours():
    from types import SimpleNamespace

    import torch

    out = SimpleNamespace(verts=torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), faces=torch.tensor([[0, 1, 2]]),
                          vertex_channels={"R": torch.tensor([1.0, 0, 0]), "G": torch.tensor([0.0, 1, 0]),
                                           "B": torch.tensor([0.0, 0, 1.5])})
    tm = media.to_trimesh(out)
    assert tm.visual.vertex_colors[:, :3].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]  # clipped to 1


def test_mesh_preview_draws_the_object_in_its_colours():
    import numpy as np

    img = np.asarray(media.mesh_preview(colored_sphere(), size=128))
    assert img.shape == (128, 128, 3)
    assert (img[0, 0] == 255).all()  # background corner
    centre = img[54:74, 54:74].reshape(-1, 3)
    assert (centre[:, 0] > centre[:, 1] + 40).all()  # red-dominant object fills the middle, shaded
    assert len({tuple(c) for c in centre}) > 3  # shading varies across the surface


def test_a_failing_mesh_format_leaves_no_mesh_files(tmp_path):
    with pytest.raises(ValueError):
        media.save_mesh(colored_sphere(), tmp_path, "ball", {}, formats=("ply", "nosuchformat"))
    assert list(tmp_path.iterdir()) == []


def frames(n, size=32, still=()):
    """n frames of a moving square; frames whose index is in ``still`` repeat the previous one."""
    out = []
    for i in range(n):
        j = i - 1 if i in still else i
        im = Image.new("RGB", (size, size), (255, 255, 255))
        im.paste((200, 30, 30), (j % size, 8, j % size + 8, 16))
        out.append(im)
    return out


def test_video_mp4_gif_and_strip(tmp_path):
    import imageio.v3 as iio

    paths = media.save_video(frames(12), tmp_path, "clip", {"notebook": "t"}, fps=6)
    assert [p.name for p in paths] == ["clip.mp4", "clip.gif", "clip_strip.png"]
    assert iio.imread(paths[0], index=None).shape[:3] == (12, 32, 32)
    gif = Image.open(paths[1])
    side = json.loads(paths[1].with_suffix(".json").read_text())
    assert gif.n_frames == 12 and gif.info["loop"] == 0 and gif.info["duration"] == side["gif_frame_ms"] == 170
    assert side["clip"] == {"frames": 12, "fps": 6, "width": 32, "height": 32, "duration_s": 2.0}
    assert side["gif_frames"] == 12
    strip = json.loads(paths[2].with_suffix(".json").read_text())["strip_frames"]
    assert strip[0] == 0 and strip[-1] == 11 and len(strip) == 8
    assert Image.open(paths[2]).size == (8 * 32, 32)


def test_gif_of_a_clip_with_repeated_frames_keeps_its_timing(tmp_path):
    paths = media.save_video(frames(6, still={3}), tmp_path, "clip", {}, fps=5)
    gif = Image.open(paths[1])
    side = json.loads(paths[1].with_suffix(".json").read_text())
    assert gif.n_frames == side["gif_frames"] == 5 and side["clip"]["frames"] == 6
    total = 0
    for k in range(gif.n_frames):
        gif.seek(k)
        total += gif.info["duration"]
    assert total == 6 * 200  # the repeated frame is shown twice as long: same playback


def test_video_frames_from_float_arrays(tmp_path):
    import numpy as np

    arr = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    paths = media.save_video(arr, tmp_path, "v", {}, fps=2)
    assert Image.open(paths[1]).n_frames == 4


def test_failed_video_leaves_nothing(tmp_path, monkeypatch):
    import imageio.v2

    def broken(*a, **k):
        raise OSError("ffmpeg missing")

    monkeypatch.setattr(imageio.v2, "mimwrite", broken)
    with pytest.raises(OSError, match="ffmpeg missing"):
        media.save_video(frames(3), tmp_path, "v", {}, fps=2)
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_normal_file_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        paths = media.save_images(images(1), tmp_path, "x", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths[0].stat().st_mode) == 0o644
    assert stat.S_IMODE(paths[0].with_suffix(".json").stat().st_mode) == 0o644


def test_displayable_picks_what_people_look_at(tmp_path):
    names = ["a_000.png", "a_000.json", "a_001.png", "a_grid.png", "c.mp4", "c.gif", "c_strip.png", "m.ply",
             "m_preview.png"]
    assert [p.name for p in media.displayable(names)] == ["a_grid.png", "c.gif", "m_preview.png"]
    assert [p.name for p in media.displayable(["a_000.png", "c_strip.png"])] == ["a_000.png"]
