"""Tiny random-weight twins of the published models: the same classes, the published folder layout, small
widths, fixed seeds. One module per family; ``registry`` builds and caches them and tells the hub how a
``tiny:<key>`` reference resolves. Nothing on the real loading path (``hub``, ``models``) imports this package."""
from . import registry as _registry  # noqa: F401  (registers how tiny: references resolve)
