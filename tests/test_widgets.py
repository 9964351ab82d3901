from PIL import Image

from genhelpers import widgets


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
