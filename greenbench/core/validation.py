"""One way to validate what a public function is given (like scikit-learn's `check_scalar`).

Every check raises a ValueError (a TypeError for a wrong kind of object) whose message names the
argument, what it accepts and what it got, in the same words everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_float_array(x: Any, what: str = "input") -> np.ndarray:
    """`x` as a float16/32/64 array; empty arrays and other dtypes are rejected."""
    arr = np.asarray(x)
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
    """`q` as an integer index array, checked before any cast: every value must fit in int64."""
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError("indices are empty")
    if arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"index {int(arr.max())} does not fit in int64: no quantizer produces it")
    return arr


def float_dtype(dtype: Any) -> np.dtype:
    """A float16/32/64 output dtype, or a ValueError: dequantized values are never integers."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dtype!r}") from None
    if dt.type not in FLOAT_DTYPES:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dt}")
    return dt


def check_number(value: Any, what: str, low: float | None = None, low_inclusive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise ValueError(f"{what} must be {'≥' if low_inclusive else '>'} {low}, got {value!r}")
    return v


def check_seconds(value: float, what: str, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{what} must be a finite number of seconds {'≥' if allow_zero else '>'} 0, got {value!r}")
    return value
