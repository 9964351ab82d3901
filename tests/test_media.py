import json

import pytest
from PIL import Image

from genhelpers import media


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
