"""Core of the strict ulab 6.x stand-in (host-side testing only).

Semantics follow ulab 6.12 built the way community firmware is built
(ULAB_MAX_DIMS = 2, no dtype objects, default feature flags) and the
project's /work/shared/ULAB_NOTES.md.  Where ulab's behaviour is
inconsistent between operators, undefined in C, or known to have changed
between 6.x releases, the stand-in *raises* instead of picking one answer, so
that device code that passes here does not depend on it.

Nothing in this module shadows the builtins ``float`` and ``bool``: the
public module ``ulab.numpy`` adds those two names on top of this one.
"""

from __future__ import annotations

import builtins
import math
import operator
import os
import sys
from typing import Any, Callable

import numpy as _np

# --------------------------------------------------------------------------
# Build configuration
# --------------------------------------------------------------------------

# ESP32 and RP2 firmware uses single-precision floats; the unix port uses
# doubles.  ULAB_STANDIN_FLOAT=64 emulates the latter.
FLOAT_BITS: int = int(os.environ.get("ULAB_STANDIN_FLOAT", "32") or "32")
if FLOAT_BITS not in (32, 64):
    raise ImportError("ULAB_STANDIN_FLOAT must be 32 or 64, not %r" % FLOAT_BITS)
FLOAT_NP: type = _np.float32 if FLOAT_BITS == 32 else _np.float64

MAX_DIMS = 2
VERSION = "6.12.0-2D"

# dtype codes are the typecode characters ulab uses (ulab.numpy.int8 == ord('b')).
BOOL = ord("?")
UINT8 = ord("B")
INT8 = ord("b")
UINT16 = ord("H")
INT16 = ord("h")
FLOAT = ord("f") if FLOAT_BITS == 32 else ord("d")

INT_CODES = (UINT8, INT8, UINT16, INT16)
ALL_CODES = (BOOL, UINT8, INT8, UINT16, INT16, FLOAT)

_NP_DTYPE = {
    BOOL: _np.dtype(_np.uint8),  # ulab stores Booleans as uint8 plus a flag
    UINT8: _np.dtype(_np.uint8),
    INT8: _np.dtype(_np.int8),
    UINT16: _np.dtype(_np.uint16),
    INT16: _np.dtype(_np.int16),
    FLOAT: _np.dtype(FLOAT_NP),
}
_CODE_OF = {
    _np.dtype(_np.uint8): UINT8,
    _np.dtype(_np.int8): INT8,
    _np.dtype(_np.uint16): UINT16,
    _np.dtype(_np.int16): INT16,
    _np.dtype(FLOAT_NP): FLOAT,
}
_NAME = {BOOL: "bool", UINT8: "uint8", INT8: "int8", UINT16: "uint16",
         INT16: "int16", FLOAT: "float%d" % FLOAT_BITS}
_INT_RANGE = {UINT8: (0, 255), INT8: (-128, 127), UINT16: (0, 65535),
              INT16: (-32768, 32767)}

# Above this magnitude an integer-valued partial sum is no longer exact in
# the float type, so dot() must emulate the float accumulation step by step.
_EXACT_INT_LIMIT = 2 ** 24 if FLOAT_BITS == 32 else 2 ** 53


class TooManyDimensions(ValueError, TypeError):
    """ulab raises ValueError or TypeError (depending on the call) for >2-D."""


def _too_many_dims() -> TooManyDimensions:
    return TooManyDimensions(
        "too many dimensions (maximum number of dimensions is %d: ulab firmware is "
        "built with ULAB_MAX_DIMS=%d)" % (MAX_DIMS, MAX_DIMS))


# --------------------------------------------------------------------------
# Allocation statistics (what ulab would allocate on the device heap)
# --------------------------------------------------------------------------

_stats: dict[str, int] = {
    "arrays_allocated": 0,    # fresh data buffers: results, copies, conversions
    "bytes_allocated": 0,     # bytes of those buffers (ulab allocates >= 1 item)
    "scalar_temporaries": 0,  # 1-item arrays made from Python scalar operands
    "views_created": 0,       # headers sharing memory (slices, reshape, rows...)
}


def _reset_stats() -> None:
    for key in _stats:
        _stats[key] = 0


def _alloc(shape: tuple[int, ...], code: int) -> _np.ndarray:
    """A zero-filled buffer, counted like ulab's m_new0 in ndarray_new_ndarray."""
    buf = _np.zeros(shape, dtype=_NP_DTYPE[code])
    _stats["arrays_allocated"] += 1
    _stats["bytes_allocated"] += buf.itemsize * builtins.max(1, buf.size)
    return buf


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _is_py_int(x: Any) -> bool:
    # MicroPython's bool is not an int (mp_obj_is_int(True) is false).
    return isinstance(x, int) and not isinstance(x, builtins.bool)


def _is_py_number(x: Any) -> bool:
    return _is_py_int(x) or isinstance(x, builtins.float)


def _check_dtype(dtype: Any) -> int:
    if not _is_py_int(dtype) or dtype not in ALL_CODES:
        raise TypeError(
            "data type not understood: %r (use np.uint8, np.int8, np.uint16, "
            "np.int16, np.float or np.bool)" % (dtype,))
    return dtype


def _reject_numpy(x: Any) -> None:
    if isinstance(x, (_np.ndarray, _np.generic)):
        raise TypeError(
            "a real numpy object (%s) was passed to the ulab stand-in; device code "
            "only has ulab arrays and Python int/float" % type(x).__name__)


def _reject_kwargs(kwargs: dict[str, Any], fname: str) -> None:
    if "out" in kwargs:
        raise TypeError(
            "%s() takes no 'out' argument in ulab: only unary math functions and "
            "take() accept out=" % fname)
    if kwargs:
        raise TypeError("%s() got unexpected keyword argument(s) %s"
                        % (fname, ", ".join(sorted(kwargs))))


def _is_dense(a: _np.ndarray) -> bool:
    """ulab's ndarray_is_dense (first stride matches the shape), made strict.

    Anything dense here is dense for ulab; the extra C-contiguity check only
    rejects layouts ulab would misjudge.
    """
    if a.ndim == 0:
        return True
    stride = a.itemsize
    for n in a.shape[1:]:
        stride *= n
    return a.strides[0] == stride and builtins.bool(a.flags.c_contiguous)


def _round_half_away(v: _np.ndarray) -> _np.ndarray:
    """C round(): half away from zero, done exactly in float64."""
    v = _np.asarray(v, dtype=_np.float64)
    t = _np.trunc(v)
    frac = v - t  # exact for IEEE doubles
    return t + _np.where(_np.abs(frac) >= 0.5, _np.sign(v), 0.0)


def _float_to_int(values: _np.ndarray, code: int) -> _np.ndarray:
    """ulab's float -> integer conversion: (int32_t)round(x), then wrap to dtype."""
    r = _round_half_away(values)
    if _np.isnan(r).any():
        raise ValueError("cannot convert float NaN to an integer dtype (undefined "
                         "behaviour in ulab's (int32_t)round() cast)")
    if r.size and (_np.abs(r) >= 2.0 ** 31).any():
        raise OverflowError("float value outside the int32 range: ulab's "
                            "(int32_t)round() cast is undefined behaviour; clip first")
    return r.astype(_np.int64).astype(_NP_DTYPE[code])


