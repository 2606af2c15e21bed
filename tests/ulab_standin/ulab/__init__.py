"""Strict host-side stand-in for ulab 6.x (MicroPython's numpy-like module).

Put ``tests/ulab_standin`` first on ``sys.path`` and device code's
``from ulab import numpy as np`` gets ``ulab.numpy`` from here.  See
``tests/ulab_standin/README.md`` for the rules it enforces.
"""

from . import numpy  # noqa: F401  (ulab exposes ulab.numpy as an attribute)
from ._impl import VERSION as __version__, FLOAT_BITS as _FLOAT_BITS  # noqa: F401

_STANDIN = True


def __getattr__(name: str):
    if name == "scipy":
        raise AttributeError("ulab.scipy exists in ulab but is not emulated by the stand-in")
    raise AttributeError("module 'ulab' has no attribute '%s'" % name)
