"""Quantizers given by their cell edges and reconstruction points.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from greenbench.core.validation import as_float_array, check_finite, float_dtype
from greenbench.quantization.base import Quantizer, cast_output, register_quantizer


@register_quantizer
class Codebook(Quantizer):
    """A monotone scalar quantizer given by its cell edges and reconstruction points.

    Cell k is [edges[k−1], edges[k]) and reconstructs to points[k]; indices are k − (cell holding 0).
    The entropy-constrained quantizers and the centroid deadzone are codebooks built by design
    functions in `greenbench.quantization.designed`.
    """

    name = "codebook"

    def __init__(self, edges: Iterable[float], points: Iterable[float]):
        self.edges = np.asarray(list(edges), dtype=np.float64)
        self.points = np.asarray(list(points), dtype=np.float64)
        if self.points.size < 1 or self.edges.size != self.points.size - 1:
            raise ValueError(f"a codebook needs K points and K − 1 edges, got {self.points.size} and {self.edges.size}")
        if not (np.all(np.isfinite(self.edges)) and np.all(np.isfinite(self.points))):
            raise ValueError("codebook edges and points must be finite")
        if np.any(np.diff(self.edges) <= 0) or np.any(np.diff(self.points) < 0):
            raise ValueError("codebook edges must increase strictly and points must not decrease")
        inner = self.points[1:-1]
        if self.points.size > 2 and (np.any(inner < self.edges[:-1]) or np.any(inner > self.edges[1:])):
            raise ValueError("each reconstruction point must lie inside its cell")
        self.zero_cell = int(np.searchsorted(self.edges, 0.0, side="right"))

    @property
    def symmetric(self) -> bool:  # type: ignore[override]
        return bool(np.allclose(self.edges, -self.edges[::-1], rtol=0, atol=1e-12)
                    and np.allclose(self.points, -self.points[::-1], rtol=0, atol=1e-12))

    @property
    def params(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist(), "points": self.points.tolist()}

    @property
    def max_levels(self) -> int:
        return int(self.points.size)

    def quantize(self, x: Any) -> np.ndarray:
        arr = as_float_array(x)
        check_finite(arr)
        cells = np.searchsorted(self.edges, arr.astype(np.float64, copy=False), side="right")
        return (cells - self.zero_cell).astype(self.index_dtype)

    @property
    def index_bounds(self) -> tuple[int, int]:
        return -self.zero_cell, self.points.size - 1 - self.zero_cell

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        cells = np.asarray(q, dtype=np.int64) + self.zero_cell
        return (cells < 0) | (cells >= self.points.size)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        dtype = float_dtype(dtype)
        cells = self._check_indices(q).astype(np.int64) + self.zero_cell
        return cast_output(self.points[cells], dtype, self)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        cells = np.searchsorted(self.edges, np.asarray(x, dtype=np.float64), side="right")
        lower = np.concatenate([[-np.inf], self.edges])[cells]
        upper = np.concatenate([self.edges, [np.inf]])[cells]
        return np.maximum(self.points[cells] - lower, upper - self.points[cells])

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls([-1.5, -0.5, 0.5, 1.5], [-2.0, -1.0, 0.0, 1.0, 2.0]), cls([0.0], [-0.3, 0.3]),
                cls([-0.2, 1.0], [-1.0, 0.1, 3.0])]