def _wrap_int(values: _np.ndarray, code: int) -> _np.ndarray:
    """Integer store into a narrower C type: keep the low bits (wraps)."""
    return _np.asarray(values).astype(_np.int64).astype(_NP_DTYPE[code])


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(_np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError("operands could not be broadcast together") from None


# --------------------------------------------------------------------------
# The array type
# --------------------------------------------------------------------------

_ABSENT_METHODS = {
    "astype": "there is no .astype in ulab: use np.array(a, dtype=...) (float -> int "
              "rounds half away from zero, then wraps)",
    "fill": "there is no .fill in ulab: assign a[:] = value (or a[:, :] = value)",
    "view": "there is no .view in ulab: use np.frombuffer(a.tobytes(), dtype=...)",
    "ravel": "there is no .ravel in ulab: use .flatten() (copies) or .reshape(-1)",
    "squeeze": "there is no .squeeze in ulab: use .reshape(...)",
    "item": "there is no .item in ulab: indexing already returns Python scalars",
    "sum": "ulab arrays have no .sum method: use np.sum(a, axis=...)",
    "max": "ulab arrays have no .max method: use np.max(a, axis=...)",
    "min": "ulab arrays have no .min method: use np.min(a, axis=...)",
    "argmax": "ulab arrays have no .argmax method: use np.argmax(a, axis=...)",
    "mean": "ulab arrays have no .mean method (and the stand-in does not emulate np.mean)",
    "clip": "ulab arrays have no .clip method: use np.clip(a, lo, hi)",
    "dot": "ulab arrays have no .dot method: use np.dot(a, b)",
    "nbytes": "ulab arrays have no .nbytes: use a.size * a.itemsize",
    "data": "ulab arrays have no .data: use a.tobytes() (dense arrays only)",
    "flags": "ulab arrays have no .flags",
    "base": "ulab arrays have no .base",
    "resize": "ulab arrays have no .resize",
    "repeat": "there is no repeat in ulab",
    "cumsum": "there is no cumsum in ulab",
    "prod": "there is no prod in ulab",
    "swapaxes": "there is no swapaxes in ulab: use .transpose()",
}


class ndarray:
    """A 1-D or 2-D ulab array; holds a numpy array (never subclasses it)."""

    __slots__ = ("_a", "_boolean")

    # Make numpy defer to us (and then fail loudly) instead of building object arrays.
    __array_ufunc__ = None
    __hash__ = None  # type: ignore[assignment]

    _a: _np.ndarray
    _boolean: builtins.bool

    def __init__(self, values: Any, *, dtype: int = FLOAT) -> None:
        made = array(values, dtype=dtype)
        self._a = made._a
        self._boolean = made._boolean

    # -- construction helpers (bypass __init__) --------------------------------
    @classmethod
    def _wrap(cls, a: _np.ndarray, boolean: builtins.bool = False) -> "ndarray":
        if a.ndim > MAX_DIMS:
            raise _too_many_dims()
        obj = object.__new__(cls)
        obj._a = a
        obj._boolean = boolean
        return obj

    def _view(self, a: _np.ndarray) -> "ndarray":
        _stats["views_created"] += 1
        return ndarray._wrap(a, self._boolean)

    @property
    def _code(self) -> int:
        return _CODE_OF[self._a.dtype]

    # -- properties --------------------------------------------------------------
    @property
    def dtype(self) -> int:
        # Without ULAB_HAS_DTYPE_OBJECT ulab returns the typecode as an int;
        # Boolean arrays report uint8 (ulab stores them as uint8 plus a flag).
        return self._code

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._a.shape)

    @shape.setter
    def shape(self, new_shape: Any) -> None:
        # ulab reshapes in place for dense arrays only.
        shape = _reshape_target(new_shape, self._a.size)
        if not _is_dense(self._a):
            raise ValueError("cannot assign new shape")
        self._a = self._a.reshape(shape)

    @property
    def size(self) -> int:
        return int(self._a.size)

    @property
    def itemsize(self) -> int:
        return int(self._a.itemsize)

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self._a.strides)

    @property
    def ndim(self) -> int:
        return int(self._a.ndim)

    @property
    def T(self) -> "ndarray":
        return self.transpose()

    # -- methods that exist in ulab ---------------------------------------------
    def reshape(self, shape: Any) -> "ndarray":
        new_shape = _reshape_target(shape, self._a.size)
        if _is_dense(self._a):
            return self._view(self._a.reshape(new_shape))
        out = _alloc(new_shape, self._code)
        out[...] = self._a.reshape(new_shape)
        return ndarray._wrap(out, self._boolean)

    def transpose(self) -> "ndarray":
        if self._a.ndim == 1:
            return self  # ulab returns the very same object
        return self._view(self._a.T)

    def flatten(self, *, order: str = "C") -> "ndarray":
        if order not in ("C", "F"):
            raise ValueError("flattening order must be either 'C', or 'F'")
        out = _alloc((self._a.size,), self._code)
        out[...] = self._a.ravel(order=order)
        return ndarray._wrap(out, self._boolean)

    def copy(self) -> "ndarray":
        out = _alloc(self._a.shape, self._code)
        out[...] = self._a
        return ndarray._wrap(out, self._boolean)

    def tobytes(self) -> memoryview:
        """ulab returns a bytearray *by reference* (no copy) for dense arrays.

        CPython cannot make a bytearray that aliases foreign memory, so the
        stand-in returns a writable byte memoryview of the same memory.
        """
        if not _is_dense(self._a):
            raise ValueError("tobytes can be invoked for dense arrays only")
        return memoryview(self._a.reshape(-1)).cast("B")

    def tolist(self) -> list:
        return self._a.astype(builtins.bool).tolist() if self._boolean else self._a.tolist()

    # -- buffer protocol ----------------------------------------------------------
    def __bytes__(self) -> bytes:
        if not _is_dense(self._a):
            raise ValueError("the buffer protocol works on dense arrays only")
        return self._a.tobytes()

    def __buffer__(self, flags: int) -> memoryview:  # Python >= 3.12 only
        if not _is_dense(self._a):
            raise TypeError("the buffer protocol works on dense arrays only")
        return memoryview(self._a.reshape(-1))

    if sys.version_info < (3, 12):
        def __index__(self) -> int:
            # Without __buffer__, bytearray(arr) would silently iterate the
            # elements on CPython 3.11; fail loudly instead (not a TypeError,
            # which bytearray() would swallow).
            raise ValueError("ulab arrays are not integers; on CPython < 3.12 use "
                             "bytearray(arr.tobytes()) instead of bytearray(arr)")

    # -- misc protocol ------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._a.shape[0])

    def __iter__(self):
        if self._a.ndim == 1:
            for i in range(self._a.shape[0]):
                yield self._scalar(self._a[i])
        else:
            for i in range(self._a.shape[0]):
                yield self._view(self._a[i])

    def __bool__(self) -> builtins.bool:
        raise TypeError("the truth value of a ulab array is its len() on the device, "
                        "which is almost never what is meant; compare explicitly")

    def __float__(self) -> builtins.float:
        raise TypeError("can't convert ndarray to float: index a scalar first, e.g. float(a[0])")

    def __int__(self) -> int:
        raise TypeError("can't convert ndarray to int: index a scalar first, e.g. int(a[0])")

    def __repr__(self) -> str:
        body = _np.array2string(self._a.astype(builtins.bool) if self._boolean else self._a,
                                separator=", ", prefix="array(")
        return "array(%s, dtype=%s)" % (body, "bool" if self._boolean else _NAME[self._code])

    __str__ = __repr__

    def __getattr__(self, name: str) -> Any:
        if name in _ABSENT_METHODS:
            raise AttributeError("'ndarray' object has no attribute '%s' (%s)"
                                 % (name, _ABSENT_METHODS[name]))
        raise AttributeError("'ndarray' object has no attribute '%s' (not in ulab, or "
                             "not emulated by the stand-in)" % name)

    def _scalar(self, x: Any) -> Any:
        if self._boolean:
            return builtins.bool(x)
        return x.item()

    # -- indexing -----------------------------------------------------------------
    def _index(self, index: Any) -> tuple:
        """Validate an index the way ulab accepts it: ints and slices only."""
        items = index if isinstance(index, tuple) else (index,)
        if len(items) > self._a.ndim:
            raise IndexError("too many indices")
        for it in items:
            if _is_py_int(it):
                continue
            if isinstance(it, slice):
                for part in (it.start, it.stop, it.step):
                    if part is not None and not _is_py_int(part):
                        raise TypeError("slice bounds must be Python ints")
                continue
            if it is None or it is Ellipsis:
                raise TypeError("ulab has no np.newaxis / None or ... indexing; use "
                                ".reshape() to add a dimension")
            if isinstance(it, ndarray):
                raise TypeError("ndarray indices only work alone, as a 1-D Boolean mask "
                                "on a 1-D array; integer-array (fancy) indexing does not "
                                "exist in ulab: use np.take(a, indices, axis=...)")
            if isinstance(it, (list, tuple)):
                raise TypeError("fancy (list) indexing does not exist in ulab; use "
                                "np.take(a, indices, axis=...)")
            raise TypeError("indices must be integers or slices, not %s" % type(it).__name__)
        return items

    def _mask(self, index: "ndarray") -> _np.ndarray:
        if not index._boolean or index._a.ndim != 1 or self._a.ndim != 1:
            raise TypeError("ulab supports indexing with a 1-D Boolean array on a 1-D "
                            "array only; integer-array (fancy) indexing does not exist: "
                            "use np.take(a, indices, axis=...)")
        if index._a.shape[0] != self._a.shape[0]:
            raise ValueError("array and index length must be equal")
        return index._a.astype(builtins.bool)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, ndarray):
            mask = self._mask(index)
            out = _alloc((int(mask.sum()),), self._code)
            out[...] = self._a[mask]
            return ndarray._wrap(out)
        items = self._index(index)
        picked = self._a[items]
        if isinstance(picked, _np.ndarray):
            return self._view(picked)
        return self._scalar(picked)

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, ndarray):
            self._assign_mask(self._mask(index), value)
            return
        items = self._index(index)
        # ulab turns the value into an array (scalars get the smallest dtype),
        # then copies it, converted to the target dtype, before assigning.
        values = _operand(value, 0)
        target_shape = _np.shape(self._a[items])
        if values._a.size != 1 and _broadcast(target_shape, values._a.shape) != target_shape:
            raise ValueError("operands could not be broadcast together")
        converted = _convert_values(values, self._code)
        if target_shape == () or values._a.size == 1:
            self._a[items] = converted.reshape(-1)[0]
        else:
            self._a[items] = converted

    def _assign_mask(self, mask: _np.ndarray, value: Any) -> None:
        values = _operand(value, 0)
        count = int(mask.sum())
        if values._a.ndim != 1 or values._a.shape[0] not in (1, count):
            raise ValueError("the number of values must equal the number of True "
                             "entries, or be one")
        if values._code == FLOAT and self._code != FLOAT:
            raise TypeError("Boolean-mask assignment of floats into an integer array "
                            "truncates in ulab (C cast) while slice assignment rounds; "
                            "convert explicitly with np.array(x, dtype=...)")
        if self._code == FLOAT:
            self._a[mask] = values._a.astype(FLOAT_NP)
        else:
            self._a[mask] = _wrap_int(values._a, self._code)

    # -- unary operators ----------------------------------------------------------
    def __neg__(self) -> "ndarray":
        if self._code == FLOAT:
            return _store(-self._a.astype(FLOAT_NP), FLOAT)
        return _store(-self._a.astype(_np.int64), self._code)  # wraps, e.g. -(uint8)

    def __pos__(self) -> "ndarray":
        return self.copy()

    def __abs__(self) -> "ndarray":
        if self._code == FLOAT:
            return _store(_np.abs(self._a), FLOAT)
        # abs(int8 -128) stays -128 in C
        return _store(_np.abs(self._a.astype(_np.int64)), self._code, self._boolean)

    def __invert__(self) -> "ndarray":
        if self._code == FLOAT:
            raise ValueError("operation is not supported for given type")
        if self._boolean:
            return _store(self._a == 0, UINT8, boolean=True)
        return _store(~self._a.astype(_np.int64), self._code)

    # -- binary operators ---------------------------------------------------------
    def __add__(self, other: Any) -> "ndarray":
        return _arith("+", self, _operand(other, self._code))

    def __radd__(self, other: Any) -> "ndarray":
        return _arith("+", _operand(other, 0), self)

    def __sub__(self, other: Any) -> "ndarray":
        return _arith("-", self, _operand(other, self._code))

    def __rsub__(self, other: Any) -> "ndarray":
        return _arith("-", _operand(other, 0), self)

    def __mul__(self, other: Any) -> "ndarray":
        return _arith("*", self, _operand(other, self._code))

    def __rmul__(self, other: Any) -> "ndarray":
        return _arith("*", _operand(other, 0), self)

    def __truediv__(self, other: Any) -> "ndarray":
        return _arith("/", self, _operand(other, self._code))

    def __rtruediv__(self, other: Any) -> "ndarray":
        return _arith("/", _operand(other, 0), self)

    def __floordiv__(self, other: Any) -> "ndarray":
        return _arith("//", self, _operand(other, self._code))

    def __rfloordiv__(self, other: Any) -> "ndarray":
        return _arith("//", _operand(other, 0), self)

    def __pow__(self, other: Any) -> "ndarray":
        return _arith("**", self, _operand(other, self._code))

    def __rpow__(self, other: Any) -> "ndarray":
        return _arith("**", _operand(other, 0), self)

    def __mod__(self, other: Any) -> "ndarray":
        raise TypeError("the stand-in rejects %: ulab's modulo semantics changed within "
                        "6.x (bug fixes in 6.12); avoid it in device code")

    __rmod__ = __mod__

    def __matmul__(self, other: Any) -> "ndarray":
        raise TypeError("ulab has no @ operator (no matmul): use np.dot(a, b)")

    __rmatmul__ = __matmul__

    def __lshift__(self, other: Any) -> "ndarray":
        raise TypeError("ulab arrays do not support << and >>: use np.left_shift / "
                        "np.right_shift")

    __rlshift__ = __rshift__ = __rrshift__ = __lshift__

    def __and__(self, other: Any) -> "ndarray":
        return _bitwise("&", self, _operand(other, self._code), TypeError)

    def __rand__(self, other: Any) -> "ndarray":
        return _bitwise("&", _operand(other, 0), self, TypeError)

    def __or__(self, other: Any) -> "ndarray":
        return _bitwise("|", self, _operand(other, self._code), TypeError)

    def __ror__(self, other: Any) -> "ndarray":
        return _bitwise("|", _operand(other, 0), self, TypeError)

    def __xor__(self, other: Any) -> "ndarray":
        return _bitwise("^", self, _operand(other, self._code), TypeError)

    def __rxor__(self, other: Any) -> "ndarray":
        return _bitwise("^", _operand(other, 0), self, TypeError)

    # -- comparisons (Boolean arrays) ---------------------------------------------
    def __lt__(self, other: Any) -> "ndarray":
        return _compare(operator.lt, self, _operand(other, self._code))

    def __le__(self, other: Any) -> "ndarray":
        return _compare(operator.le, self, _operand(other, self._code))

    def __gt__(self, other: Any) -> "ndarray":
        return _compare(operator.gt, self, _operand(other, self._code))

    def __ge__(self, other: Any) -> "ndarray":
        return _compare(operator.ge, self, _operand(other, self._code))

    def __eq__(self, other: Any) -> "ndarray":  # type: ignore[override]
        return _compare(operator.eq, self, _operand(other, self._code))

    def __ne__(self, other: Any) -> "ndarray":  # type: ignore[override]
        return _compare(operator.ne, self, _operand(other, self._code))

    # -- in-place operators: keep the left dtype, never allocate a result ----------
    def __iadd__(self, other: Any) -> "ndarray":
        return _inplace("+", self, other)

    def __isub__(self, other: Any) -> "ndarray":
        return _inplace("-", self, other)

    def __imul__(self, other: Any) -> "ndarray":
        return _inplace("*", self, other)

    def __itruediv__(self, other: Any) -> "ndarray":
        return _inplace("/", self, other)

    def __ipow__(self, other: Any) -> "ndarray":
        return _inplace("**", self, other)


