"""The thesis grid, its interval, and the budget search against the full sweep (thesis §3.5)."""

from __future__ import annotations

import numpy as np
import pytest

from greenbench.analysis.statistics import over_budget_evidence
from greenbench.coding.entropy import entropy_bits
from greenbench.nn.budget import (
    SCREEN_ALPHA,
    Evaluation,
    NetworkEvaluator,
    NetworkStudy,
    best_overall,
    best_within_budget,
    budget_search,
    covering_interval,
    full_sweep,
    lowest_rate_within_budget,
    select_families,
    thesis_grid,
)


@pytest.mark.parametrize(("largest", "interval"), [(0.3, 1.0), (1.0, 1.0), (1.01, 2.0), (2.0, 2.0), (2.104, 4.0)])
def test_interval_is_the_thesis_one_unless_weights_exceed_it(largest, interval):
    weights = np.array([-0.01, 0.2, -largest], dtype=np.float32)
    assert covering_interval(weights) == interval


def test_wide_interval_keeps_the_thesis_steps_and_clips_no_weight():
    # BatchNorm folded into a convolution gave GoogLeNet weights up to ±2.1
    weights = np.random.default_rng(0).laplace(0, 0.1, 100_000).astype(np.float32)
    weights[:3] = [2.104, -1.93, 1.5]
    xmax = covering_interval(weights)
    assert xmax == 4.0
    grid, thesis = thesis_grid(xmax), thesis_grid()
    for i, (wide, narrow) in enumerate(zip(grid["midtread"], thesis["midtread"], strict=True), start=2):
        q = wide.make()
        assert q.step == 2 * xmax / 2**i
        assert np.max(np.abs(q.reconstruct(weights) - weights)) <= q.step / 2 * (1 + 1e-6)
        assert narrow.make().step == 2 / 2**i
    assert "[−4, 4]" in grid["deadzone δ=0.4"][0].label and "[" not in thesis["deadzone δ=0.4"][0].label


class MonotoneEvaluator:
    """Loss falls as entropy grows, as the budget search assumes; counts its evaluations."""

    def __init__(self, weights: np.ndarray, loss_at_zero_bits: float = 60.0):
        self.weights = weights
        self.loss_at_zero_bits = loss_at_zero_bits
        self.evaluations = 0
        self._entropy: dict[str, float] = {}
        self._evaluated: dict[str, Evaluation] = {}

    def entropy(self, setting) -> float:
        if setting.label not in self._entropy:
            self._entropy[setting.label] = entropy_bits(setting.make().quantize(self.weights))
        return self._entropy[setting.label]

    def evaluate(self, setting) -> Evaluation:
        if setting.label not in self._evaluated:
            self.evaluations += 1
            h = self.entropy(setting)
            loss = self.loss_at_zero_bits * 2.0 ** (-2 * h)
            self._evaluated[setting.label] = Evaluation(setting, h, 0.9 - loss / 100, 0.99, loss, 0.0, 10_000)
        return self._evaluated[setting.label]


def test_budget_search_finds_the_full_sweeps_pick_with_a_quarter_of_the_evaluations():
    weights = np.random.default_rng(1).laplace(0, 0.05, 20_000).astype(np.float32)
    grid = thesis_grid()
    searcher, sweeper = MonotoneEvaluator(weights), MonotoneEvaluator(weights)
    searched = budget_search(searcher, grid, 0.8)
    swept = best_within_budget(full_sweep(sweeper, grid), 0.8)
    assert {f: e.setting.label for f, e in searched.items() if e} == {f: e.setting.label for f, e in swept.items() if e}
    assert all(e is not None for e in searched.values())
    assert searcher.evaluations <= sweeper.evaluations / 4


def test_budget_search_reports_a_family_that_never_meets_the_budget():
    weights = np.random.default_rng(2).laplace(0, 0.05, 5_000).astype(np.float32)
    hopeless = MonotoneEvaluator(weights, loss_at_zero_bits=1e12)
    searched = budget_search(hopeless, {"midtread": thesis_grid()["midtread"]}, 0.8)
    assert searched == {"midtread": None}


def test_a_budget_pair_bounds_top1_and_top5_loss_separately():
    e = Evaluation(thesis_grid()["midtread"][3], 2.0, 0.9, 0.99, 1.0, 0.5, 10_000)
    assert e.within((1.2, 0.8)) and not e.within(0.8) and not e.within((1.2, 0.4))
    for bad in ((0.8,), (0.8, 0.8, 0.8), (float("nan"), 0.8), (0.8, -0.1)):
        with pytest.raises(ValueError, match="budget"):
            e.within(bad)


def test_study_round_trips_through_json_with_its_interval():
    grid = thesis_grid(4.0)
    setting = grid["deadzone δ=0.4"][5]
    point = Evaluation(setting, 3.1, 0.91, 0.99, 0.4, 0.0, 10_000)
    study = NetworkStudy("googlenet", 0.8, 4.0, 0.915, 0.9995, 19.0, 10_000, 1, 2.0, [point],
                         {"deadzone δ=0.4": point, "midrise": None})
    back = NetworkStudy.from_json(study.to_json())
    assert back.interval == 4.0 and back.best.setting.label == setting.label
    assert back.best.setting.make().step == setting.make().step
    assert back.to_json() == study.to_json()


