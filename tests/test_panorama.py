"""The panorama room (numpy only) and the HTML viewer, on synthetic pictures: no model.

Views are cut out of a smooth equirectangular texture with our own cameras, so the seam measures and the
stitcher are checked against a known answer; this also pins the camera conventions (view i+1 to the right)."""
import base64
import html.parser
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from genhelpers.outputs import pano_viewer, panorama

from .conftest import REFERENCE

FACTS = json.loads((REFERENCE / "mvdiffusion" / "reference_behaviour.json").read_text())


def texture(height, width, periodic=True):
    """A smooth colour field over the sphere (periodic in longitude unless asked otherwise)."""
    lon = np.radians(-180 + (np.arange(width) + 0.5) * 360 / width)
    lat = np.radians(90 - (np.arange(height) + 0.5) * 180 / height)
    lon, lat = np.meshgrid(lon, lat)
    tilt = 0.0 if periodic else (lon + np.pi) / (2 * np.pi)  # a ramp: one jump where 180° meets -180°
    return np.stack([0.5 + 0.4 * np.sin(3 * lon) * np.cos(lat), 0.5 + 0.3 * np.cos(2 * lon + lat),
                     0.2 + 0.6 * tilt + 0.1 * np.sin(4 * lat)], -1)


@pytest.fixture(scope="module")
def ring_views():
    K, R = panorama.ring(64)
    return panorama.render_views(texture(256, 512), K, R, 64), K, R


def test_cameras_follow_the_recorded_conventions():
    facts = FACTS["correspondence"]["check_values_64px_fov90_yaw0"]
    K, R = panorama.ring(64)
    assert K[0].tolist() == facts["K_view0"] and np.allclose(R[1], facts["R_view1"])
    for (i, j, x, y), key in [((0, 1, 63, 32), "view0_pixel_(63,32)_in_view1"),
                              ((0, 7, 0, 32), "view0_pixel_(0,32)_in_view7"),
                              ((0, 1, 4, 4), "view0_pixel_(4,4)_in_view1")]:
        got, _ = panorama.apply_homography(panorama.homography(K[i], R[i], K[j], R[j]), np.array([[x, y]], float))
        assert np.allclose(got[0], facts[key], atol=1e-3)
    assert R[1] @ np.array([0, 0, 1.0]) == pytest.approx([np.sqrt(0.5), 0, np.sqrt(0.5)], abs=1e-6)  # to the right
    assert panorama.yaws(8, 370) == [10.0 + 45 * i for i in range(8)]  # turns wrap around
    big = panorama.ring(512)[0][0]
    assert (big[0, 0], big[0, 2]) == (256.0, 255.5)


def test_neighbours_of_a_true_panorama_agree_and_a_shuffled_ring_does_not(ring_views):
    views, K, R = ring_views
    d = panorama.overlap_disagreement(views, K, R)
    assert len(d) == 8 and max(d) < 0.003  # interpolation error only
    shuffled = panorama.overlap_disagreement(views[[0, 2, 1, 3, 4, 5, 6, 7]], K, R)
    assert min(shuffled[:3]) > 30 * max(d)


def test_stitching_gives_back_the_texture_inside_the_covered_band(ring_views):
    views, K, R = ring_views
    out = panorama.stitch(views, K, R, width=256)
    truth = texture(128, 256)[out["row0"]:out["row0"] + out["band"].shape[0]]
    assert out["band"].shape == truth.shape and np.abs(out["band"] - truth).mean() < 0.002
    top, bottom = out["latitudes"]
    assert top == -bottom and 40 < top < 42.8  # |latitude| ≤ atan(cos 22.5°) = 42.7° is covered everywhere
    assert not out["coverage"][0].any() and out["coverage"][64].all()  # the poles are never seen


def test_wrap_seam_ratio_sees_a_step_at_the_wrap():
    assert panorama.wrap_seam_ratio(texture(64, 256)) < 1.5
    assert panorama.wrap_seam_ratio(texture(64, 256, periodic=False)) > 20


