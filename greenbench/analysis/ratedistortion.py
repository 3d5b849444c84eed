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

import numpy as np
from scipy import stats

from greenbench.coding.entropy import entropy_from_counts
from greenbench.quantization.base import Quantizer
from greenbench.quantization.designed import EmpiricalSource, design_ecsq, partition
from greenbench.quantization.uniform import Deadzone


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
    from greenbench.quantization.tabled import MINIFLOAT_FORMATS, Minifloat, MuLaw
    from greenbench.quantization.uniform import Midrise, Midtread

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