def _store(values: _np.ndarray, code: int, boolean: builtins.bool = False) -> ndarray:
    """Allocate a fresh result of dtype `code` and store `values` in it (C-cast)."""
    values = _np.asarray(values)
    out = _alloc(values.shape, code)
    if code == FLOAT:
        out[...] = values
    else:
        out[...] = _wrap_int(values, code)
    return ndarray._wrap(out, boolean)


def _scalar_array(value: Any, code: int, boolean: builtins.bool = False) -> ndarray:
    _stats["scalar_temporaries"] += 1
    a = _np.zeros((1,), dtype=_NP_DTYPE[code])
    a[0] = value
    return ndarray._wrap(a, boolean)


def _operand(obj: Any, other: int) -> ndarray:
    """ulab's ndarray_from_mp_obj(obj, other_type)."""
    if isinstance(obj, ndarray):
        return obj
    if isinstance(obj, builtins.bool):
        return _scalar_array(1 if obj else 0, UINT8, boolean=True)
    if _is_py_int(obj):
        if obj < -2 ** 31 or obj >= 2 ** 31:
            raise OverflowError("overflow converting long int to machine word")
        if obj < -32768 or obj > 65535:
            return _scalar_array(obj, FLOAT)
        if obj < 0:
            return _scalar_array(obj, INT8 if obj >= -128 else INT16)
        if other in (INT8, INT16):
            if obj < 128:
                return _scalar_array(obj, INT8)
            if obj > 32767:
                # ulab would store this in an int16 and silently wrap it
                raise OverflowError(
                    "ulab converts the scalar %d to int16 next to a signed array and "
                    "wraps it; pass an explicitly typed array" % obj)
            return _scalar_array(obj, INT16)
        return _scalar_array(obj, UINT8 if obj < 256 else UINT16)
    if isinstance(obj, builtins.float):
        return _scalar_array(obj, FLOAT)
    if isinstance(obj, (list, tuple, range)):
        return array(obj)  # ulab makes a float array from any other iterable
    _reject_numpy(obj)
    raise TypeError("unsupported operand type for ulab ndarray: %s" % type(obj).__name__)


