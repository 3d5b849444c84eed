"""Statistics of the FP16 study (seed 000 §4) and stronger per-network analyses.

- `paper_analysis`: seed 000's own design, so its numbers can be reproduced: Shapiro-Wilk on each
  group, then Mann-Whitney U between the group of all FP32 runs and the group of all FP16 runs
  (all five networks pooled).
- per network: Mann-Whitney U on energy and time, a bootstrap confidence interval of the relative
  reduction 1 − mean(FP16)/mean(FP32) (scipy.stats.bootstrap, BCa), McNemar's exact test on paired
  predictions, and a TOST equivalence test of the accuracy difference against a margin.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from greenbench.core.validation import as_finite_values, check_scalar


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float


def shapiro_wilk(x: Sequence[float]) -> TestResult:
    r = stats.shapiro(as_finite_values(x, "Shapiro-Wilk", minimum=3))
    return TestResult(float(r.statistic), float(r.pvalue))


def mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> TestResult:
    r = stats.mannwhitneyu(as_finite_values(a, "Mann-Whitney group 1"), as_finite_values(b, "Mann-Whitney group 2"),
                           alternative=alternative)
    return TestResult(float(r.statistic), float(r.pvalue))


@dataclass(frozen=True)
class PaperAnalysis:
    shapiro_fp32: TestResult
    shapiro_fp16: TestResult
    mann_whitney: TestResult


def paper_analysis(fp32_by_network: dict[str, Sequence[float]], fp16_by_network: dict[str, Sequence[float]]
                   ) -> PaperAnalysis:
    """Seed 000's test: pool every network's runs per precision, Shapiro-Wilk each, Mann-Whitney between."""
    if not fp32_by_network or set(fp32_by_network) != set(fp16_by_network):
        raise ValueError(f"need the same networks in both precisions, got {sorted(fp32_by_network)} and "
                         f"{sorted(fp16_by_network)}")
    fp32 = np.concatenate([as_finite_values(v, f"FP32 {k}") for k, v in fp32_by_network.items()])
    fp16 = np.concatenate([as_finite_values(v, f"FP16 {k}") for k, v in fp16_by_network.items()])
    return PaperAnalysis(shapiro_wilk(fp32), shapiro_wilk(fp16), mann_whitney(fp32, fp16))


@dataclass(frozen=True)
class Reduction:
    """Relative reduction 1 − mean(new)/mean(reference) with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def relative_reduction(reference: Sequence[float], new: Sequence[float], confidence: float = 0.95,
                       resamples: int = 10_000, seed: int = 0) -> Reduction:
    ref, cand = as_finite_values(reference, "reference runs", minimum=2), as_finite_values(new, "new runs", minimum=2)
    confidence = _probability(confidence, "confidence")
    check_scalar(resamples, "resamples", int, low=100)
    if np.mean(ref) <= 0:
        raise ValueError("the reference mean must be positive")

    def reduction(a, b, axis=-1):
        return 1 - np.mean(b, axis=axis) / np.mean(a, axis=axis)

    low = high = math.nan
    for method in ("BCa", "percentile"):  # BCa degenerates on constant data; the percentile interval does not
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            r = stats.bootstrap((ref, cand), reduction, confidence_level=confidence, n_resamples=resamples,
                                method=method, random_state=np.random.default_rng(seed), vectorized=True)
        low, high = float(r.confidence_interval.low), float(r.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            break
    return Reduction(float(reduction(ref, cand)), low, high, confidence)


@dataclass(frozen=True)
class McNemar:
    only_first_correct: int  # b: right in the first run, wrong in the second
    only_second_correct: int  # c
    p_value: float


def _paired_booleans(first: Sequence[bool], second: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Paired right/wrong outcomes: boolean arrays of one shape (numbers that merely cast to bool are refused)."""
    a, b = np.asarray(first), np.asarray(second)
    for name, arr in (("first", a), ("second", b)):
        if arr.dtype != np.bool_:
            raise ValueError(f"paired predictions must be booleans (correct or not); the {name} are {arr.dtype}")
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired predictions must be non-empty and of equal length, got {a.shape} and {b.shape}")
    return a.reshape(-1), b.reshape(-1)


def _probability(value: float, what: str) -> float:
    return check_scalar(value, what, float, low=0, high=1, include_low=False, include_high=False)
    return float(value)


def mcnemar(correct_first: Sequence[bool], correct_second: Sequence[bool]) -> McNemar:
    """Exact McNemar test (binomial on the discordant pairs) for paired predictions."""
    a, b = _paired_booleans(correct_first, correct_second)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemar(only_a, only_b, p)


@dataclass(frozen=True)
class Equivalence:
    """TOST of a paired accuracy difference (second − first) against ±margin."""

    difference: float
    low: float  # (1 − 2α) confidence interval of the difference
    high: float
    p_value: float  # the larger of the two one-sided p-values
    margin: float

    @property
    def equivalent(self) -> bool:
        return self.low > -self.margin and self.high < self.margin


def accuracy_equivalence(correct_first: Sequence[bool], correct_second: Sequence[bool], margin: float,
                         alpha: float = 0.05) -> Equivalence:
    a, b = _paired_booleans(correct_first, correct_second)
    alpha = _probability(alpha, "alpha")
    if not (isinstance(margin, (int, float, np.floating)) and 0 < margin < 1):
        raise ValueError(f"the equivalence margin is a proportion in (0, 1), got {margin!r}")
    n = a.size
    only_a, only_b = np.sum(a & ~b), np.sum(~a & b)
    diff = float(only_b - only_a) / n
    # SE of a paired difference of proportions; at least one discordant pair's worth keeps it positive
    se = max(math.sqrt(max(only_a + only_b - (only_b - only_a) ** 2 / n, 1.0)) / n, 1e-12)
    z = stats.norm.ppf(1 - alpha)
    p_lower = 1 - stats.norm.cdf((diff + margin) / se)
    p_upper = stats.norm.cdf((diff - margin) / se)
    return Equivalence(diff, diff - z * se, diff + z * se, float(max(p_lower, p_upper)), margin)


def coefficient_of_variation(x: Sequence[float]) -> float:
    arr = as_finite_values(x, "coefficient of variation", minimum=2)
    if np.mean(arr) <= 0:
        raise ValueError("the coefficient of variation needs a positive mean")
    return float(np.std(arr, ddof=1) / np.mean(arr))


BET_FRACTIONS = 2.0 ** -np.arange(1, 9)  # fractions of the largest safe bet, mixed with equal weights


def over_budget_evidence(differences: np.ndarray, population: int, budget: float) -> float:
    """The largest wealth a bettor reached against "the whole set's loss is ≤ budget" (Ville: ≥ 1/α has chance ≤ α).

    `differences` are the first n paired outcomes (FP32 correct − quantized correct, each −1, 0 or 1) of a random
    order of a finite set of `population` images; the loss is their mean over the whole set. Under the
    hypothesis the next outcome's mean, given those before, is at most m = (N·budget − S)/(N − i): sampling
    without replacement (Waudby-Smith & Ramdas 2020, "Confidence sequences for sampling without replacement").
    Each bettor stakes a fixed fraction of the largest bet that cannot go below zero, λ = c/(1 + m), on
    (d − m); the wealth of their average is a nonnegative supermartingale. Concordant pairs (d = 0) cost the
    bettor a little, discordant ones carry the evidence. Once the outcomes so far exceed N·budget by more than
    the rest could take back, the evidence is infinite.
    """
    d = np.asarray(differences, dtype=np.float64)
    i = np.arange(d.size)
    before = np.concatenate([[0.0], np.cumsum(d)[:-1]])
    m = (population * budget - before) / (population - i)
    if np.any(before + d - (population - i - 1) > population * budget):
        return math.inf
    safe = m < 1  # m ≥ 1: no outcome can beat the hypothesis; no bet
    stake = np.where(safe, 1.0 / (1.0 + np.maximum(m, -1 + 1e-12)), 0.0)
    log_wealth = np.cumsum(np.log1p(np.outer(BET_FRACTIONS, stake * (d - m))), axis=1)
    return float(np.max(np.mean(np.exp(log_wealth), axis=0)))
