"""Quantizers designed on a source: the entropy-constrained scalar quantizer (ECSQ; Chou, Lookabaugh,
Gray 1989) and the deadzone with centroid reconstruction (Sullivan 1994), with the exact cell
statistics of an empirical source they are designed on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from greenbench.core.validation import as_float_array, check_finite
from greenbench.quantization.base import Quantizer, register_quantizer
from greenbench.quantization.codebook import Codebook
from greenbench.quantization.uniform import Deadzone


class EmpiricalSource:
    """A sample, sorted, with prefix sums of 1, x and x² for O(log n) cell statistics."""

    def __init__(self, samples: np.ndarray):
        arr = as_float_array(samples, "source samples")
        check_finite(arr, "source samples")
        self.x = np.sort(arr.astype(np.float64).reshape(-1))
        self.n = self.x.size
        self._s1 = np.concatenate([[0.0], np.cumsum(self.x)])
        self._s2 = np.concatenate([[0.0], np.cumsum(self.x * self.x)])
        self.mean = self._s1[-1] / self.n
        self.variance = max(self._s2[-1] / self.n - self.mean**2, 0.0)

    @classmethod
    def from_distribution(cls, dist: stats.rv_continuous, n: int) -> EmpiricalSource:
        """n equiprobable quantile points (i + ½)/n of a scipy distribution: a noiseless stand-in."""
        return cls(dist.ppf((np.arange(n) + 0.5) / n))

    @classmethod
    def laplace_quantiles(cls, n: int) -> EmpiricalSource:
        return cls.from_distribution(stats.laplace(scale=1 / math.sqrt(2)), n)

    def cell_stats(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Count, Σx and Σx² of the sample in each cell [edges[k−1], edges[k])."""
        bounds = np.concatenate([[0], np.searchsorted(self.x, edges, side="left"), [self.n]])
        return np.diff(bounds).astype(np.float64), np.diff(self._s1[bounds]), np.diff(self._s2[bounds])


@dataclass(frozen=True)
class Partition:
    """A quantizer's cells over a range: indices, reconstruction points and the K − 1 edges between them."""

    indices: np.ndarray
    points: np.ndarray
    edges: np.ndarray


def partition(quantizer: Quantizer, lo: float, hi: float) -> Partition:
    """The cells of a monotone quantizer that meet [lo, hi], edges located to the last float.

    Edge k is the smallest x with Q(x) ≥ indices[k + 1]: samples at or above it fall in cell k + 1.
    """
    ends = quantizer.quantize(np.array([lo, hi], dtype=np.float64)).astype(np.int64)
    candidates = np.arange(ends[0], ends[1] + 1, dtype=np.int64)
    indices = candidates[~quantizer.invalid_indices(candidates)]
    points = quantizer.dequantize(indices)
    if indices.size < 2:
        return Partition(indices, points, np.empty(0))
    # bisect on the floats' order (their bit patterns), so 64 halvings reach adjacent floats
    below, above = _float_order(points[:-1]), _float_order(points[1:])  # Q = k below, k + 1 above
    target = indices[1:]
    while True:
        mid = (below >> 1) + (above >> 1) + (below & above & 1)
        open_ = (mid > below) & (mid < above)
        if not open_.any():
            break
        up = quantizer.quantize(_order_float(mid)) >= target
        above = np.where(open_ & up, mid, above)
        below = np.where(open_ & ~up, mid, below)
    return Partition(indices, points, _order_float(above))


_SIGN = np.int64(-(2**63))


def _float_order(x: np.ndarray) -> np.ndarray:
    """int64 keys that sort like the float64 values (both zeros map to 0)."""
    bits = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, -(bits & ~_SIGN), bits)


def _order_float(key: np.ndarray) -> np.ndarray:
    return np.where(key < 0, (-key) | _SIGN, key).view(np.float64)


def fit_centroid_deadzone(source: EmpiricalSource, delta: float, step: float) -> CentroidDeadzone:
    """Deadzone cells (δ, Δ) with each cell's point at the source's centroid (midpoint if empty)."""
    cells = partition(Deadzone(delta, step=step), source.x[0], source.x[-1])
    count, s1, _ = source.cell_stats(cells.edges)
    points = np.where(count > 0, s1 / np.maximum(count, 1), cells.points)
    return CentroidDeadzone(cells.edges, points, delta=delta, step=step)


