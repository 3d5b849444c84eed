"""Statistics against scipy's own results and on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from greenbench.analysis.statistics import (
    accuracy_equivalence,
    coefficient_of_variation,
    mann_whitney,
    mcnemar,
    paper_analysis,
    relative_reduction,
    shapiro_wilk,
)
from greenbench.harness.baselines import load_paper_table


def test_shapiro_and_mann_whitney_are_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.exponential(size=40), rng.exponential(size=40) + 0.3
    assert shapiro_wilk(a).p_value == stats.shapiro(a).pvalue
    assert mann_whitney(a, b).p_value == stats.mannwhitneyu(a, b).pvalue


def test_paper_analysis_pools_networks_like_seed_000(baseline_root):
    # ten runs per network and precision shaped like seed 000 Table 2 (mean + SD × normal quantiles)
    table = load_paper_table("seed000-table2", baseline_root)["data"]["networks"]
    z = stats.norm.ppf((np.arange(10) + 0.5) / 10)
    runs = {p: {n: v[p]["energy_wh"] + v[p]["energy_wh_sd"] * z for n, v in table.items()} for p in ("fp32", "fp16")}
    result = paper_analysis(runs["fp32"], runs["fp16"])
    pooled32, pooled16 = np.concatenate(list(runs["fp32"].values())), np.concatenate(list(runs["fp16"].values()))
    assert result.mann_whitney.p_value == stats.mannwhitneyu(pooled32, pooled16).pvalue
    assert result.shapiro_fp32.p_value < 0.05  # five scales pooled: not normal, as the paper found
    assert 0.01 < result.mann_whitney.p_value < 0.06  # the paper's "p < 0.06": a weak pooled test
    # per network, the separation the pooled test hides is plain
    assert mann_whitney(runs["fp32"]["resnet34"], runs["fp16"]["resnet34"]).p_value < 0.001


def test_relative_reduction_interval_covers_known_reduction():
    rng = np.random.default_rng(2)
    ref, new = rng.normal(100, 2, 10), rng.normal(67, 2, 10)  # a 33 % reduction, as ResNet-34's
    r = relative_reduction(ref, new)
    assert r.low < 0.33 < r.high and r.excludes_zero
    same = relative_reduction(rng.normal(100, 2, 10), rng.normal(100, 2, 10))
    assert not same.excludes_zero


def test_relative_reduction_on_constant_runs():
    r = relative_reduction([2.0] * 10, [1.0] * 10)
    assert r.estimate == 0.5 and r.low == pytest.approx(0.5) and r.high == pytest.approx(0.5)


def test_mcnemar_exact_on_known_counts():
    # 10 discordant pairs all one way: p = 2 · 0.5^10
    first = np.array([True] * 10 + [True] * 90)
    second = np.array([False] * 10 + [True] * 90)
    result = mcnemar(first, second)
    assert (result.only_first_correct, result.only_second_correct) == (10, 0)
    assert result.p_value == pytest.approx(2 * 0.5**10)
    assert mcnemar(first, first).p_value == 1.0


def test_equivalence_of_identical_and_shifted_accuracy():
    rng = np.random.default_rng(3)
    a = rng.random(10_000) < 0.9
    b = a.copy()
    flip = rng.choice(10_000, 20, replace=False)
    b[flip] = ~b[flip]
    assert accuracy_equivalence(a, b, margin=0.008).equivalent
    worse = a.copy()
    worse[np.flatnonzero(a)[:300]] = False  # 3 pp worse
    e = accuracy_equivalence(a, worse, margin=0.008)
    assert not e.equivalent and e.difference == pytest.approx(-0.03)


def test_coefficient_of_variation():
    assert coefficient_of_variation([1.0, 1.0, 1.0]) == 0.0
    assert coefficient_of_variation([9.0, 11.0]) == pytest.approx(np.std([9, 11], ddof=1) / 10)


@pytest.mark.parametrize("call", [
    lambda: shapiro_wilk([1.0, 2.0]),
    lambda: mann_whitney([], [1.0]),
    lambda: relative_reduction([1.0, np.nan], [1.0, 2.0]),
    lambda: mcnemar([True], [True, False]),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
