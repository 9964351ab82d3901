import numpy as np
import pytest
from PIL import Image

from genhelpers.outputs import images


def test_demo_image_is_an_object_on_white():
    im = np.asarray(images.demo_image(128))
    assert im.shape == (128, 128, 3) and (im[0, 0] == 255).all()
    centre = im[60, 60]
    assert centre[0] > 120 and centre[0] > 2 * centre[1]  # the red ball in the middle


@pytest.mark.parametrize("kind", ["rgb", "scribble"])
def test_key_frames_move(kind):
    frames = images.key_frames(kind, 3, size=64)
    arrays = [np.asarray(f) for f in frames]
    assert len(frames) == 3 and all(f.size == (64, 64) for f in frames)
    assert not np.array_equal(arrays[0], arrays[2])  # the ball travels
    if kind == "scribble":
        assert set(np.unique(arrays[0])) <= {0, 255} or arrays[0].mean() < 60  # white lines on black


def test_fit_crops_instead_of_stretching():
    im = Image.new("RGB", (100, 100), (255, 255, 255))
    im.paste((0, 0, 0), (0, 0, 100, 20))  # a black band at the top
    out = images.fit(im, 160, 90)
    assert out.size == (160, 90)
    assert np.asarray(out)[45, 80].tolist() == [255, 255, 255]


def test_load_image_errors(tmp_path):
    with pytest.raises(ValueError, match="image='.*nope.png': no such file"):
        images.load_image(str(tmp_path / "nope.png"))
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="could not be read as an image"):
        images.load_image(str(bad))
    assert images.load_image(None, size=(64, 32)).size == (64, 32)