def _convert_values(values: ndarray, code: int) -> _np.ndarray:
    """ndarray_copy_view_convert_type: a converted copy (counted)."""
    src = values._a
    out = _alloc(src.shape, code)
    if code == FLOAT:
        out[...] = src
    elif values._code == FLOAT:
        out[...] = _float_to_int(src, code)
    else:
        out[...] = _wrap_int(src, code)
    return out


# --------------------------------------------------------------------------
# Dtype rules
# --------------------------------------------------------------------------

_MIXED = {
    frozenset((UINT8, INT8)): INT16,
    frozenset((UINT8, INT16)): INT16,
    frozenset((INT8, INT16)): INT16,
    frozenset((UINT8, UINT16)): UINT16,
    frozenset((UINT16, INT16)): FLOAT,
}

_I8_U16 = frozenset((INT8, UINT16))


def _result_code(lc: int, rc: int) -> int:
    """ulab's upcasting rules for +, -, *, maximum, minimum, clip and where."""
    if lc == rc:
        return lc
    if FLOAT in (lc, rc):
        return FLOAT
    key = frozenset((lc, rc))
    if key == _I8_U16:
        raise TypeError(
            "int8 combined with uint16: ulab's result dtype depends on the function "
            "and operand order (int16 for +, *, i8-u16 and maximum(i8, u16); uint16 "
            "for u16-i8, maximum(u16, i8) and where); convert one operand explicitly")
    return _MIXED[key]


def _bitwise_code(lc: int, rc: int, err: type) -> int:
    if FLOAT in (lc, rc):
        raise err("bitwise operations are not supported for float arrays")
    if lc == rc:
        return lc
    key = frozenset((lc, rc))
    if key == _I8_U16 or key == frozenset((UINT16, INT16)):
        raise TypeError(
            "bitwise/shift of %s with %s: ulab either refuses it ('dtype of int32 is "
            "not supported') or reinterprets the sign; convert explicitly"
            % (_NAME[lc], _NAME[rc]))
    return _MIXED[key]


