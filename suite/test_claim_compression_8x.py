"""Claim `compression-8x` — seed 004 abstract, §3.7.3, Table 3.10 (baselines/paper/thesis-table3.10.json).

"Quantizing weights without retraining gives on average ≈ 8× compression (CR = 32/H) over 8 image
classifiers, with at most 0.8 pp loss of top-1 and top-5 accuracy."

The thesis's quantity is the mean of CR = 32/H over its models, each at its lowest-entropy setting
within the budget; per model it reports CR from 2.58 (MobileNet) to 17.5 (CaffeNet). So the claim's
verdict is the mean (≥ 8 over the models in the run); per model the test requires a setting within
the budget and a CR inside the range the thesis itself observed (≥ 2.58) — not the "CR ≥ 4" an earlier
version asked, which is in no table of the thesis. On the trained Fashion-MNIST fixtures (10,000 test
images, onnxruntime) the budget search over the thesis grid finds the lowest-entropy setting within
0.8 pp (one screened scan of all families in order of entropy; `deadzone-optimal` runs the per-family
search). On 10 classes the top-5 loss is vacuous (the true class is almost always among the top 5), so
top-1 gates alone; the row says so.

The grid is not the thesis's on [−1, 1]: its interval is widened to the power of two X that holds every
weight (LeNet-5's weights reach 1.22, GoogLeNet's with folded BatchNorm 2.10), because the thesis's
Eqs. 2.21–2.26 do not clip and clipping those few weights costs GoogLeNet 71 pp. The level count 2^i
is the thesis's, the step Δ = 2X/2^i is not: a setting "i = 6 on [−2, 2]" has the step the thesis
calls i = 5. Each row records both the level count and the step.

32/H assumes one ideal coder with one distribution for all weights; the container's coder (per-tensor
adaptive models with context, greenbench.coding.context) must do at least as well: real CR (fp32
weight bytes / coded weight bytes, stream header included) ≥ 32/H, and the container must decode to
exactly the quantize-dequantize model. Both figures are recorded.
"""

from __future__ import annotations

import numpy as np
import pytest

from greenbench.coding.container import decode_container, encode_container
from greenbench.coding.weights import quantize_model
from greenbench.harness.claims import Metric
from greenbench.nn.onnx_eval import run_onnx
from suite.tiers import DEFAULT_TIER_NETWORKS

pytestmark = [pytest.mark.claim("compression-8x"), pytest.mark.slow]

BUDGET_PP = 0.8
THESIS_LOWEST_CR = 2.58  # Table 3.10: MobileNet, μ-law i = 13
TOP5_NOTE = "top-5 loss vacuous on 10 classes: top-1 gates"


def _grid_point(setting) -> dict:
    """The setting's level count and step, and the thesis's i for the same step on its [−1, 1]."""
    q = setting.make()
    levels, step = getattr(q, "levels", None), getattr(q, "step", None)
    if not levels or not step:
        return {}
    return {"levels": levels, "step Δ": step, "thesis i for this Δ": float(np.log2(2.0 / step))}


def _accuracy_spread_pp(evaluation, n):
    # binomial SE of a top-1 accuracy on n images, in pp: the noise a loss figure carries
    return 100 * float(np.sqrt(evaluation.top1 * (1 - evaluation.top1) / n))


@pytest.mark.networks()
def test_model_quantized_within_budget_in_the_theses_cr_range(network, trained_networks, claim):
    best, evaluator = trained_networks.lowest_rate(network)
    claimed = f"a setting within {BUDGET_PP} pp top-1 loss, CR = 32/H in the thesis's range (2.58–17.5)"
    tolerance = f"CR ≥ {THESIS_LOWEST_CR}"
    if best is None:
        claim.unmet(f"no setting of the thesis grid stays within {BUDGET_PP} pp", claimed=claimed,
                    tolerance=tolerance, measured={"evaluations": evaluator.evaluations},
                    inputs=trained_networks.inputs(network))
    n = best.images
    claim.verdict(best.compression_ratio >= THESIS_LOWEST_CR, claimed=claimed, tolerance=tolerance,
                  measured={"setting": best.setting.label, **_grid_point(best.setting), "H bits": best.entropy,
                            "CR": best.compression_ratio, "top-1 loss pp": best.loss_top1_pp, "top-1": best.top1,
                            "top-5": TOP5_NOTE, "evaluations": evaluator.evaluations},
                  metrics={"entropy_bits": Metric(best.entropy, 0.0, "lower", "bits/weight"),
                           "loss_top1_pp": Metric(best.loss_top1_pp, _accuracy_spread_pp(best, n), "lower", "pp")},
                  inputs=trained_networks.inputs(network))


@pytest.mark.parametrize("tier", [pytest.param("default"), pytest.param("nightly", marks=pytest.mark.nightly)])
def test_mean_cr_over_models_at_least_8(tier, trained_networks, claim):
    networks = [n for n in trained_networks.paths if tier == "nightly" or n in DEFAULT_TIER_NETWORKS]
    if not networks:
        pytest.skip("no trained checkpoints")
    found = {n: trained_networks.lowest_rate(n)[0] for n in networks}
    claimed, tolerance = "mean CR ≈ 8 at ≤ 0.8 pp (thesis: 8 ImageNet models)", "mean CR ≥ 8"
    unmet = [n for n, best in found.items() if best is None]
    if unmet:
        claim.unmet(f"no setting within the budget for {unmet}", claimed=claimed, tolerance=tolerance)
    crs = {n: best.compression_ratio for n, best in found.items()}
    mean = float(np.mean(list(crs.values())))
    claim.verdict(mean >= 8.0, claimed=claimed, tolerance=tolerance,
                  measured={"mean CR": mean, **{f"CR {n}": v for n, v in crs.items()}, "top-5": TOP5_NOTE},
                  metrics={"mean_cr": Metric(mean, 0.0, "higher")},
                  inputs={n: trained_networks.inputs(n)["checkpoint_sha256"] for n in networks})


@pytest.mark.networks()
def test_real_cr_at_least_entropy_cr(network, trained_networks, claim):
    best, _ = trained_networks.lowest_rate(network)
    proto = trained_networks.onnx(network)
    container = encode_container(proto, best.setting.make())
    restored = decode_container(container.data)
    x, _ = trained_networks.test_set(network)
    exact = np.array_equal(run_onnx(restored, x[:2000]), run_onnx(quantize_model(proto, best.setting.make()).proto,
                                                                   x[:2000]))
    ratio = container.real_cr / best.compression_ratio
    claim.verdict(ratio >= 1.0 and exact, claimed="the coded container is at least as small as 32/H says; "
                                                  "decodes exactly",
                  tolerance="real CR ≥ 32/H",
                  measured={"real CR": container.real_cr, "32/H": best.compression_ratio, "real / (32/H)": ratio,
                            "container bytes": len(container.data), "outputs identical": exact},
                  metrics={"real_cr": Metric(container.real_cr, 0.0, "higher")},
                  inputs=trained_networks.inputs(network))
