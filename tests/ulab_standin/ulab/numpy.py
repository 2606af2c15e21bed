"""ulab.numpy as seen by device code (strict stand-in; see ../README.md).

Only what ulab 6.x provides is here.  Names that numpy has but ulab lacks
raise AttributeError with a hint, so ``hasattr(np, "stack")`` is False as on
the device.
"""

from __future__ import annotations

import math as _math

from ._impl import (  # noqa: F401  (re-exported API)
    FLOAT as _FLOAT,
    BOOL as _BOOL,
    FLOAT_BITS as _FLOAT_BITS,
    UINT8 as uint8,
    INT8 as int8,
    UINT16 as uint16,
    INT16 as int16,
    ndarray,
    array,
    zeros,
    ones,
    full,
    empty,
    arange,
    frombuffer,
    concatenate,
    take,
    dot,
    clip,
    maximum,
    minimum,
    where,
    argmax,
    argmin,
    sum,
    max,
    min,
    floor,
    ceil,
    exp,
    sqrt,
    left_shift,
    right_shift,
    bitwise_and,
    bitwise_or,
    bitwise_xor,
    TooManyDimensions as _TooManyDimensions,
    _stats,
    _reset_stats,
    _to_numpy,
)

# ulab's dtype names are plain ints (typecodes); they shadow the builtins
# here exactly as they do on the device (np.float is not builtins.float).
float = _FLOAT  # noqa: A001
bool = _BOOL  # noqa: A001

e = _math.e
pi = _math.pi
inf = _math.inf
nan = _math.nan

_STANDIN = True

_NO_DTYPE = ("ulab's only dtypes are uint8, int8, uint16, int16, float and bool; "
             "np.float is float32 on ESP32/RP2 boards")

_ABSENT = {
    "float32": _NO_DTYPE, "float64": _NO_DTYPE, "float16": _NO_DTYPE,
    "double": _NO_DTYPE, "single": _NO_DTYPE, "half": _NO_DTYPE,
    "int32": _NO_DTYPE, "uint32": _NO_DTYPE, "int64": _NO_DTYPE,
    "uint64": _NO_DTYPE, "intp": _NO_DTYPE, "int_": _NO_DTYPE,
    "float_": _NO_DTYPE, "bool_": _NO_DTYPE, "dtype": "there are no dtype objects; "
    "dtypes are ints such as np.int8",
    "pad": "build the padded array with np.zeros and slice assignment",
    "stack": "use np.concatenate on reshaped arrays",
    "vstack": "use np.concatenate((a, b), axis=0)",
    "hstack": "use np.concatenate((a, b), axis=1)",
    "expand_dims": "use a.reshape(...)",
    "squeeze": "use a.reshape(...)",
    "ravel": "use a.flatten() (copy) or a.reshape(-1) (view when dense)",
    "matmul": "use np.dot (1-D and 2-D only, float result)",
    "tensordot": "use np.dot on 2-D reshaped arrays",
    "einsum": "use np.dot on 2-D reshaped arrays",
    "cumsum": "accumulate with a loop or in-place +=",
    "prod": "multiply in a loop",
    "repeat": "build the result with slice assignment",
    "tile": "build the result with slice assignment",
    "broadcast_to": "rely on broadcasting in binary operators",
    "astype": "use np.array(a, dtype=...)",
    "fill": "use slice assignment a[:] = value",
    "view": "use np.frombuffer(a.tobytes(), dtype=...)",
    "reshape": "use the method a.reshape(shape)",
    "transpose": "use the method a.transpose() or a.T",
    "zeros_like": "use np.zeros(a.shape, dtype=a.dtype)",
    "ones_like": "use np.ones(a.shape, dtype=a.dtype)",
    "empty_like": "use np.zeros(a.shape, dtype=a.dtype)",
    "full_like": "use np.full(a.shape, value, dtype=a.dtype)",
    "abs": "use the builtin abs(a)",
    "absolute": "use the builtin abs(a)",
    "round": "use np.floor(x + 0.5) style rounding",
    "rint": "use np.floor(x + 0.5) style rounding",
    "newaxis": "use a.reshape(...)",
    "asanyarray": "use np.array",
    "ascontiguousarray": "use a.copy()",
    "copy": "use the method a.copy()",
    "divide": "use the / operator on float arrays",
    "add": "use the + operator",
    "subtract": "use the - operator",
    "multiply": "use the * operator",
    "power": "use the ** operator",
    "mod": "avoid modulo", "remainder": "avoid modulo",
    "floor_divide": "avoid integer division",
    "einsum_path": "", "outer": "use np.dot on reshaped arrays",
    "inner": "use np.dot", "vdot": "use np.dot",
    "iinfo": "ranges: uint8 0..255, int8 -128..127, uint16 0..65535, int16 -32768..32767",
    "finfo": "np.float is float32 on the boards",
}

# These exist in ulab 6.x but are not emulated by the stand-in.
_NOT_EMULATED = {
    "linspace", "logspace", "eye", "diag", "meshgrid", "asarray", "compress", "delete",
    "interp", "trapz", "bincount", "equal", "not_equal", "isfinite", "isinf", "nonzero",
    "convolve", "all", "any", "argsort", "cross", "diff", "trace", "flip", "load",
    "loadtxt", "mean", "median", "roll", "save", "savetxt", "size", "sort", "std",
    "polyfit", "polyval", "acos", "acosh", "arctan2", "around", "asin", "asinh", "atan",
    "atanh", "cos", "cosh", "degrees", "expm1", "log", "log10", "log2", "radians", "sin",
    "sinc", "sinh", "tan", "tanh", "vectorize", "real", "imag", "conjugate",
    "sort_complex", "complex", "fft", "linalg", "random", "set_printoptions",
    "get_printoptions", "ndinfo",
}


def __getattr__(name: str):
    if name in _ABSENT:
        hint = _ABSENT[name]
        raise AttributeError("ulab lacks numpy.%s (absent in ulab 6.x%s)"
                             % (name, "; " + hint if hint else ""))
    if name in _NOT_EMULATED:
        raise AttributeError("ulab.numpy.%s exists in ulab but is not emulated by the "
                             "stand-in; add it with its ulab semantics before use" % name)
    raise AttributeError("module 'ulab.numpy' has no attribute '%s' (ulab lacks it, or "
                         "the stand-in does not emulate it)" % name)