def _arith(op: str, l: ndarray, r: ndarray) -> ndarray:
    shape = _broadcast(l._a.shape, r._a.shape)
    lc, rc = l._code, r._code
    if op in ("/", "//") and lc != FLOAT and rc != FLOAT:
        raise TypeError(
            "%s of two integer arrays: ulab computes this with C integer division in "
            "default builds; never divide integer arrays (convert to float first)" % op)
    if op in ("/", "//", "**"):
        code = FLOAT
    else:
        code = _result_code(lc, rc)
    if code == FLOAT:
        L, R = l._a.astype(FLOAT_NP), r._a.astype(FLOAT_NP)
    else:
        L, R = l._a.astype(_np.int64), r._a.astype(_np.int64)
    with _np.errstate(all="ignore"):
        if op == "+":
            res = L + R
        elif op == "-":
            res = L - R
        elif op == "*":
            res = L * R
        elif op == "/":
            res = L / R
        elif op == "//":
            res = _np.floor(L / R)
        else:
            res = _np.power(L, R)
    return _store(_np.broadcast_to(res, shape), code)


def _inplace(op: str, self: ndarray, other: Any) -> ndarray:
    rhs = _operand(other, self._code)
    lc = self._code
    if op in ("/", "**") and lc != FLOAT:
        raise TypeError("results cannot be cast to specified type (in-place %s needs a "
                        "float left side)" % op)
    if lc != FLOAT and rhs._code == FLOAT:
        raise TypeError("cannot cast output with casting rule (float right side, "
                        "integer left side)")
    if _broadcast(self._a.shape, rhs._a.shape) != self._a.shape:
        raise ValueError("operands could not be broadcast together")
    if lc == FLOAT:
        L, R = self._a.astype(FLOAT_NP), rhs._a.astype(FLOAT_NP)
    else:
        L, R = self._a.astype(_np.int64), rhs._a.astype(_np.int64)
    with _np.errstate(all="ignore"):
        if op == "+":
            res = L + R
        elif op == "-":
            res = L - R
        elif op == "*":
            res = L * R
        elif op == "/":
            res = L / R
        else:
            res = _np.power(L, R)
    self._a[...] = res if lc == FLOAT else _wrap_int(res, lc)
    return self


def _compare(fn: Callable, l: ndarray, r: ndarray) -> ndarray:
    shape = _broadcast(l._a.shape, r._a.shape)
    # numpy compares mixed int/float dtypes exactly, as the C loops do
    res = _np.broadcast_to(fn(l._a, r._a), shape)
    return _store(res, UINT8, boolean=True)


def _bitwise(op: str, l: ndarray, r: ndarray, float_err: type) -> ndarray:
    code = _bitwise_code(l._code, r._code, float_err)
    shape = _broadcast(l._a.shape, r._a.shape)
    L, R = l._a.astype(_np.int64), r._a.astype(_np.int64)
    if op in ("<<", ">>"):
        if R.size and (R.min() < 0 or R.max() > 31):
            raise ValueError("shift counts must be in 0..31 (undefined behaviour in C)")
        res = _np.left_shift(L, R) if op == "<<" else _np.right_shift(L, R)
    elif op == "&":
        res = L & R
    elif op == "|":
        res = L | R
    else:
        res = L ^ R
    boolean = l._boolean and r._boolean and op in ("&", "|", "^")
    return _store(_np.broadcast_to(res, shape), code, boolean)


# --------------------------------------------------------------------------
# Array creation
# --------------------------------------------------------------------------

def _shape_arg(shape: Any) -> tuple[int, ...]:
    if _is_py_int(shape):
        dims: tuple = (shape,)
    elif isinstance(shape, (tuple, list)):
        dims = tuple(shape)
    else:
        raise TypeError("input argument must be an integer, a tuple, or a list")
    if len(dims) > MAX_DIMS:
        raise _too_many_dims()
    if not dims:
        raise ValueError("the stand-in does not emulate 0-dimensional arrays")
    for d in dims:
        if not _is_py_int(d) or d < 0:
            raise ValueError("array dimensions must be non-negative Python ints")
    return dims


def _reshape_target(shape: Any, size: int) -> tuple[int, ...]:
    if _is_py_int(shape):
        dims: list = [shape]
    elif isinstance(shape, tuple):
        dims = list(shape)
    else:
        raise TypeError("shape must be integer or tuple of integers")
    if len(dims) > MAX_DIMS:
        raise _too_many_dims()
    if not dims:
        raise ValueError("the stand-in does not emulate 0-dimensional arrays")
    for d in dims:
        if not _is_py_int(d):
            raise TypeError("shape must be integer or tuple of integers")
    unknown = [i for i, d in enumerate(dims) if d < 0]
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    known = 1
    for d in dims:
        if d >= 0:
            known *= d
    if unknown:
        dims[unknown[0]] = size // known if known else 0
    total = 1
    for d in dims:
        total *= d
    if total != size:
        raise ValueError("cannot reshape array")
    return tuple(dims)


def _check_element(v: Any, code: int) -> Any:
    """mp_binary_set_val_array: what one element of an iterable may be."""
    if code == BOOL:
        return 1 if v else 0
    if isinstance(v, builtins.bool):
        return 1 if v else 0
    if code == FLOAT:
        if _is_py_number(v):
            return v
    elif _is_py_int(v):
        if v < -2 ** 31 or v >= 2 ** 31:
            raise OverflowError("overflow converting long int to machine word")
        return v
    elif isinstance(v, builtins.float):
        raise TypeError("can't convert float to int: np.array(list_of_floats, dtype=int "
                        "type) fails in ulab; build a float array and convert that "
                        "(rounds half away from zero)")
    _reject_numpy(v)
    raise TypeError("array elements must be numbers, not %s" % type(v).__name__)


def _from_iterable(obj: Any, code: int) -> ndarray:
    if isinstance(obj, (str, dict, set)) or not hasattr(obj, "__len__"):
        raise TypeError("np.array() needs a list, tuple, range, bytes or ndarray, "
                        "not %s" % type(obj).__name__)
    # Like ulab, infer the shape from the first element of each level.
    shape: list[int] = []
    item = obj
    while hasattr(item, "__len__") and not isinstance(item, str):
        if len(shape) == MAX_DIMS:
            raise _too_many_dims()
        n = len(item)
        shape.append(n)
        if n == 0:
            break
        item = next(iter(item))
    if len(shape) == 1:
        flat = [_check_element(v, code) for v in obj]
    else:
        flat = []
        for row in obj:
            if not hasattr(row, "__len__") or len(row) != shape[1]:
                raise ValueError("rows of a 2-D array must all have length %d" % shape[1])
            flat.extend(_check_element(v, code) for v in row)
    out = _alloc(tuple(shape), code)
    if flat:
        if code == FLOAT:
            out[...] = _np.array(flat, dtype=_np.float64).reshape(shape)
        else:
            out[...] = _wrap_int(_np.array(flat, dtype=_np.int64).reshape(shape), code)
    return ndarray._wrap(out, code == BOOL)


