"""The claims of the source papers (SPEC §1) and the records their tests leave.

A claim test computes its figure, states the claimed figure and tolerance, and hands both to a
`ClaimRecord`; the pytest glue (conftest.py) stores the records, compares their metrics with the
stored baseline and prints the claims table from them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

REHEARSAL_VERDICT = "rehearsal (not a verdict)"  # a GPU row measured in the CPU rehearsal
# the statuses of a claims-table row (and of the claims JSON)
REPRODUCED, NOT_REPRODUCED, KNOWN, REGRESSED, ERROR, NOT_RUN = (
    "reproduced", "not reproduced", "known", "regressed", "error", "not run")
# a control (the same measurement where the claim should not hold) is evidence, not a case of the claim
CONTROL_PASSED, CONTROL_FAILED, CONTROL_INCONCLUSIVE = (
    "control passed", "control failed: the claim's test is weak", "control inconclusive")


class ClaimNotReproduced(AssertionError):
    """`claim.verdict`: the claim does not hold (or a precondition it needs is not met). A claim stored as not
    reproduced on a profile expects exactly this exception (a strict expected failure)."""


class BaselineRegression(AssertionError):
    """`claim.verdict`: a metric moved in its worse direction by more than the gate allows (like
    pytest-benchmark's PerformanceRegression). It fails the test whether or not the claim is a known failure."""


class ClaimWithoutVerdict(AssertionError):
    """A test that took the `claim` fixture ended without calling `claim.verdict`."""


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    measures_energy: bool = False  # its baselines belong to one machine model, not one architecture


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("table1-counts", "000 Table 1",
          "parameter counts and FLOPs (thop MACs) of the five CIFAR-10 networks"),
    Claim("fp16-energy", "000 §4, Tables 2–3",
          "AMP FP16 inference uses less energy than FP32 for all five networks; ResNet-34 −32.96 %",
          measures_energy=True),
    Claim("fp16-accuracy", "000 §4, Table 3",
          "FP16 changes accuracy by no statistically significant amount (largest shift −0.73 pp)"),
    Claim("laplacian-weights", "004 §3.4, Tables 3.2–3.3",
          "trained weights are best modelled by a Laplacian (SSE rank 1st or 2nd for every model)"),
    Claim("deadzone-optimal", "004 §2.7, §3.7.2, §4; Sullivan 1994",
          "the deadzone family is (near) rate-distortion optimal for Laplacian sources and networks"),
    Claim("compression-8x", "004 abstract, §3.7.3, Table 3.10",
          "quantizing weights without retraining gives ≈ 8× (CR = 32/H) for ≤ 0.8 pp top-1 loss"),
    Claim("onnx-weight-share", "004 §3.1, Table 3.1",
          "weights and biases are ≥ 99.2 % of each ONNX model file (13 models, 4.7–548 MB)"),
    Claim("affine-int8-accuracy", "003",
          "8-bit affine quantization of a trained network keeps its accuracy"),
    Claim("mnist-energy", "001 Results",
          "LeNet-5 and AlexNet reach similar MNIST accuracy while AlexNet's training uses ≈ 74.1 % more energy",
          measures_energy=True),
    Claim("carbon-accounting", "002 §3.1",
          "emissions = energy (kWh) × regional carbon intensity (kg CO2/kWh)"),
    Claim("affine-quantization", "003",
          "Q(r) = Int(r/S) − Z with S = (β − α)/(2^b − 1); calibration chooses [α, β]"),
    Claim("pruning-structure", "003, Aceleração universal vs específica",
          "removing whole filters/neurons gives a smaller network that runs faster anywhere but costs more "
          "accuracy than masking individual weights, which needs special hardware to gain speed"),
    Claim("distillation", "003, Destilação de Conhecimento",
          "a small student trained on a teacher's temperature-softened outputs learns more than on the labels "
          "alone (38 M → 159 K parameters without accuracy loss)"),
    Claim("combined-compression", "003, Juntando técnicas",
          "combining techniques (pruning + quantization, distillation + quantization) compresses further than "
          "quantization alone"),
)}


