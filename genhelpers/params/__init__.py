"""Check a notebook's parameters before any model loads; every error names the parameter and the fix.

``check(**params)`` validates the parameters it has a rule for and returns them as a dict (the record that
goes into every sidecar). Rules are looked up by parameter name, so notebooks share them:

  kinds.py    the kinds of value (sizes, counts, fractions, seeds, prompts, model references, files, lists)
  domains.py  the checks a domain owns (dVAE sources, IP-Adapter blocks, plans, LoRAs…), taken in from it
  rules.py    RULES: every parameter name and its rule
  cross.py    CROSS: rules that relate two parameters
"""
from __future__ import annotations

from ..errors import ParameterError
from .cross import CROSS
from .kinds import writable_dir
from .rules import RULES

__all__ = ["CROSS", "RULES", "ParameterError", "check"]


def check(**params) -> dict:
    """Validate every parameter that has a rule, then the rules relating two parameters, and output_dir last
    (the only check that writes); return the parameters as a plain dict."""
    for name, value in params.items():
        if name != "output_dir" and name in RULES:
            RULES[name](name, value)
    for names, rule in CROSS:
        if all(n in params for n in names):
            rule(params)
    if "output_dir" in params:
        writable_dir("output_dir", params["output_dir"])
    return dict(params)
