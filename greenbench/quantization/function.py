"""A quantizer made of two plain functions, for holding a user's quantizer (a PyTorch fake-quant, a float8 cast)
to the common checks without subclassing `Quantizer`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from greenbench.core.validation import as_float_array, as_index_array, check_finite, check_scalar, float_dtype
from greenbench.quantization.base import Quantizer


class FunctionQuantizer(Quantizer):
    """A quantizer made of two plain functions: `quantize_fn(x: float64 array) -> integer array` and
    `dequantize_fn(q: int64 array) -> float array`.

    Input is validated here (finite floats, not empty) before `quantize_fn` sees it, and its output
    is checked to be integers of the input's shape. Declare what holds so the checks test it:
    `levels` (most distinct outputs), `symmetric` (odd symmetry), `error_bound(x)` (largest
    |x − D(Q(x))|, inf where unbounded), `valid(q)` (which indices `dequantize_fn` accepts) and
    `index_bounds` (least and greatest index: `quantize` then gives them in the narrowest dtype
    that holds both, and an index of `quantize_fn` beyond them is an error).
    """

    def __init__(self, quantize_fn: Callable[[np.ndarray], Any], dequantize_fn: Callable[[np.ndarray], Any],
                 name: str, *, levels: int | None = None, symmetric: bool = False,
                 error_bound: Callable[[np.ndarray], np.ndarray] | None = None,
                 valid: Callable[[np.ndarray], np.ndarray] | None = None,
                 index_bounds: tuple[int, int] | None = None):
        if not callable(quantize_fn) or not callable(dequantize_fn):
            raise ValueError("quantize_fn and dequantize_fn must be callables")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a quantizer needs a name, got {name!r}")
        if levels is not None:
            check_scalar(levels, "levels (or None)", int, low=1)
        if index_bounds is not None:
            lo, hi = (check_scalar(b, "index_bounds", int, low=-2**62, high=2**62) for b in index_bounds)
            if lo > hi:
                raise ValueError(f"index_bounds must be (least, greatest), got {index_bounds!r}")
            index_bounds = (lo, hi)
        self._index_bounds = index_bounds
        self.quantize_fn, self.dequantize_fn = quantize_fn, dequantize_fn
        self.name = name  # type: ignore[misc] - an instance's name, not the class's
        self.levels = None if levels is None else int(levels)
        self.symmetric = bool(symmetric)  # type: ignore[misc]
        self._error_bound, self._valid = error_bound, valid

    @property
    def params(self) -> dict[str, Any]:
        return {"levels": self.levels}

    @property
    def max_levels(self) -> int | None:
        return self.levels

    @property
    def index_bounds(self) -> tuple[int, int] | None:
        return self._index_bounds

    def quantize(self, x: Any) -> np.ndarray:
        arr = as_float_array(x)
        check_finite(arr)
        q = np.asarray(self.quantize_fn(arr.astype(np.float64)))
        if q.shape != arr.shape or q.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: quantize_fn gave {q.dtype} of shape {q.shape}, not integers of shape "
                            f"{arr.shape}")
        if self._index_bounds is None:
            return q
        lo, hi = self._index_bounds
        if int(q.min()) < lo or int(q.max()) > hi:
            raise ValueError(f"{self.name}: quantize_fn gave indices from {int(q.min())} to {int(q.max())}, beyond "
                             f"the declared index_bounds [{lo}, {hi}]")
        return q.astype(self.index_dtype)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        dtype = float_dtype(dtype)
        idx = as_index_array(q)
        bad = int(np.count_nonzero(self.invalid_indices(idx)))
        if bad:
            raise ValueError(f"{bad} index(es) are not valid for {self.name}")
        return np.asarray(self.dequantize_fn(idx.astype(np.int64)), dtype=np.float64).reshape(idx.shape).astype(dtype)

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q)
        return np.zeros(q.shape, bool) if self._valid is None else ~np.asarray(self._valid(q), dtype=bool)

    def error_bound(self, x: np.ndarray) -> np.ndarray | None:
        return None if self._error_bound is None else np.asarray(self._error_bound(x), dtype=np.float64)

    def __repr__(self) -> str:
        return f"FunctionQuantizer({self.name!r}, levels={self.levels})"
