"""Our own model classes, by name, as a published folder names them (``model_index.json``'s ``_class_name``, a
component's ``[library, class]``, a config's ``_class_name``).

diffusers finds a class from the library a folder names; for our own classes the folder names no importable
library of ours, so ``genhelpers.models`` tells this table which module holds each class. The hub never imports
``models`` itself: a class is imported by its module path the first time a folder needs it."""
from __future__ import annotations

import importlib

_OWN: dict[str, str] = {}  # class name -> module path


def register(classes: dict[str, str]) -> None:
    """Make ``{class name: module path}`` known to the loader and to the full-size configs."""
    _OWN.update(classes)


def own(name: str):
    """Our class called ``name``, or None when it is not one of ours."""
    module = _OWN.get(name)
    return getattr(importlib.import_module(module), name) if module else None