def _envelope_cuts(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Where the lowest of the lines c_k − 2·x·y_k changes hands (y strictly increasing).

    These are the optimal cell edges for points y_k with costs c_k = y_k² + λ·l_k; a line that is
    never lowest drops out, and its cell with it.
    """
    keep: list[int] = []
    cuts: list[float] = []
    for k in range(points.size):
        while keep:
            j = keep[-1]
            x = (offsets[k] - offsets[j]) / (2 * (points[k] - points[j]))
            if cuts and x <= cuts[-1]:
                keep.pop()
                cuts.pop()
            else:
                cuts.append(x)
                break
        keep.append(k)
    return np.asarray(cuts)


def design_ecsq(source: EmpiricalSource, lagrangian: float, initial_step: float | None = None,
                max_iterations: int = 500, tolerance: float = 1e-12) -> ECSQ:
    """Entropy-constrained scalar quantizer minimising MSE + λ·H on the source (Chou, Lookabaugh, Gray 1989).

    Starts from a midtread of step √(6λ/ln 2) (the high-rate optimum for that slope), then alternates
    optimal cells for the current points and code lengths (the lower envelope of the costs) with
    centroids and −log2 p. Ends with centroid points for the final cells.
    """
    if not lagrangian > 0:
        raise ValueError(f"the Lagrange multiplier must be > 0, got {lagrangian!r}")
    step = initial_step or math.sqrt(6 * lagrangian / math.log(2)) * math.sqrt(source.variance or 1.0)
    half = math.ceil(max(abs(source.x[0]), abs(source.x[-1])) / step)
    edges = (np.arange(-half, half + 1) + 0.5) * step
    previous = math.inf
    for _ in range(max_iterations):
        count, s1, s2 = source.cell_stats(edges)
        used = count > 0
        count, s1, s2 = count[used], s1[used], s2[used]
        y = s1 / count
        p = count / source.n
        lengths = -np.log2(p)
        cost = float(np.sum(s2 - s1 * y) / source.n + lagrangian * np.sum(p * lengths))
        edges = _envelope_cuts(y, y * y + lagrangian * lengths)
        if previous - cost <= tolerance * max(abs(cost), 1e-300):
            break
        previous = cost
    count, s1, _ = source.cell_stats(edges)
    used = count > 0
    # merge empty cells into a neighbour by dropping the edge on their right (or left at the top)
    while not used.all():
        k = int(np.flatnonzero(~used)[0])
        edges = np.delete(edges, min(k, edges.size - 1))
        count, s1, _ = source.cell_stats(edges)
        used = count > 0
    return ECSQ(edges, s1 / count, lagrangian=lagrangian)


@register_quantizer
class CentroidDeadzone(Codebook):
    """Deadzone cells (Eq. 2.25) with each cell reconstructed at the source's centroid.

    Built by `fit_centroid_deadzone`; it is the optimum that the
    `deadzone-optimal` claim compares the plain deadzone with.
    """

    name = "deadzone-centroid"

    def __init__(self, edges: Iterable[float], points: Iterable[float], delta: float = 0.0, step: float = 0.0):
        super().__init__(edges, points)
        self.delta, self.step = float(delta), float(step)

    @property
    def params(self) -> dict[str, Any]:
        return {"delta": self.delta, "step": self.step, **super().params}

    @classmethod
    def examples(cls) -> list[Quantizer]:
        source = EmpiricalSource.laplace_quantiles(2**14)
        return [fit_centroid_deadzone(source, 0.7, 0.5), fit_centroid_deadzone(source, 0.3, 0.1)]


@register_quantizer
class ECSQ(Codebook):
    """An entropy-constrained scalar quantizer (Chou–Lookabaugh–Gray design) for a source and λ.

    Built by `design_ecsq`, which minimises D + λ·H over cells and points.
    """

    name = "ecsq"

    def __init__(self, edges: Iterable[float], points: Iterable[float], lagrangian: float = 0.0):
        super().__init__(edges, points)
        self.lagrangian = float(lagrangian)

    @property
    def params(self) -> dict[str, Any]:
        return {"lagrangian": self.lagrangian, **super().params}

    @classmethod
    def examples(cls) -> list[Quantizer]:
        source = EmpiricalSource.laplace_quantiles(2**14)
        return [design_ecsq(source, 0.05), design_ecsq(source, 0.5)]
