"""The teaching figures: each drawing function returns a picture and says which texts it drew (the notebooks pass
the numbers, read from the catalog and the configs)."""
from PIL import Image

from genhelpers.outputs import figures


def test_flow_draws_every_box_and_arrow_label():
    image = figures.flow([[("prompt", "tokens"), "CLIP ViT-L\n77 × 768", None, "77 × 2048"],
                          [None, "OpenCLIP bigG\n77 × 1280"]],
                         links=[((1, 1), (0, 3), "concatenated")], styles={(0, 0): "data", (1, 1): "trained"},
                         title="SDXL", note="numbers from the configs")
    assert isinstance(image, Image.Image) and image.width > 300 and image.height > 150
    labels = image.info["labels"]
    for text in ("SDXL", "prompt", "tokens", "CLIP ViT-L\n77 × 768", "77 × 2048", "OpenCLIP bigG\n77 × 1280",
                 "concatenated", "numbers from the configs"):
        assert text in labels


def test_cameras_label_each_view_and_each_elevation():
    image = figures.cameras([(30, 20, "1"), (90, -10, "2"), (150, 20, "3")], title="six views")
    assert image.width > image.height > 100
    assert {"1", "2", "3", "20°", "-10°", "six views"} <= set(image.info["labels"])


def test_grid_and_side_by_side():
    a = figures.grid([[1, 0], [1, 1]], ["q0", "q1"], ["k0", "k1"], title="pattern", xlabel="key", ylabel="query")
    b = figures.flow([["a", "b"]])
    both = figures.side_by_side(a, b)
    assert both.width == a.width + b.width + 12 and both.height == max(a.height, b.height)
    assert {"pattern", "key", "query", "a", "b"} <= set(both.info["labels"])


def test_lines_label_each_curve():
    image = figures.lines(range(5), {"guidance": [1, 1.5, 2, 2.5, 3]}, title="ramp", xlabel="frame", ylabel="s")
    assert image.width > 200 and {"ramp", "frame", "s", "guidance"} <= set(image.info["labels"])


def test_figures_stay_out_of_the_import_of_genhelpers():
    """Drawing needs matplotlib; importing genhelpers must not pull it in."""
    import subprocess
    import sys

    code = "import sys, genhelpers, genhelpers.outputs.figures; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# nb/lessons-b
def test_views_from_one_point_label_each_view():
    image = figures.views_from_one_point([(45.0 * i, f"view {i}") for i in range(8)], 90, title="ring", note="above")
    assert 200 < image.width < 2 * image.height
    assert {"ring", "above", "view 0", "view 7"} <= set(image.info["labels"])


def test_a_figure_leaves_the_notebooks_charts_alone():
    """A notebook draws its own pyplot charts after the figure cell: drawing a figure must neither switch pyplot's
    backend (the inline one would stop showing them, with no warning) nor leave a pyplot figure open."""
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt\n"
            "from genhelpers.outputs import figures\n"
            "figures.flow([['a', 'b']]); figures.cameras([(0, 10, '1')]); figures.grid([[1]], ['q'], ['k'])\n"
            "figures.lines([0, 1], {'s': [0, 1]}); figures.views_from_one_point([(0, 'v')], 90)\n"
            "print(matplotlib.get_backend(), plt.get_fignums())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "svg []", done.stderr[-2000:]
