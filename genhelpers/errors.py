"""The errors every layer may raise: a leaf module that imports nothing of genhelpers.

``ParameterError`` is the teaching error of a bad notebook parameter: it names the parameter and the fix, and is
raised before any model loads (``genhelpers.check`` gathers the rules; a domain that owns a check raises it too).
"""
from __future__ import annotations


class ParameterError(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter
