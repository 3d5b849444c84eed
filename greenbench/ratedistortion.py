"""Rate–distortion of scalar quantizers on a source (thesis §2.7, Sullivan 1994).

A source is a sorted sample with prefix sums, so any monotone quantizer is evaluated exactly from
its cells: `partition` finds each cell edge by bisection on the quantizer's own `quantize` (no
second copy of its formula), and the rate and distortion follow from the cell statistics in
O(K log n). The same statistics give centroid reconstruction and the entropy-constrained design.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .quantizers import Codebook, Deadzone, Quantizer, as_float_array, check_finite, register_quantizer
from .rate import entropy_from_counts


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


@dataclass(frozen=True)
class RDPoint:
    """Rate (bits/sample), distortion (MSE) and SNR (dB) of one quantizer on one source."""

    label: str
    rate: float
    mse: float
    snr_db: float


def _snr_db(variance: float, mse: float) -> float:
    return float("inf") if mse <= 0 else 10.0 * math.log10(variance / mse)


def evaluate(quantizer: Quantizer, source: EmpiricalSource, label: str | None = None,
             centroids: bool = False) -> RDPoint:
    """Entropy of the indices and MSE of the reconstruction (or of cell centroids) over the source."""
    cells = partition(quantizer, source.x[0], source.x[-1])
    count, s1, s2 = source.cell_stats(cells.edges)
    used = count > 0
    if centroids:
        sse = np.sum(s2[used] - s1[used] ** 2 / count[used])
    else:
        y = cells.points
        sse = np.sum(s2 - 2 * y * s1 + count * y * y)
    mse = max(float(sse) / source.n, 0.0)
    return RDPoint(label or repr(quantizer), entropy_from_counts(count), mse, _snr_db(source.variance, mse))


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


# --------------------------------------------------------------------------- curves and bounds

def sweep(make: Callable[[float], Quantizer], grid: Iterable[float], source: EmpiricalSource, label: str,
          centroids: bool = False, max_rate: float = math.inf, max_cells: int = 1 << 15) -> list[RDPoint]:
    """Evaluate `make(g)` over a grid; stops once the rate exceeds `max_rate` (grids ordered by rate).

    Settings with more than `max_cells` cells over the source are skipped: their rate is far above
    any rate this suite compares at, and locating that many edges is what costs time.
    """
    points = []
    for g in grid:
        quantizer = make(g)
        ends = quantizer.quantize(np.array([source.x[0], source.x[-1]]))
        if int(ends[1]) - int(ends[0]) > max_cells:
            continue
        point = evaluate(quantizer, source, f"{label}@{g:.6g}", centroids)
        points.append(point)
        if point.rate > max_rate:
            break
    return points


def pareto_front(points: Sequence[RDPoint]) -> tuple[np.ndarray, np.ndarray]:
    """Rates and SNRs of the points no other point beats at equal or lower rate, rate increasing."""
    ordered = sorted(points, key=lambda p: (p.rate, -p.snr_db))
    rates, snrs = [], []
    for p in ordered:
        if not snrs or p.snr_db > snrs[-1]:
            if rates and p.rate == rates[-1]:
                snrs[-1] = p.snr_db
            else:
                rates.append(p.rate)
                snrs.append(p.snr_db)
    return np.asarray(rates), np.asarray(snrs)


def snr_at_rates(points: Sequence[RDPoint], rates: Sequence[float]) -> np.ndarray:
    """SNR of the operational curve (Pareto front, linear between points) at each rate; NaN off its span."""
    r, s = pareto_front(points)
    if r.size == 0:
        return np.full(len(rates), np.nan)
    return np.interp(rates, r, s, left=np.nan, right=np.nan)


def family_snr_at_rates(curves: Sequence[Sequence[RDPoint]], rates: Sequence[float]) -> np.ndarray:
    """A family's SNR at each rate: the best of its member curves (each one shape, swept in step or scale)."""
    with np.errstate(invalid="ignore"):
        stacked = np.array([snr_at_rates(c, rates) for c in curves])
    return np.where(np.all(np.isnan(stacked), axis=0), np.nan, np.nanmax(np.where(np.isnan(stacked), -np.inf,
                                                                                      stacked), axis=0))


def shannon_lower_bound_snr(rate: float | np.ndarray, dist: stats.rv_continuous) -> np.ndarray:
    """SNR (dB) of the Shannon lower bound D ≥ 2^(2h)/(2πe)·2^(−2R) for MSE (h in bits)."""
    rate = np.asarray(rate, dtype=np.float64)
    if not np.all(np.isfinite(rate)) or np.any(rate < 0):
        raise ValueError("rates must be finite and ≥ 0 bits per sample")
    h_bits = float(dist.entropy()) / math.log(2)
    d = 2 ** (2 * h_bits) / (2 * math.pi * math.e) * 2.0 ** (-2 * np.asarray(rate, dtype=np.float64))
    return 10 * np.log10(float(dist.var()) / d)