# --------------------------------------------------------------------------- screening on a prefix of the test set

def _population(n: int, discordant: int, loss: int) -> np.ndarray:
    """n paired outcomes (FP32 correct − quantized correct) with `discordant` non-zero ones summing to `loss`."""
    worse = (discordant + loss) // 2
    return np.concatenate([np.ones(worse), -np.ones(discordant - worse), np.zeros(n - discordant)]).astype(np.int8)


def test_screening_rejects_a_setting_at_the_budget_no_more_often_than_alpha():
    # the whole set's loss is exactly the budget (1 pp of 2,000 images): the hypothesis holds
    alpha, n = 0.05, 2_000
    population = _population(n, discordant=200, loss=20)
    rng = np.random.default_rng(0)
    rejected = sum(over_budget_evidence(rng.permutation(population), n, 0.01) >= 1 / alpha for _ in range(400))
    assert rejected <= 400 * alpha + 3 * np.sqrt(400 * alpha * (1 - alpha))


def test_screening_rejects_a_setting_far_over_the_budget_on_a_small_prefix():
    n = 10_000
    population = _population(n, discordant=800, loss=500)  # 5 pp against a 0.8 pp budget
    rng = np.random.default_rng(1)
    needed = []
    for _ in range(20):
        order = rng.permutation(population)
        prefix = next(k for k in (64, 128, 256, 512, 1024, 2048, 4096, n)
                      if over_budget_evidence(order[:k], n, 0.008) >= 2 / SCREEN_ALPHA)
        needed.append(prefix)
    assert np.median(needed) <= 2048


def test_outcomes_beyond_recall_are_infinite_evidence():
    # 80 of 90 images lost already: even if the other 10 all went the other way, the loss exceeds 10 %
    d = np.array([1] * 80 + [0] * 10, np.int8)
    assert over_budget_evidence(d, 100, 0.1) == float("inf")
    assert over_budget_evidence(np.zeros(40, np.int8), 100, 0.1) <= 1.0


def _picks(per_family: dict) -> dict:
    return {family: e and e.setting.label for family, e in per_family.items()}


@pytest.fixture(scope="module")
def lenet_screening(trained_networks):
    x, y = trained_networks.test_set("lenet5")
    return trained_networks.onnx("lenet5"), x[:2_000], y[:2_000]


def test_screened_search_picks_what_the_full_grid_picks(lenet_screening):
    proto, x, y = lenet_screening
    grid = select_families(thesis_grid(2.0), ["deadzone δ=0.7", "minifloat"])
    searcher, sweeper = NetworkEvaluator(proto, x, y), NetworkEvaluator(proto, x, y)
    searched = budget_search(searcher, grid, 0.8)
    swept = best_within_budget(full_sweep(sweeper, grid), 0.8)
    assert _picks(searched) == _picks(swept)
    assert all(e is not None and e.complete and e.images == 2_000 for e in searched.values())
    assert searcher.image_evaluations < 0.25 * sweeper.image_evaluations
    screened_out = [e for e in searcher.evaluated() if not e.complete]
    assert screened_out and all(e.images < 2_000 and not e.within(100.0) for e in screened_out)


def test_one_scan_over_all_families_finds_the_best_of_the_family_picks(lenet_screening):
    proto, x, y = lenet_screening
    grid = select_families(thesis_grid(2.0), ["midtread", "deadzone δ=0.7", "minifloat"])
    searcher, scanner = NetworkEvaluator(proto, x, y), NetworkEvaluator(proto, x, y)
    best = best_overall(budget_search(searcher, grid, 0.8))
    lowest = lowest_rate_within_budget(scanner, 0.8, grid)
    assert best is not None and lowest.setting.label == best.setting.label and lowest.complete
    assert [e.setting.label for e in scanner.evaluated() if e.within(0.8)] == [best.setting.label]
    assert scanner.image_evaluations < 0.6 * searcher.image_evaluations


@pytest.mark.nightly
def test_screened_search_reads_a_tenth_of_the_full_grids_images(trained_networks):
    """Issue 11's target on the whole LeNet-5 test set: same pick in every family, ≤ 10 % of the image evaluations."""
    x, y = trained_networks.test_set("lenet5")
    proto = trained_networks.onnx("lenet5")
    searcher, sweeper = NetworkEvaluator(proto, x, y), NetworkEvaluator(proto, x, y)
    grid = thesis_grid(searcher.interval)
    searched = budget_search(searcher, grid, 0.8)
    swept = best_within_budget(full_sweep(sweeper, grid), 0.8)
    assert _picks(searched) == _picks(swept)
    assert searcher.image_evaluations <= 0.10 * sweeper.image_evaluations