CLAIM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def register_claim(claim_id: str, source: str, statement: str, measures_energy: bool = False) -> Claim:
    """Declare a claim so that tests can use `@pytest.mark.claim(claim_id)` and get verdicts, baselines and
    rows of the claims table for it, exactly as the papers' claims do.

    Call it at import time of the suite (its conftest.py). Registering the same claim again is a no-op;
    another claim under a taken id is an error.
    """
    claim = Claim(claim_id, source, statement, bool(measures_energy))
    if not isinstance(claim_id, str) or not CLAIM_ID.match(claim_id):
        raise ValueError(f"claim id {claim_id!r}: use 1–64 lower-case letters, digits, '.', '_' or '-'")
    if not (isinstance(source, str) and source.strip() and isinstance(statement, str) and statement.strip()):
        raise ValueError(f"claim {claim_id!r} needs a non-empty source and statement")
    if claim_id in CLAIMS and CLAIMS[claim_id] != claim:
        raise ValueError(f"claim id {claim_id!r} is taken by {CLAIMS[claim_id]}")
    CLAIMS[claim_id] = claim
    return claim


@dataclass(frozen=True)
class Metric:
    """A measured figure with its sampling spread (SD or SE) and which direction is better."""

    value: float
    spread: float = 0.0
    better: str | None = None  # "higher", "lower" or None (a change either way matters)
    unit: str = ""

    def __post_init__(self) -> None:
        from greenbench.core.validation import check_scalar

        if self.better not in (None, "higher", "lower"):
            raise ValueError(f"better must be 'higher', 'lower' or None, got {self.better!r}")
        if not isinstance(self.unit, str):
            raise ValueError(f"a metric's unit is a str, got {self.unit!r}")
        # numpy scalars become Python floats here, so a stored baseline holds plain JSON numbers
        object.__setattr__(self, "value", check_scalar(self.value, "a metric's value", float))
        object.__setattr__(self, "spread", check_scalar(self.spread, "a metric's spread", float, low=0))


def _plain(name: str, value: Any) -> Any:
    """A measured figure as JSON holds it (numpy scalars as Python numbers); anything else is refused by name."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):  # a numpy scalar (numpy not imported here)
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"measured {name!r} is a {type(value).__name__}: a measured figure is a number, text, a bool "
                     "or None (summarise an array, e.g. its mean, or join it into text)")


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.4g}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass
class ClaimRecord:
    """What one claim test measured, what was claimed, and whether it held."""

    claim_id: str
    case: str
    claimed: str
    tolerance: str
    measured: dict[str, Any]
    holds: bool
    metrics: dict[str, Metric] = field(default_factory=dict)
    baseline: str = ""  # outcome of the baseline comparison, filled by the glue
    note: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)  # what the figure was measured on: seed, data md5, …
    rehearsal: bool = False  # measured in the GPU tier's CPU rehearsal: figures, not a verdict

    def measured_text(self) -> str:
        return ", ".join(f"{k} {format_value(v)}" for k, v in self.measured.items())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured"] = {k: _plain(k, v) for k, v in self.measured.items()}
        data["metrics"] = {k: asdict(v) for k, v in self.metrics.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClaimRecord:
        metrics = {k: Metric(**v) for k, v in data.get("metrics", {}).items()}
        return cls(**{**data, "metrics": metrics})


# the markers the pytest plugin registers
MARKERS = (
    "gpu: needs a CUDA GPU; run the GPU tier with `pytest -m gpu` (GREENBENCH_GPU_REHEARSAL=1 rehearses it on a CPU)",
    "slow: takes more than about 30 s on 2 cores; part of the default run unless deselected",
    "nightly: long runs (full sweeps, all networks) for nightly CI: `pytest -m nightly`",
    "claim(id): a test of a published claim; its outcome is a row of the claims table",
    "property: a hypothesis property test",
)
