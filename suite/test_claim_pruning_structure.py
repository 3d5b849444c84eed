"""Claim `pruning-structure` — seed 003, slides "Aceleração universal vs específica".

"Removing whole structures (filters, neurons) leaves a regular, smaller network that runs faster on
any hardware; removing individual weights (a [0, 1] mask) leaves an irregular one that needs special
hardware to gain speed. Structured pruning usually costs more accuracy than unstructured pruning."

The slides' quantities are the accuracy cost and the speed of structured against unstructured pruning
at the same sparsity; the tested quantities are the same, measured on the trained fixtures, without
retraining: structured pruning removes the fraction f ∈ {5 … 70 %}
of every prunable layer's filters or neurons with the smallest L1 (and, separately, L2) norm and
rebuilds the network physically smaller; unstructured magnitude pruning masks the same fraction of
all conv and dense weights as the structured network lost (equal sparsity, 18–91 %). Accuracy on
the 10,000 test images (onnxruntime); PyTorch's inference time of 128 images (the pass's CPU time, which
other processes on the cores cannot add to) as a ratio to the unpruned network's, timed just before it
(median of 3 such pairs, one thread).
- accuracy: at equal sparsity the structured loss is the larger one on average, and never smaller by
  more than 2 binomial SEs at any level;
- speed: at the largest sparsity the structured network takes ≤ 80 % of the original's time, while the
  masked networks take ≥ 85 % — their median over all sparsities: a mask leaves the same dense
  computation at every sparsity, so each level is one more measurement of it, and one timing pair's
  outlier on a loaded machine (a masked 0.81 once in CI, between 0.98 and 1.03 at every other level)
  cannot decide the verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from greenbench.harness.claims import Metric
from greenbench.nn.data import to_network_input
from greenbench.nn.models import network_spec
from greenbench.nn.onnx_eval import export_onnx, run_onnx
from greenbench.nn.pruning import inference_time_ratio, magnitude_prune, structured_prune, weight_sparsity
from suite.tiers import network_params

pytestmark = [pytest.mark.claim("pruning-structure"), pytest.mark.slow]

FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
TIMING_IMAGES = 128  # one batch: GoogLeNet takes ~0.75 s a pass, single-threaded


@pytest.fixture(scope="module")
def sweeps(trained_networks, save_artifact):
    cache = {}

    def sweep(network):
        if network not in cache:
            model, _ = trained_networks.checkpoint(network)
            x = to_network_input(trained_networks.dataset.test_images)
            y = trained_networks.dataset.test_labels
            timing = x[:TIMING_IMAGES]

            inputs, shape = x.numpy(), network_spec(network).input_shape

            def accuracy(m):  # onnxruntime: a fifth of PyTorch's CPU time for the 25 networks of a sweep
                return float((run_onnx(export_onnx(m, shape), inputs).argmax(1) == y).mean())

            rows = []
            for fraction in FRACTIONS:
                row = {"fraction": fraction}
                for norm in ("l1", "l2"):
                    pruned = structured_prune(model, fraction, norm)
                    row[f"sparsity_{norm}"] = weight_sparsity(model, pruned)
                    row[f"structured_{norm}"] = accuracy(pruned)
                    if norm == "l1":
                        row["structured_time_ratio"] = inference_time_ratio(pruned, model, timing)
                masked = magnitude_prune(model, row["sparsity_l1"])
                row["unstructured"] = accuracy(masked)
                row["masked_time_ratio"] = inference_time_ratio(masked, model, timing)
                rows.append(row)
            cache[network] = {"original": accuracy(model), "rows": rows, "images": len(y),
                              "threads": torch.get_num_threads()}
            save_artifact(f"pruning_{network}.json", cache[network])
        return cache[network]

    return sweep


def _table(result) -> str:
    return "; ".join(f"{100 * r['sparsity_l1']:.0f}%: {100 * r['structured_l1']:.1f}/{100 * r['unstructured']:.1f}"
                     for r in result["rows"])


@pytest.mark.parametrize("network", network_params(("lenet5", "googlenet")))
def test_structured_pruning_loses_more_accuracy_at_equal_sparsity(network, sweeps, trained_networks, claim):
    result = sweeps(network)
    n, base = result["images"], result["original"]
    gaps = np.array([r["unstructured"] - r["structured_l1"] for r in result["rows"]])  # > 0: structured worse
    se = np.array([np.sqrt(max(r["unstructured"] * (1 - r["unstructured"]), 1e-4) / n) for r in result["rows"]])
    l2_gaps = np.array([r["unstructured"] - r["structured_l2"] for r in result["rows"]])
    holds = gaps.mean() > 0 and bool(np.all(gaps > -2 * se))
    claim.verdict(holds, claimed="structured pruning costs more accuracy than unstructured (slides: usually)",
                  tolerance="mean gap > 0 and no level where structured is better by > 2 SE",
                  measured={"original acc": base, "acc structured/unstructured (L1) by sparsity": _table(result),
                            "mean gap pp (L1)": 100 * gaps.mean(), "mean gap pp (L2)": 100 * l2_gaps.mean(),
                            "sparsity range %": f"{100 * result['rows'][0]['sparsity_l1']:.0f}–"
                                                f"{100 * result['rows'][-1]['sparsity_l1']:.0f}"},
                  metrics={"mean_gap_pp": Metric(100 * gaps.mean(), 100 * float(se.mean()) / np.sqrt(len(se)), None,
                                                 "pp")},
                  inputs=trained_networks.inputs(network))


@pytest.mark.parametrize("network", network_params(("lenet5", "googlenet")))
def test_structured_network_runs_faster_the_masked_one_does_not(network, sweeps, trained_networks, claim):
    result = sweeps(network)
    last = result["rows"][-1]
    masked = float(np.median([r["masked_time_ratio"] for r in result["rows"]]))
    holds = last["structured_time_ratio"] <= 0.8 and masked >= 0.85
    claim.verdict(holds, claimed="a physically smaller network runs faster; a masked one does not (slides)",
                  tolerance="at the largest sparsity structured time ≤ 0.8× the original's; masked ≥ 0.85× "
                            "(median over all sparsities)",
                  measured={"sparsity %": 100 * last["sparsity_l1"],
                            "structured time ratio by sparsity": ", ".join(
                                f"{100 * r['sparsity_l1']:.0f}%: {r['structured_time_ratio']:.2f}"
                                for r in result["rows"]),
                            "masked time ratio by sparsity": ", ".join(
                                f"{100 * r['sparsity_l1']:.0f}%: {r['masked_time_ratio']:.2f}" for r in result["rows"]),
                            "masked median": masked, "threads": result["threads"]},
                  metrics={"structured_time_ratio": Metric(last["structured_time_ratio"], 0.1, "lower"),
                           "masked_time_ratio": Metric(masked, 0.1, None)},
                  inputs=trained_networks.inputs(network))
