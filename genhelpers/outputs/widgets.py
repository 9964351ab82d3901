"""An ipywidgets panel for live exploration, shown when a person runs a notebook.

``panel(make, prompt="…", seed=42, steps=30)`` builds one control per keyword (text box for strings, integer
box for ints, float box for floats) and a Generate button; the button calls ``make(**values)``, which returns
things to show (PIL images, or ``media.gif_preview`` clips), and shows them in place below. Headless runs skip
it: ``genhelpers run`` marks its kernels with GENHELPERS_HEADLESS=1, and notebooks also have a ``widgets``
parameter that profiles turn off.
"""
from __future__ import annotations

import os

HEADLESS = "GENHELPERS_HEADLESS"


def controls(**values) -> dict:
    import ipywidgets as w

    made = {}
    for name, v in values.items():
        if isinstance(v, bool):
            made[name] = w.Checkbox(value=v, description=name)
        elif isinstance(v, int):
            made[name] = w.IntText(value=v, description=name)
        elif isinstance(v, float):
            made[name] = w.FloatText(value=v, description=name)
        else:
            made[name] = w.Text(value="" if v is None else str(v), description=name,
                                layout=w.Layout(width="90%"))
    return made


def panel(make, **values):
    if os.environ.get(HEADLESS):
        return None
    try:
        import ipywidgets as w
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: `pip install ipywidgets` to get the exploration panel")
        return None
    boxes = controls(**values)
    button = w.Button(description="Generate", button_style="primary")
    out = w.Output()

    def on_click(_):
        with out:
            out.clear_output(wait=True)
            button.disabled = True
            try:
                for image in make(**{k: b.value for k, b in boxes.items()}):
                    display(image)
            except Exception as e:  # show the teaching error in the panel instead of a silent callback failure
                print(f"{type(e).__name__}: {e}")
            finally:
                button.disabled = False

    button.on_click(on_click)
    ui = w.VBox([*boxes.values(), button, out])
    display(ui)
    return ui