def array(values: Any, *, dtype: int = FLOAT) -> ndarray:
    """np.array: the dtype defaults to float, even for an ndarray argument."""
    code = _check_dtype(dtype)
    if isinstance(values, ndarray):
        if code == BOOL:
            raise TypeError("the stand-in does not emulate converting an array to "
                            "np.bool; compare instead (a != 0)")
        if code == values._code:
            return values.copy()
        return ndarray._wrap(_convert_values(values, code))
    if isinstance(values, _np.ndarray):
        # host-side convenience: treat a real numpy array as a nested list
        values = values.tolist()
    return _from_iterable(values, code)


def _fill_value(value: Any, code: int) -> Any:
    if code == BOOL:
        return 1 if value else 0
    return _check_element(value, code)


def zeros(shape: Any, *, dtype: int = FLOAT) -> ndarray:
    code = _check_dtype(dtype)
    return ndarray._wrap(_alloc(_shape_arg(shape), code), code == BOOL)


def empty(shape: Any, *, dtype: int = FLOAT) -> ndarray:
    # ulab's empty is zeros: the memory is always zero-filled
    return zeros(shape, dtype=dtype)


def full(shape: Any, fill_value: Any, *, dtype: int = FLOAT) -> ndarray:
    code = _check_dtype(dtype)
    value = _fill_value(fill_value, code)
    out = _alloc(_shape_arg(shape), code)
    out[...] = value if code in (FLOAT, BOOL) else _wrap_int(_np.array(value), code)
    return ndarray._wrap(out, code == BOOL)


def ones(shape: Any, *, dtype: int = FLOAT) -> ndarray:
    return full(shape, 1, dtype=dtype)


def arange(*args: Any, dtype: Any = None) -> ndarray:
    """ulab's arange: int16 for int arguments (|x| <= 32768), float otherwise.

    Values are produced by repeated float addition (value += step), as in C.
    """
    if not 1 <= len(args) <= 3:
        raise TypeError("wrong number of arguments")
    for x in args:
        if not _is_py_number(x):
            _reject_numpy(x)
            raise TypeError("arange arguments must be Python ints or floats")
    F = FLOAT_NP
    if len(args) == 1:
        start, stop, step = F(0), F(args[0]), F(1)
    elif len(args) == 2:
        start, stop, step = F(args[0]), F(args[1]), F(1)
    else:
        start, stop, step = F(args[0]), F(args[1]), F(args[2])
    code = INT16 if all(_is_py_int(x) for x in args) else FLOAT
    if builtins.max(abs(start), abs(stop), abs(step)) > 32768:
        code = FLOAT
    if dtype is not None:
        code = _check_dtype(dtype)
    if step == 0:
        raise ZeroDivisionError("divide by zero")
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)):
        raise ValueError("arange: cannot compute length")
    with _np.errstate(all="ignore"):
        ratio = F(F(stop - start) / step)
    if ratio <= 0:
        return ndarray._wrap(_alloc((0,), code), code == BOOL)
    n = int(math.ceil(ratio))
    seq = _np.full(n, step, dtype=F)
    seq[0] = start
    values = _np.cumsum(seq, dtype=F)  # sequential float additions
    values[-1] = F(start + F(F(n - 1) * step))
    out = _alloc((n,), code)
    if code == FLOAT:
        out[...] = values
    elif code == BOOL:
        out[...] = values != 0
    else:
        t = _np.trunc(values.astype(_np.float64))
        lo, hi = _INT_RANGE[code]
        if (t < lo).any() or (t > hi).any():
            raise ValueError("arange value outside the range of %s (undefined "
                             "behaviour in C)" % _NAME[code])
        out[...] = t.astype(_np.int64)
    return ndarray._wrap(out, code == BOOL)


def frombuffer(buffer: Any, *, dtype: int = FLOAT, count: int = -1,
               offset: int = 0) -> ndarray:
    """A zero-copy 1-D view of `buffer` (bytes, bytearray, memoryview, array)."""
    code = _check_dtype(dtype)
    if not _is_py_int(count) or not _is_py_int(offset):
        raise TypeError("count and offset must be Python ints")
    try:
        mv = memoryview(buffer)
    except TypeError:
        raise TypeError("object with buffer protocol required") from None
    if not mv.c_contiguous:
        raise ValueError("frombuffer needs a contiguous buffer")
    nbytes = mv.nbytes
    itemsize = _NP_DTYPE[code].itemsize
    if offset < 0 or offset > nbytes:
        raise ValueError("offset must be non-negative and no greater than buffer length")
    length = (nbytes - offset) // itemsize
    if length * itemsize != nbytes - offset:
        # checked even when count is given: slice the buffer with a memoryview instead
        raise ValueError("buffer size must be a multiple of element size")
    if count > 0:
        if length < count:
            raise ValueError("buffer is smaller than requested size")
        length = count
    raw = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
    a = _np.frombuffer(raw, dtype=_NP_DTYPE[code], count=length, offset=offset)
    align = builtins.min(itemsize, 4)
    if a.__array_interface__["data"][0] % align:
        raise ValueError(
            "misaligned frombuffer: %d-byte items at an address that is not a multiple "
            "of %d; ESP32 (Xtensa) and RP2040 (Cortex-M0+) fault on unaligned 16/32-bit "
            "loads" % (itemsize, align))
    _stats["views_created"] += 1
    return ndarray._wrap(a, code == BOOL)


def concatenate(arrays: Any, *, axis: int = 0) -> ndarray:
    if not isinstance(arrays, tuple):
        raise TypeError("first argument must be a tuple of ndarrays")
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    for a in arrays:
        if not isinstance(a, ndarray):
            raise ValueError("only ndarrays can be concatenated")
    first = arrays[0]
    ndim, code = first._a.ndim, first._code
    if not _is_py_int(axis):
        raise TypeError("axis must be an int")
    ax = axis + ndim if axis < 0 else axis
    if not 0 <= ax < ndim:
        raise ValueError("wrong axis specified")
    for a in arrays[1:]:
        if a._code != code or a._a.ndim != ndim:
            raise ValueError("input arrays are not compatible")
        for d in range(ndim):
            if d != ax and a._a.shape[d] != first._a.shape[d]:
                raise ValueError("input arrays are not compatible")
    joined = _np.concatenate([a._a for a in arrays], axis=ax)
    out = _alloc(joined.shape, code)
    out[...] = joined
    return ndarray._wrap(out)


