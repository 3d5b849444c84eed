"""Weight quantization of trained networks without retraining (thesis §3.5–3.7, Table 3.10).

`thesis_grid()` is the thesis's sweep: levels 2^i (2 ≤ i ≤ 24) over [−1, 1] for midrise, midtread,
μ-law (X_max = 1) and deadzone δ ∈ {0.1, 0.25, 0.4, 0.7}, plus every minifloat format of Table 3.5.
The thesis's Eqs. 2.21–2.26 do not clip, so a weight beyond ±1 keeps its own level there; our
quantizers clip to their level count, so for a network with such weights (BatchNorm folded into a
convolution easily exceeds 1) `covering_interval` widens the interval to the next power of two:
the steps Δ stay the thesis's 2^(1−i), only the level count at a given step grows.
`budget_search` finds, per quantizer family, the lowest-entropy setting whose top-1 and top-5 loss
stay within a budget. The entropy of a setting needs no inference, so each family's settings are
taken in order of entropy and the first one within the budget is the pick: the full grid's own pick,
with no assumption about how loss varies inside a family. Rejecting costs little: a setting is
screened on a growing prefix of a fixed shuffled order of the test set, and a sequential test on its
paired predictions against the FP32 model's (`over_budget_evidence`) stops it as soon as its loss on
the whole set is over the budget with confidence 1 − α. A setting is accepted only on the whole set,
so every reported pick carries the full figure. Evaluators that cannot screen (output SNR) are
bisected instead, assuming fidelity does not fall with entropy: about log2(#settings) evaluations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from greenbench.analysis.metrics import top_k_accuracy, true_class_rank
from greenbench.analysis.statistics import over_budget_evidence
from greenbench.coding.entropy import FP32_BITS, entropy_bits
from greenbench.coding.weights import flat_weights, quantize_model
from greenbench.core.validation import check_scalar
from greenbench.nn.onnx_eval import run_onnx, session
from greenbench.quantization.base import Quantizer
from greenbench.quantization.tabled import MINIFLOAT_FORMATS, Minifloat, MuLaw
from greenbench.quantization.uniform import Deadzone, Midrise, Midtread

THESIS_LEVEL_EXPONENTS = tuple(range(2, 25))
THESIS_DELTAS = (0.1, 0.25, 0.4, 0.7)
DEADZONE_FAMILY = ("midrise", "midtread") + tuple(f"deadzone δ={d}" for d in THESIS_DELTAS)


@dataclass(frozen=True)
class Setting:
    family: str
    label: str
    make: Callable[[], Quantizer] = field(compare=False, repr=False)


def covering_interval(weights: np.ndarray) -> float:
    """X of the interval [−X, X] of the sweep: 1 as in the thesis, or the power of two that holds every weight."""
    weights = np.asarray(weights)
    if weights.size == 0 or not np.all(np.isfinite(weights)):
        raise ValueError("the weights must be a non-empty array of finite values")
    largest = float(np.max(np.abs(weights)))
    return 1.0 if largest <= 1.0 else float(2.0 ** np.ceil(np.log2(largest)))


def thesis_grid(xmax: float = 1.0) -> dict[str, list[Setting]]:
    """The thesis's grid (SPEC §2) over [−xmax, xmax], grouped by quantizer family."""
    check_scalar(xmax, "xmax", float, low=0, include_low=False)
    families: dict[str, Callable[[int], Quantizer]] = {
        "midrise": lambda n: Midrise(levels=n, xmax=xmax),
        "midtread": lambda n: Midtread(levels=n, xmax=xmax),
        "mu-law": lambda n: MuLaw(n, xmax=xmax),
        **{f"deadzone δ={d}": (lambda n, d=d: Deadzone(d, levels=n, xmax=xmax)) for d in THESIS_DELTAS},
    }
    interval = "" if xmax == 1.0 else f" on [−{xmax:g}, {xmax:g}]"
    grid = {name: [Setting(name, f"{name} i={i}{interval}", (lambda f=make, i=i: f(2**i)))
                   for i in THESIS_LEVEL_EXPONENTS]
            for name, make in families.items()}
    grid["minifloat"] = [Setting("minifloat", f"minifloat 1/{e}/{m}", (lambda e=e, m=m: Minifloat(e, m)))
                         for e, m in MINIFLOAT_FORMATS]
    return grid


class _Rated:
    """A setting's result that knows its entropy: CR = 32/H (inf for a single symbol)."""

    entropy: float

    @property
    def compression_ratio(self) -> float:
        return FP32_BITS / self.entropy if self.entropy > 0 else float("inf")


