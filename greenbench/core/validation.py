"""One way to validate what a public function is given (like scikit-learn's `check_scalar`).

Every check raises a ValueError (a TypeError for a wrong kind of object) whose message names the
argument, what it accepts and what it got, in the same words everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
INDEX_DTYPES = (np.int8, np.int16, np.int32, np.int64)  # the dtypes indices come in, narrowest first


def _native(arr: np.ndarray) -> np.ndarray:
    # big-endian data (from a file or another machine) is the same numbers; the compiled kernels read native order
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def as_float_array(x: Any, what: str = "input") -> np.ndarray:
    """`x` as a float16/32/64 array in native byte order; empty arrays and other dtypes are rejected."""
    arr = _native(np.asarray(x))
    if arr.dtype.type not in FLOAT_DTYPES:
        raise ValueError(f"{what} must be float16, float32 or float64, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    return arr


def check_finite(arr: np.ndarray, what: str = "input") -> None:
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{what} holds {bad} non-finite value(s) (NaN or inf); quantizers need finite values")


def as_index_array(q: Any) -> np.ndarray:
    """`q` as an integer index array in native byte order, checked before any cast: every value must fit in int64."""
    arr = _native(np.asarray(q))
    if arr.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError("indices are empty")
    if arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"index {int(arr.max())} does not fit in int64: no quantizer produces it")
    return arr


def narrowest_int_dtype(lo: int, hi: int) -> np.dtype:
    """The narrowest signed integer dtype that holds every integer from `lo` to `hi`."""
    for dtype in INDEX_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"integers from {lo} to {hi} do not fit in int64")


def float_dtype(dtype: Any) -> np.dtype:
    """A float16/32/64 output dtype, or a ValueError: dequantized values are never integers."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dtype!r}") from None
    if dt.type not in FLOAT_DTYPES:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dt}")
    return dt


MAX_SECONDS = 86_400.0  # a day: no window, wait or timeout of the suite is meant to be longer


def _number(v: float) -> str:
    if isinstance(v, int):  # exact, and large powers of two as such
        return f"2^{v.bit_length() - 1}" if v >= 2**20 and v & (v - 1) == 0 else str(v)
    return f"{v:g}"


def interval_text(low: float | None, high: float | None, include_low: bool = True, include_high: bool = True) -> str:
    """'in [a, b]', '≥ a', '< b' … in the words every range check uses ('' without bounds)."""
    if low is None and high is None:
        return ""
    if low is not None and high is not None:
        return f"in {'[' if include_low else '('}{_number(low)}, {_number(high)}{']' if include_high else ')'}"
    if low is not None:
        return f"{'≥' if include_low else '>'} {_number(low)}"
    return f"{'≤' if include_high else '<'} {_number(high)}"


def check_scalar(value: Any, name: str, kind: type = float, *, low: float | None = None, high: float | None = None,
                 include_low: bool = True, include_high: bool = True) -> Any:
    """`value` as a finite `kind` (int or float) within [low, high], or a ValueError naming `name`.

    Booleans and strings are never numbers; an int kind takes Python and numpy integers only, a float
    kind any real number (returned as float). The bounds' ends are open where `include_*` is False.
    """
    if kind not in (int, float):
        raise TypeError(f"check_scalar checks int or float values, not {kind!r}")
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    real = integral or (isinstance(value, (float, np.floating)) and not isinstance(value, bool))
    if not (integral if kind is int else real):
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    converted = int(value) if kind is int else float(value)
    if kind is float and not math.isfinite(converted):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if ((low is not None and (converted < low or (converted == low and not include_low)))
            or (high is not None and (converted > high or (converted == high and not include_high)))):
        verb = "lie" if low is not None and high is not None else "be"
        raise ValueError(f"{name} must {verb} {interval_text(low, high, include_low, include_high)}, got {value!r}")
    return converted


def check_seconds(value: Any, what: str, allow_zero: bool = False, high: float = MAX_SECONDS) -> float:
    """A duration in seconds: finite, > 0 (≥ 0 with `allow_zero`) and at most `high` (a day by default)."""
    return check_scalar(value, f"{what} (seconds)", float, low=0.0, high=high, include_low=allow_zero)


def as_finite_values(x: Any, what: str, minimum: int = 1) -> np.ndarray:
    """A flat float64 array of at least `minimum` finite values."""
    try:
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers, got {type(x).__name__}") from None
    if arr.size < minimum:
        raise ValueError(f"{what} needs at least {minimum} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} holds NaN or inf")
    return arr