def snr_standard_error_db(n: int, error_kurtosis: float = 1.8) -> float:
    """Sampling SE of an SNR estimate from n samples: (10/ln 10)·√((κ − 1)/n), κ = E[e⁴]/E[e²]².

    κ = 1.8 for the uniform error of a fine quantizer; coarse quantizers have larger κ.
    """
    return 10 / math.log(10) * math.sqrt((error_kurtosis - 1) / n)


# ----------------------------------------------------------------------------- the family study

DELTA_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 … 0.95 (0 is midrise, 0.5 midtread)


@dataclass
class FamilyStudy:
    """SNR (dB) at given rates for each quantizer family on one source."""

    rates: np.ndarray
    snr: dict[str, np.ndarray]
    points: dict[str, int]  # how many settings were evaluated per family

    def best(self, families: Iterable[str]) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmax(np.array([self.snr[f] for f in families]), axis=0)


def study_families(source: EmpiricalSource, rates: Sequence[float], grid_points: int = 90) -> FamilyStudy:
    """Every family of SPEC §2 (and the optima) swept over step/scale on one source, read at `rates`.

    Steps and scales are relative to the source's standard deviation, so the grids fit any source.
    """
    from .quantizers import MINIFLOAT_FORMATS, Midrise, Midtread, Minifloat, MuLaw

    sigma = math.sqrt(source.variance) or 1.0
    top = max(rates) + 0.5
    steps = sigma * np.geomspace(8.0, 2.0 ** -(top + 1), grid_points)  # coarse → fine: rate increases
    curves: dict[str, list[list[RDPoint]]] = {}
    curves["midtread"] = [sweep(lambda s: Midtread(step=s), steps, source, "midtread", max_rate=top)]
    curves["midrise"] = [sweep(lambda s: Midrise(step=s), steps, source, "midrise", max_rate=top)]
    curves["deadzone"] = [sweep(lambda s, d=d: Deadzone(d, step=s), steps, source, f"deadzone δ={d}",
                                max_rate=top) for d in DELTA_GRID]
    curves["deadzone δ=0.7"] = [c for d, c in zip(DELTA_GRID, curves["deadzone"]) if d == 0.7]
    curves["deadzone-centroid"] = [sweep(lambda s, d=d: Deadzone(d, step=s), steps, source, f"centroid δ={d}",
                                         centroids=True, max_rate=top) for d in DELTA_GRID]
    levels = np.unique(np.geomspace(2, 2 ** (top + 4), grid_points).astype(int))
    curves["mu-law"] = [sweep(lambda n, xm=xm: MuLaw(int(n), xmax=xm * sigma), levels, source, f"mu-law {xm}σ",
                              max_rate=top) for xm in (1, 2, 4, 8, 16)]
    for e, m in MINIFLOAT_FORMATS:
        emax = 2**e - 1 - (2 ** (e - 1) - 1 if e else 0)
        emin = -(2 ** (e - 1) - 1 if e else 0)
        scales = sigma * 2.0 ** -np.arange(emin - 3, emax + 3, 0.125)
        curves[f"minifloat 1/{e}/{m}"] = [sweep(lambda sc, e=e, m=m: Minifloat(e, m, scale=sc), scales, source,
                                                f"minifloat 1/{e}/{m}", max_cells=1 << 12)]
    lambdas = source.variance * np.geomspace(3.0, 2.0 ** -(2 * top + 2), grid_points // 2)
    curves["ecsq"] = [[evaluate(design_ecsq(source, lam), source, f"ecsq λ={lam:.3g}") for lam in lambdas]]
    rates_arr = np.asarray(rates, dtype=np.float64)
    return FamilyStudy(rates_arr, {f: family_snr_at_rates(c, rates_arr) for f, c in curves.items()},
                       {f: sum(len(x) for x in c) for f, c in curves.items()})


# --------------------------------------------------------------------------- the designed quantizers

@register_quantizer
class CentroidDeadzone(Codebook):
    """Deadzone cells (Eq. 2.25) with each cell reconstructed at the source's centroid.

    Built by `greenbench.ratedistortion.fit_centroid_deadzone`; it is the optimum that the
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

    Built by `greenbench.ratedistortion.design_ecsq`, which minimises D + λ·H over cells and points.
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