Budget = float | tuple[float, float]  # pp of accuracy loss: one figure for top-1 and top-5, or (top-1, top-5)


def check_budget(budget_pp: float) -> float:
    return check_scalar(budget_pp, "the accuracy budget (pp)", float, low=0)


def top_k_budgets(budget_pp: Budget) -> tuple[float, float]:
    """(top-1, top-5) budgets in pp from one figure for both or a pair."""
    if isinstance(budget_pp, tuple):
        if len(budget_pp) != 2:
            raise ValueError(f"an accuracy budget pair is (top-1, top-5) in pp, got {budget_pp!r}")
        return check_budget(budget_pp[0]), check_budget(budget_pp[1])
    return check_budget(budget_pp), check_budget(budget_pp)


@dataclass(frozen=True)
class Evaluation(_Rated):
    setting: Setting
    entropy: float
    top1: float
    top5: float
    loss_top1_pp: float
    loss_top5_pp: float
    images: int  # how many test images the figures above come from
    complete: bool = True  # False: rejected on a prefix of the test set; the figures are the prefix's

    def within(self, budget_pp: Budget) -> bool:
        top1_budget, top5_budget = top_k_budgets(budget_pp)
        return self.complete and self.loss_top1_pp <= top1_budget and self.loss_top5_pp <= top5_budget


SCREEN_SEED = 0
SCREEN_ALPHA = 1e-3  # chance that screening rejects a setting whose whole-set loss is within the budget
SCREEN_FIRST = 16  # images in the first prefix, each step doubles it: the wealth at n does not depend on the steps