def test_a_ring_with_a_gap_is_refused():
    K, R = panorama.ring(64, yaws_deg=[0, 45, 90, 180, 225, 270, 315, 330])
    views = np.zeros((8, 64, 64, 3), np.float32)
    with pytest.raises(ValueError, match="do not overlap"):
        panorama.overlap_disagreement(views, K, R)


# ---------------------------------------------------------------------------------------------- the viewer
class Parsed(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.scripts, self.canvases = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "canvas":
            self.canvases.append((attrs["width"], attrs["height"]))
        elif tag == "script":
            self.scripts += 1


def test_viewer_is_one_offline_page_with_the_panorama_inside(tmp_path):
    band = texture(60, 256)
    page = pano_viewer.viewer_html(band, (42.2, -42.2), title="a <test>")
    parsed = Parsed()
    parsed.feed(page)
    assert len(parsed.images) == 1 and parsed.canvases == [("800", "450")] and parsed.scripts == 1
    src = parsed.images[0]
    assert src.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size == (256, 60)
    assert "http" not in page.lower() and "<script src" not in page and "a &lt;test&gt;" in page
    path = pano_viewer.save(page, tmp_path / "panorama_viewer.html", {"notebook": "test"})
    assert path.read_text() == page and json.loads(path.with_suffix(".json").read_text())["file"] == path.name
    with pytest.raises(ValueError, match="latitudes"):
        pano_viewer.viewer_html(band, (-10, 10))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_viewer_looks_where_it_says(tmp_path):
    """The page's own script, run by node against a stand-in canvas: straight ahead is longitude 0, latitude 0;
    → turns 45° to the right; the pitch stops at the edge of the band."""
    width, height = 64, 32
    colours = np.zeros((height, width, 3), np.uint8)  # red: the column, green: the row
    colours[..., 0] = (np.arange(width) * 4)[None]
    colours[..., 1] = (np.arange(height) * 8)[:, None]
    page = pano_viewer.viewer_html(colours, (42.1875, -42.1875))
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    source = np.asarray(colours, np.uint8).reshape(-1, 3)  # the canvas reads the decoded JPEG: use exact pixels
    rgba = ",".join(f"{r},{g},{b},255" for r, g, b in source)
    harness = f"""
const srcData = new Uint8ClampedArray([{rgba}]);
let last = null; const on = {{}}; let frames = [];
const painter = {{ createImageData: (w, h) => ({{ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }}),
  putImageData: d => {{ last = d; }}, drawImage: () => {{}},
  getImageData: () => ({{ width: {width}, height: {height}, data: srcData }}) }};
const node = id => ({{ style: {{}}, clientHeight: 450, width: 800, height: 450, getContext: () => painter,
  addEventListener: (t, f) => {{ on[id + t] = f; }} }});
const nodes = {{ view: node("view"), flat: node("flat"), mode: node("mode"), info: {{ textContent: "" }},
  pano: {{ complete: true, naturalWidth: {width}, naturalHeight: {height}, src: "data:" }} }};
global.document = {{ getElementById: id => nodes[id], createElement: () => ({{ getContext: () => painter }}) }};
global.window = {{ addEventListener: (t, f) => {{ on["window" + t] = f; }} }};
global.requestAnimationFrame = f => frames.push(f);
const flush = () => {{ while (frames.length) frames.shift()(); }};
{script}
flush();
const at = (i, j) => Array.from(last.data.slice(4 * (j * 800 + i), 4 * (j * 800 + i) + 2));
const out = {{ ahead: at(400, 225) }};
on.windowkeydown({{ key: "ArrowRight", preventDefault() {{}} }}); flush(); out.right = at(400, 225);
on.viewmousedown({{ clientX: 400, clientY: 225 }}); on.windowmousemove({{ clientX: 400, clientY: -2000 }}); flush();
out.info = nodes.info.textContent;
console.log(JSON.stringify(out));
"""
    (tmp_path / "harness.js").write_text(harness)
    done = subprocess.run(["node", str(tmp_path / "harness.js")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ahead"] == [126, 124]  # column 31.5, row 15.5: longitude 0, latitude 0
    assert out["right"] == [158, 124]  # column 39.5: longitude 45°
    assert "yaw 45°" in out["info"] and "pitch -19°" in out["info"]  # 42.2° band − half of a 46.6° view
