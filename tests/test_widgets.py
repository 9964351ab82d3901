from PIL import Image

from genhelpers.outputs import widgets


def test_controls_follow_the_value_types():
    c = widgets.controls(prompt="a fox", seed=42, guidance=5.0, refine=True)
    assert [type(w).__name__ for w in c.values()] == ["Text", "IntText", "FloatText", "Checkbox"]
    assert c["seed"].value == 42 and c["prompt"].value == "a fox"


def test_generate_button_calls_make_with_the_current_values():
    seen = []

    def make(prompt, seed):
        seen.append((prompt, seed))
        return [Image.new("RGB", (8, 8))]

    ui = widgets.panel(make, prompt="a fox", seed=1)
    text, seed, button, out = ui.children
    text.value, seed.value = "a cat", 7
    button.click()
    assert seen == [("a cat", 7)] and not button.disabled


def test_errors_are_shown_in_the_panel_not_lost():
    def make(prompt):
        raise ValueError("prompt='' is empty")

    ui = widgets.panel(make, prompt="")
    ui.children[1].click()
    assert not ui.children[1].disabled  # the button comes back after a failure


def test_headless_runs_skip_the_panel(monkeypatch):
    monkeypatch.setenv("GENHELPERS_HEADLESS", "1")
    assert widgets.panel(lambda **k: [], prompt="x") is None


def test_gif_preview_is_an_animated_gif():
    import io

    from genhelpers.outputs import media

    frames = [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(4)]
    gif = media.gif_preview(frames, fps=4)
    assert gif.format == "gif" and Image.open(io.BytesIO(gif.data)).n_frames == 4