def _hits(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image: (top-1 correct, top-5 correct), ties against the true class; a non-finite output is wrong."""
    finite = np.all(np.isfinite(logits), axis=1)
    rank = true_class_rank(np.where(finite[:, None], logits, 0.0), labels)
    return np.stack([finite & (rank <= 1), finite & (rank <= 5)], axis=1)


class NetworkEvaluator:
    """Top-1/top-5 of an ONNX model on a labelled set, for any weight quantizer; results cached."""

    def __init__(self, proto: onnx.ModelProto, inputs: np.ndarray, labels: np.ndarray):
        self.proto = proto
        self.inputs = np.ascontiguousarray(inputs)
        self.labels = np.asarray(labels)
        if len(self.labels) == 0 or len(self.labels) != len(self.inputs):
            raise ValueError(f"{len(self.inputs)} inputs and {len(self.labels)} labels: need as many, and some")
        logits = run_onnx(session(proto), self.inputs)
        self.top1 = top_k_accuracy(logits, self.labels, 1)
        self.top5 = top_k_accuracy(logits, self.labels, 5)
        # the screening order: fixed, so that runs are reproducible; shuffled, so that a prefix is a random sample
        self.order = np.random.default_rng(SCREEN_SEED).permutation(len(self.labels))
        self._reference_hits = _hits(logits[self.order], self.labels[self.order])
        self._weights = flat_weights(proto)
        self.original_entropy = entropy_bits(self._weights.view(np.int32))  # of the fp32 bit patterns
        self.evaluations = 0
        self.image_evaluations = 0
        self.seconds = 0.0
        self.interval = covering_interval(self._weights)
        self._cache: dict[str, Evaluation] = {}
        self._entropy: dict[str, float] = {}

    def entropy(self, setting: Setting) -> float:
        """Bits per weight of a setting, without inference."""
        if setting.label not in self._entropy:
            self._entropy[setting.label] = entropy_bits(setting.make().quantize(self._weights))
        return self._entropy[setting.label]

    def evaluated(self) -> list[Evaluation]:
        return list(self._cache.values())

    def evaluate(self, setting: Setting) -> Evaluation:
        """Top-1/top-5 of the setting on the whole test set."""
        return self.screen(setting, None)

    def screen(self, setting: Setting, budget_pp: Budget | None, alpha: float = SCREEN_ALPHA) -> Evaluation:
        """The setting on a growing prefix of the test order, stopped as soon as its loss is over the budget
        with confidence 1 − α (top-1 and top-5 at α/2 each); otherwise, and with no budget, on the whole set."""
        known = self._cache.get(setting.label)
        if known is not None and (known.complete or budget_pp is not None):
            return known
        budgets = None if budget_pp is None else top_k_budgets(budget_pp)
        started = time.perf_counter()
        quantized = quantize_model(self.proto, setting.make())
        sess = session(quantized.proto)
        n, total = 0, len(self.labels)
        hits = np.empty((0, 2), bool)
        while n < total:
            end = total if budgets is None else min(total, max(SCREEN_FIRST, 2 * n))
            part = self.order[n:end]
            logits = run_onnx(sess, self.inputs[part])
            hits = np.concatenate([hits, _hits(logits, self.labels[part])])
            n = end
            if n < total and any(over_budget_evidence(self._reference_hits[:n, k].astype(np.int8) - hits[:, k],
                                                      total, budgets[k] / 100) >= 2 / alpha for k in (0, 1)):
                break
        reference = self._reference_hits[:n].mean(axis=0)
        top1, top5 = hits.mean(axis=0)
        self._entropy[setting.label] = quantized.entropy
        evaluation = Evaluation(setting, quantized.entropy, float(top1), float(top5), 100 * float(reference[0] - top1),
                                100 * float(reference[1] - top5), n, complete=n == total)
        self._cache[setting.label] = evaluation
        self.evaluations += 1
        self.image_evaluations += n
        self.seconds += time.perf_counter() - started
        return evaluation


def full_sweep(evaluator: NetworkEvaluator, grid: dict[str, list[Setting]]) -> list[Evaluation]:
    return [evaluator.evaluate(s) for settings in grid.values() for s in settings]


def budget_search(evaluator: NetworkEvaluator | OutputSnrEvaluator, grid: dict[str, list[Setting]],
                  budget: float = 0.8) -> dict[str, Evaluation | SnrEvaluation | None]:
    """Per family, the lowest-entropy setting within the budget (None if no setting is).

    A NetworkEvaluator screens the settings in order of entropy (the full grid's pick, at a fraction of its
    images); other evaluators bisect the entropy order.
    """
    check_budget(budget)
    best: dict[str, Evaluation | SnrEvaluation | None] = {}
    for family, settings in grid.items():
        ordered = sorted(settings, key=evaluator.entropy)  # stable: ties keep the grid's order, as the full sweep
        if isinstance(evaluator, NetworkEvaluator):
            best[family] = _first_within(evaluator, ordered, budget)
            continue
        lo, hi = 0, len(ordered)  # position len(ordered) stands for "none is within the budget"
        while lo < hi:  # invariant: everything at or after hi is within the budget
            mid = (lo + hi) // 2
            if evaluator.evaluate(ordered[mid]).within(budget):
                hi = mid
            else:
                lo = mid + 1
        best[family] = evaluator.evaluate(ordered[hi]) if hi < len(ordered) else None
    return best


def _first_within(evaluator: NetworkEvaluator, ordered: Sequence[Setting], budget: Budget) -> Evaluation | None:
    return next((e for e in (evaluator.screen(s, budget) for s in ordered) if e.within(budget)), None)


def lowest_rate_within_budget(evaluator: NetworkEvaluator, budget: Budget = 0.8,
                              grid: dict[str, list[Setting]] | None = None) -> Evaluation | None:
    """The grid's (default: the thesis grid on the evaluator's interval) lowest-entropy setting within the budget
    (one figure, or top-1's and top-5's): `best_overall(budget_search(…))`, but one screened scan of all families
    together in order of entropy, so only the pick itself runs on the whole test set."""
    top_k_budgets(budget)
    grid = thesis_grid(evaluator.interval) if grid is None else grid
    return _first_within(evaluator, sorted((s for settings in grid.values() for s in settings), key=evaluator.entropy),
                         budget)


def best_overall(per_family: dict[str, Evaluation | None]) -> Evaluation | None:
    feasible = [e for e in per_family.values() if e is not None]
    return min(feasible, key=lambda e: e.entropy) if feasible else None


def best_within_budget(evaluations: Sequence[Evaluation], budget_pp: float = 0.8) -> dict[str, Evaluation | None]:
    """From a full sweep: per family, the lowest-entropy setting within the budget."""
    check_budget(budget_pp)
    out: dict[str, Evaluation | None] = {}
    for e in evaluations:
        family = e.setting.family
        current = out.get(family)
        if e.within(budget_pp) and (current is None or e.entropy < current.entropy):
            out[family] = e
        else:
            out.setdefault(family, None)
    return out


@dataclass
class NetworkStudy:
    """A trained network's budget search over the thesis grid: every evaluation and the best per family.

    Plain data (no model or session), so it can be stored as JSON and shared between processes.
    """

    network: str
    budget_pp: float
    interval: float  # X of the sweep's [−X, X]
    original_top1: float
    original_top5: float
    original_entropy: float
    images: int
    evaluations: int
    seconds: float
    points: list[Evaluation]
    per_family: dict[str, Evaluation | None]

    @property
    def best(self) -> Evaluation | None:
        return best_overall(self.per_family)

    def best_of(self, families: Sequence[str]) -> Evaluation | None:
        return best_overall({f: self.per_family.get(f) for f in families})

    def to_json(self) -> dict:
        def row(e: Evaluation) -> dict:
            return {"family": e.setting.family, "setting": e.setting.label, "entropy": e.entropy, "top1": e.top1,
                    "top5": e.top5, "loss_top1_pp": e.loss_top1_pp, "loss_top5_pp": e.loss_top5_pp,
                    "cr": e.compression_ratio, "images": e.images, "complete": e.complete}

        return {"network": self.network, "budget_pp": self.budget_pp, "interval": self.interval,
                "original_top1": self.original_top1,
                "original_top5": self.original_top5, "original_entropy": self.original_entropy,
                "images": self.images, "evaluations": self.evaluations, "seconds": self.seconds,
                "points": [row(e) for e in self.points],
                "best_per_family": {f: (row(e) if e else None) for f, e in self.per_family.items()}}

    @classmethod
    def from_json(cls, data: dict) -> NetworkStudy:
        settings = {s.label: s for family in thesis_grid(data["interval"]).values() for s in family}

        def evaluation(row: dict | None) -> Evaluation | None:
            if row is None:
                return None
            return Evaluation(settings[row["setting"]], row["entropy"], row["top1"], row["top5"],
                              row["loss_top1_pp"], row["loss_top5_pp"], row["images"], row["complete"])

        return cls(data["network"], data["budget_pp"], data["interval"], data["original_top1"], data["original_top5"],
                   data["original_entropy"], data["images"], data["evaluations"], data["seconds"],
                   [evaluation(r) for r in data["points"]],
                   {f: evaluation(r) for f, r in data["best_per_family"].items()})


def select_families(grid: dict[str, list[Setting]], families: Sequence[str] | None) -> dict[str, list[Setting]]:
    """The grid restricted to the named families (all when None); unknown names are an error."""
    if families is None:
        return grid
    unknown = [f for f in families if f not in grid]
    if unknown or not families:
        raise ValueError(f"unknown quantizer families {unknown}; the grid has: {', '.join(grid)}")
    return {f: grid[f] for f in families}


def study_network(network: str, proto: onnx.ModelProto, inputs: np.ndarray, labels: np.ndarray,
                  budget_pp: float = 0.8, families: Sequence[str] | None = None) -> NetworkStudy:
    evaluator = NetworkEvaluator(proto, inputs, labels)
    per_family = budget_search(evaluator, select_families(thesis_grid(evaluator.interval), families), budget_pp)
    return NetworkStudy(network, budget_pp, evaluator.interval, evaluator.top1, evaluator.top5,
                        evaluator.original_entropy, len(evaluator.labels), evaluator.evaluations, evaluator.seconds,
                        evaluator.evaluated(), per_family)


# --------------------------------------------------------------------------- output fidelity (no labels, no classes)

@dataclass(frozen=True)
class SnrEvaluation(_Rated):
    """A setting judged by the SNR of the model's outputs against the FP32 model's own (dB)."""

    setting: Setting
    entropy: float
    snr_db: float

    def within(self, min_snr_db: float) -> bool:
        return self.snr_db >= min_snr_db


class OutputSnrEvaluator:
    """For models that are not classifiers: each setting's output SNR against the FP32 outputs."""

    def __init__(self, proto: onnx.ModelProto, inputs: np.ndarray, reference: np.ndarray | None = None):
        """`reference`: the FP32 model's outputs on `inputs`, when the caller has them already."""
        self.proto = proto
        self.inputs = np.ascontiguousarray(inputs)
        self.reference = (run_onnx(session(proto), self.inputs) if reference is None else reference).astype(np.float64)
        self._weights = flat_weights(proto)
        self.interval = covering_interval(self._weights)
        self.evaluations = 0
        self._cache: dict[str, SnrEvaluation] = {}

    def entropy(self, setting: Setting) -> float:
        return entropy_bits(setting.make().quantize(self._weights))

    def evaluated(self) -> list[SnrEvaluation]:
        return list(self._cache.values())

    def evaluate(self, setting: Setting) -> SnrEvaluation:
        if setting.label not in self._cache:
            quantized = quantize_model(self.proto, setting.make())
            out = run_onnx(session(quantized.proto), self.inputs).astype(np.float64)
            if not np.all(np.isfinite(out)):  # the setting broke the model: no fidelity at all
                snr = -math.inf
            else:
                noise = float(np.mean((out - self.reference) ** 2))
                snr = math.inf if noise == 0 else 10 * math.log10(float(np.mean(self.reference ** 2)) / noise)
            self._cache[setting.label] = SnrEvaluation(setting, quantized.entropy, snr)
            self.evaluations += 1
        return self._cache[setting.label]