def take(a: Any, indices: Any, *, axis: Any = None, out: Any = None,
         mode: Any = None) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError("input is not an array")
    if axis is None:
        axis_len = a._a.size
    else:
        if not _is_py_int(axis):
            raise TypeError("axis must be None or an int")
        ax = axis + a._a.ndim if axis < 0 else axis
        if not 0 <= ax < a._a.ndim:
            raise ValueError("index out of range")
        axis_len = a._a.shape[ax]
    if mode is None:
        mode = "raise"
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError("mode should be raise, wrap or clip")
    if not hasattr(indices, "__len__"):
        raise TypeError("indices must be a list, tuple, range or ndarray of ints")
    idx: list[int] = []
    for item in indices:
        if not _is_py_int(item) and not isinstance(item, builtins.bool):
            _reject_numpy(item)
            raise TypeError("can't convert %s to int" % type(item).__name__)
        i = int(item)
        if mode == "raise":
            if i < 0:
                i += axis_len
            if not 0 <= i < axis_len:
                raise ValueError("index out of range")
        elif mode == "wrap":
            if i < 0:
                raise ValueError("the stand-in rejects negative indices with "
                                 "mode='wrap' (C's % leaves them negative in ulab)")
            i %= axis_len
        else:
            if i < 0:
                raise ValueError("index must not be negative")
            i = builtins.min(i, axis_len - 1)
        idx.append(i)
    if axis is None:
        picked = a._a.reshape(-1)[idx] if idx else _np.zeros((0,), a._a.dtype)
    else:
        picked = _np.take(a._a, _np.array(idx, dtype=_np.intp), axis=ax)
    if out is None:
        res = _alloc(picked.shape, a._code)
        res[...] = picked
        return ndarray._wrap(res)
    if not isinstance(out, ndarray):
        raise TypeError("out has wrong type")
    if out._code != a._code:
        raise ValueError("out array has wrong dtype")
    if out._a.ndim != picked.ndim:
        raise ValueError("out array has wrong dimension")
    if out._a.shape != picked.shape:
        raise ValueError("out array has wrong shape")
    if not _is_dense(out._a):
        raise ValueError("output array must be contiguous")
    out._a[...] = picked
    return out


# --------------------------------------------------------------------------
# Linear algebra
# --------------------------------------------------------------------------

def _float_matmul(A: _np.ndarray, B: _np.ndarray) -> _np.ndarray:
    """(r, k) x (k, c) accumulated as ulab does: dot += float(a) * float(b)."""
    F = FLOAT_NP
    if A.dtype.kind in "iu" and B.dtype.kind in "iu":
        Ai, Bi = A.astype(_np.int64), B.astype(_np.int64)
        bound = int((_np.abs(Ai) @ _np.abs(Bi)).max()) if Ai.size and Bi.size else 0
        if bound <= _EXACT_INT_LIMIT:
            # every product and partial sum is exact in the float type
            return (Ai @ Bi).astype(F)
    Af, Bf = A.astype(F), B.astype(F)
    acc = _np.zeros((A.shape[0], B.shape[1]), dtype=F)
    with _np.errstate(all="ignore"):
        for k in range(A.shape[1]):
            acc = acc + Af[:, k:k + 1] * Bf[k:k + 1, :]  # float products, float sums
    return acc


def dot(m1: Any, m2: Any, **kwargs: Any) -> Any:
    """np.dot: 1-D/2-D only, always float; vector . vector is a Python float."""
    _reject_kwargs(kwargs, "dot")
    if not isinstance(m1, ndarray) or not isinstance(m2, ndarray):
        raise TypeError("arguments must be ndarrays")
    if m1._a.ndim not in (1, 2) or m2._a.ndim not in (1, 2):
        raise ValueError("dot() accepts 1-D and 2-D arrays only")
    if m1._a.shape[-1] != m2._a.shape[0]:
        raise ValueError("dimensions do not match")
    A = m1._a if m1._a.ndim == 2 else m1._a.reshape(1, -1)
    B = m2._a if m2._a.ndim == 2 else m2._a.reshape(-1, 1)
    res = _float_matmul(A, B)
    if m1._a.ndim == 2 and m2._a.ndim == 2:
        shape: tuple[int, ...] = res.shape
    else:
        shape = (res.size,)
    out = _store(res.reshape(shape), FLOAT)
    if m1._a.ndim == 1 and m2._a.ndim == 1:
        return builtins.float(out._a[0])
    return out


# --------------------------------------------------------------------------
# Comparison-type functions: maximum, minimum, clip, where
# --------------------------------------------------------------------------

def _extreme(x1: Any, x2: Any, pick_left: Callable, kwargs: dict, fname: str) -> Any:
    _reject_kwargs(kwargs, fname)
    l, r = _operand(x1, 0), _operand(x2, 0)  # scalars get the smallest dtype here
    code = _result_code(l._code, r._code)
    shape = _broadcast(l._a.shape, r._a.shape)
    L, R = l._a.astype(_np.float64), r._a.astype(_np.float64)  # exact for all dtypes
    # C: l OP r ? l : r  (so NaN picks the right operand, unlike numpy)
    res = _np.broadcast_to(_np.where(pick_left(L, R), L, R), shape)
    out = _store(res, code)
    if _is_py_number(x1) and _is_py_number(x2):
        return out._a[0].item()
    return out


def maximum(x1: Any, x2: Any, **kwargs: Any) -> Any:
    """Element-wise maximum; int8 with a Python int (or uint8) gives int16."""
    return _extreme(x1, x2, operator.gt, kwargs, "maximum")


def minimum(x1: Any, x2: Any, **kwargs: Any) -> Any:
    """Element-wise minimum; int8 with a Python int (or uint8) gives int16."""
    return _extreme(x1, x2, operator.lt, kwargs, "minimum")


def clip(a: Any, a_min: Any, a_max: Any, **kwargs: Any) -> Any:
    """ulab's clip is maximum(a_min, minimum(a, a_max)): two allocations."""
    _reject_kwargs(kwargs, "clip")
    if _is_py_number(a):
        lo, hi = builtins.float(a_min), builtins.float(a_max)
        return a_min if a < lo else (a_max if a > hi else a)
    return maximum(a_min, minimum(a, a_max))


def where(condition: Any, x: Any, y: Any, **kwargs: Any) -> ndarray:
    _reject_kwargs(kwargs, "where")
    c, xa, ya = _operand(condition, 0), _operand(x, 0), _operand(y, 0)
    shape = _broadcast(c._a.shape, xa._a.shape, ya._a.shape)
    code = _result_code(xa._code, ya._code)
    cond = c._a.astype(_np.float64) != 0
    res = _np.where(cond, xa._a.astype(_np.float64), ya._a.astype(_np.float64))
    return _store(_np.broadcast_to(res, shape), code)


# --------------------------------------------------------------------------
# Reductions: sum, max, min, argmax, argmin
# --------------------------------------------------------------------------

def _reduction_input(a: Any, axis: Any, fname: str) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError("%s(): the stand-in emulates ndarray input only" % fname)
    if axis is not None and not _is_py_int(axis):
        raise TypeError("axis must be None, or an integer")
    if a._a.size == 0 and fname != "sum":
        raise ValueError("attempt to get (arg)min/(arg)max of empty sequence")
    return a


def _axis(a: ndarray, axis: int) -> int:
    ax = axis + a._a.ndim if axis < 0 else axis
    if not 0 <= ax < a._a.ndim:
        raise ValueError("axis is out of bounds")
    return ax


def _finish_axis(a: ndarray, res: _np.ndarray, code: int, ax: int,
                 keepdims: Any) -> Any:
    if a._a.ndim == 1 and keepdims is not True:
        out = _store(res.reshape(1), code)
        return out._a[0].item()  # ulab returns a scalar for 1-D input
    if keepdims is True:
        res = _np.expand_dims(res, ax)
    return _store(res, code)


