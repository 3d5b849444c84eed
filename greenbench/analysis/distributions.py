"""Which distribution family describes a sample best (thesis §3.3, Tables 3.2–3.3).

The eight families are fitted by maximum likelihood with scipy.stats and ranked by the SSE between
the sample's histogram and each fitted density, and by the KL divergence D(P‖Q) between the
histogram's bin probabilities P and the fitted bin probabilities Q.

The histogram spans the 0.5–99.5 percentile range (heavy-tailed samples such as Cauchy would
otherwise put nearly all mass in one bin). Families are nested (an exponential is a gamma of shape
1, a Gaussian the limit of a gamma of large shape), so a fit with more free parameters outranks a
simpler one only when it is better by more than the statistic's sampling noise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from greenbench.core.validation import as_float_array, check_finite

FAMILIES: dict[str, stats.rv_continuous] = {
    "exponential": stats.expon,
    "uniform": stats.uniform,
    "cauchy": stats.cauchy,
    "laplace": stats.laplace,
    "alpha": stats.alpha,
    "logistic": stats.logistic,
    "gamma": stats.gamma,
    "gaussian": stats.norm,
}
HISTOGRAM_BINS = 200
HISTOGRAM_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class FamilyFit:
    family: str
    params: tuple[float, ...]
    sse: float
    kl: float

    @property
    def n_params(self) -> int:
        return len(self.params)


@dataclass(frozen=True)
class FitReport:
    fits: dict[str, FamilyFit]
    by_sse: tuple[str, ...]
    by_kl: tuple[str, ...]
    sse_noise: float  # sampling SD of the SSE of the true density against this histogram
    kl_noise: float  # sampling SD of the KL divergence of the true model

    def rank(self, family: str, statistic: str = "sse") -> int:
        """1-based rank of a family by 'sse' or 'kl'."""
        order = self.by_sse if statistic == "sse" else self.by_kl
        return order.index(family) + 1


def _parsimonious_order(scores: dict[str, float], n_params: dict[str, int], noise: float) -> tuple[str, ...]:
    """Families by increasing score; within `noise` of each other the one with fewer parameters first."""
    order = sorted(scores, key=lambda f: scores[f])
    changed = True
    while changed:
        changed = False
        for i in range(len(order) - 1):
            a, b = order[i], order[i + 1]
            if scores[b] - scores[a] <= noise and n_params[b] < n_params[a]:
                order[i], order[i + 1] = b, a
                changed = True
    return tuple(order)


def fit_families(samples: np.ndarray, families: tuple[str, ...] | None = None, bins: int = HISTOGRAM_BINS,
                 max_fit_samples: int | None = None, seed: int = 0) -> FitReport:
    """Fit each family (MLE) and rank the fits by histogram SSE and by KL divergence.

    `max_fit_samples` caps how many samples the (slow) MLE fits see; the histogram uses them all.
    """
    arr = as_float_array(samples, "samples").astype(np.float64).reshape(-1)
    check_finite(arr, "samples")
    if arr.size < 2 or arr.min() == arr.max():
        raise ValueError("fitting a distribution needs at least two distinct sample values")
    names = families or tuple(FAMILIES)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown distribution families {unknown}; known: {', '.join(FAMILIES)}")
    fit_sample = arr
    if max_fit_samples is not None and arr.size > max_fit_samples:
        fit_sample = np.random.default_rng(seed).choice(arr, max_fit_samples, replace=False)
    n = arr.size
    lo, hi = np.percentile(arr, HISTOGRAM_PERCENTILES)
    if lo == hi:
        lo, hi = arr.min(), arr.max()
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    width = np.diff(edges)
    density = counts / (n * width)  # an unbiased estimate of the pdf at the bin (mass outside kept out)
    centres = (edges[:-1] + edges[1:]) / 2
    p = counts / counts.sum()
    fits: dict[str, FamilyFit] = {}
    for name in names:
        family = FAMILIES[name]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            params = tuple(float(v) for v in family.fit(fit_sample))
            model = family(*params)
            pdf = np.nan_to_num(model.pdf(centres), nan=0.0, posinf=0.0)
            q = np.clip(np.nan_to_num(np.diff(model.cdf(edges)), nan=0.0), 0.0, None)
        sse = float(np.sum((density - pdf) ** 2))
        mask = p > 0
        if q.sum() > 0:
            q = q / q.sum()
            kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))))
        else:
            kl = math.inf
        fits[name] = FamilyFit(name, params, sse, kl)
    # A binned density estimate has variance d/(n·w) per bin, so Var(SSE) ≈ 2·Σ(d/(n·w))²;
    # 2n·KL of the true model is χ² with (bins − 1) degrees of freedom.
    sse_noise = float(math.sqrt(2 * np.sum((density / (n * width)) ** 2)))
    kl_noise = float(math.sqrt(2 * (np.count_nonzero(counts) - 1)) / (2 * counts.sum()))
    n_params = {f: fits[f].n_params for f in fits}
    return FitReport(fits, _parsimonious_order({f: fits[f].sse for f in fits}, n_params, sse_noise),
                     _parsimonious_order({f: fits[f].kl for f in fits}, n_params, kl_noise), sse_noise, kl_noise)


# Sample sources of each family for the `laplacian-weights` control: the fitter must name them.
REFERENCE_SOURCES: dict[str, stats.rv_continuous] = {
    "exponential": stats.expon(scale=0.5),
    "uniform": stats.uniform(-1, 2),
    "cauchy": stats.cauchy(0, 0.1),
    "laplace": stats.laplace(0, 0.3),
    "alpha": stats.alpha(1.5, 0, 1),
    "logistic": stats.logistic(0, 0.5),
    "gamma": stats.gamma(2.5, 0, 0.4),
    "gaussian": stats.norm(0, 0.5),
}