def _running_mean(values: _np.ndarray) -> Any:
    """ulab's running mean, m = M + (x - M) / n, in the firmware float type."""
    F = FLOAT_NP
    M = _np.zeros(values.shape[1:], dtype=F)
    with _np.errstate(all="ignore"):
        for i in range(values.shape[0]):
            M = M + (values[i].astype(F) - M) / F(i + 1)
    return M


def sum(a: Any, axis: Any = None, keepdims: Any = False, **kwargs: Any) -> Any:
    """Float-free for axis=k on ints: accumulates (and wraps) in the input dtype.

    With axis=None ulab computes a running mean in float and returns
    round(mean * n): emulated step by step, so large int sums may be inexact
    exactly as on the device.
    """
    _reject_kwargs(kwargs, "sum")
    a = _reduction_input(a, axis, "sum")
    code = a._code
    if axis is None:
        flat = a._a.reshape(-1)
        n = flat.size
        mean = _running_mean(flat.reshape(n, 1))[0] if n else FLOAT_NP(0)
        total = FLOAT_NP(mean * FLOAT_NP(n))
        if code == FLOAT:
            return builtins.float(total)
        return int(_round_half_away(_np.array(total))) if n else 0
    ax = _axis(a, axis)
    moved = _np.moveaxis(a._a, ax, 0)
    if code == FLOAT:
        res = (_running_mean(moved) * FLOAT_NP(moved.shape[0])).astype(FLOAT_NP)
    else:
        res = moved.astype(_np.int64).sum(axis=0)  # wraps when stored
    return _finish_axis(a, res, code, ax, keepdims)


def _first_extreme(flat: _np.ndarray, want_max: builtins.bool) -> int:
    """Index chosen by ulab's loop: strict comparison, NaN never replaces."""
    v = flat.astype(_np.float64)
    if v.size and _np.isnan(v[0]):
        return 0
    v = _np.where(_np.isnan(v), -_np.inf if want_max else _np.inf, v)
    return int(_np.argmax(v) if want_max else _np.argmin(v))


def _minmax(a: Any, axis: Any, keepdims: Any, kwargs: dict, fname: str,
            want_max: builtins.bool, want_index: builtins.bool) -> Any:
    _reject_kwargs(kwargs, fname)
    a = _reduction_input(a, axis, fname)
    if axis is None:
        flat = a._a.reshape(-1)
        i = _first_extreme(flat, want_max)
        if want_index:
            return i
        return flat[i].item()
    ax = _axis(a, axis)
    moved = _np.moveaxis(a._a, ax, 0)
    cols = moved.reshape(moved.shape[0], -1)
    idx = _np.array([_first_extreme(cols[:, j], want_max) for j in range(cols.shape[1])],
                    dtype=_np.int64).reshape(moved.shape[1:])
    if want_index:
        return _finish_axis(a, idx, INT16, ax, keepdims)  # ulab: int16 indices
    picked = _np.take_along_axis(moved, idx[None, ...], axis=0)[0]
    return _finish_axis(a, picked, a._code, ax, keepdims)


def max(a: Any, axis: Any = None, keepdims: Any = False, **kwargs: Any) -> Any:
    return _minmax(a, axis, keepdims, kwargs, "max", True, False)


def min(a: Any, axis: Any = None, keepdims: Any = False, **kwargs: Any) -> Any:
    return _minmax(a, axis, keepdims, kwargs, "min", False, False)


def argmax(a: Any, axis: Any = None, keepdims: Any = False, **kwargs: Any) -> Any:
    return _minmax(a, axis, keepdims, kwargs, "argmax", True, True)


def argmin(a: Any, axis: Any = None, keepdims: Any = False, **kwargs: Any) -> Any:
    return _minmax(a, axis, keepdims, kwargs, "argmin", False, True)


# --------------------------------------------------------------------------
# Unary math functions (the only functions, with take, that accept out=)
# --------------------------------------------------------------------------

def _math_function(name: str, fn: Callable[[_np.ndarray], _np.ndarray]) -> Callable:
    def f(x: Any, *, out: Any = None) -> Any:
        if _is_py_number(x):
            with _np.errstate(all="ignore"):
                return builtins.float(fn(FLOAT_NP(x)))
        if isinstance(x, builtins.bool):
            raise TypeError("%s() of a bool is not emulated" % name)
        if isinstance(x, ndarray):
            src = x._a.astype(FLOAT_NP)
        elif isinstance(x, (list, tuple, range)):
            target = array(x)  # the temporary float array becomes the result
            with _np.errstate(all="ignore"):
                target._a[...] = fn(target._a)
            return target
        else:
            _reject_numpy(x)
            raise TypeError("%s() needs a number, an iterable or an ndarray" % name)
        with _np.errstate(all="ignore"):
            res = fn(src)
        if out is None:
            return _store(res, FLOAT)
        if not isinstance(out, ndarray):
            raise ValueError("out must be an ndarray")
        if out._code != FLOAT:
            raise ValueError("out must be of float dtype")
        if out._a.ndim != x._a.ndim:
            raise ValueError("input and output dimensions differ")
        if out._a.shape != x._a.shape:
            raise ValueError("input and output shapes differ")
        if not _is_dense(out._a):
            # default builds write out= contiguously, ignoring its strides
            raise ValueError("out must be a dense array (ulab writes it contiguously)")
        out._a[...] = res
        return out

    f.__name__ = name
    f.__doc__ = "ulab.numpy.%s: float result; accepts out= (a dense float array)." % name
    return f


floor = _math_function("floor", _np.floor)
ceil = _math_function("ceil", _np.ceil)
exp = _math_function("exp", _np.exp)
sqrt = _math_function("sqrt", _np.sqrt)


# --------------------------------------------------------------------------
# Bitwise functions
# --------------------------------------------------------------------------

def _bitwise_function(op: str, name: str) -> Callable:
    def f(x1: Any, x2: Any, **kwargs: Any) -> ndarray:
        _reject_kwargs(kwargs, name)
        # scalars get the smallest dtype regardless of the other operand here
        return _bitwise(op, _operand(x1, 0), _operand(x2, 0), ValueError)

    f.__name__ = name
    return f


bitwise_and = _bitwise_function("&", "bitwise_and")
bitwise_or = _bitwise_function("|", "bitwise_or")
bitwise_xor = _bitwise_function("^", "bitwise_xor")
left_shift = _bitwise_function("<<", "left_shift")
right_shift = _bitwise_function(">>", "right_shift")


# --------------------------------------------------------------------------
# Host-side helpers (not part of ulab)
# --------------------------------------------------------------------------

def _to_numpy(a: ndarray) -> _np.ndarray:
    """A numpy copy of a stand-in array, for assertions in host tests."""
    if not isinstance(a, ndarray):
        raise TypeError("expected a ulab stand-in ndarray")
    return a._a.astype(builtins.bool) if a._boolean else a._a.copy()
