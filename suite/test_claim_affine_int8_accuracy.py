"""Claim `affine-int8-accuracy` — seed 003 (lecture slides on model compression, "Quantização").

The slides' practical claim for Q(r) = Int(r/S) − Z: quantizing a trained network's weights to 8-bit
integers with a calibrated range keeps its accuracy (post-training quantization, no retraining).

The slides' quantity is the network's accuracy before and after 8-bit quantization. Tested: every
weight and bias tensor of the ONNX export (BatchNorm folded) replaced by its 8-bit affine
reconstruction, calibrated per tensor or per output channel (axis 0 of a weight; biases per tensor),
on the min/max range or the 0.01 %–99.99 % percentile range; top-1 accuracy of the quantized network
through onnxruntime on the 10,000 test images, against the FP32 network's. Tolerance: a top-1 loss of
at most 0.8 pp, the budget the thesis's "without accuracy loss" is held to throughout the suite
(`compression-8x`); McNemar's p on the paired predictions is recorded beside it. Networks: LeNet-5 and
the distilled student (default tier), GoogLeNet (nightly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenbench.analysis.statistics import mcnemar
from greenbench.coding.weights import weights, with_weights
from greenbench.harness.claims import Metric
from greenbench.nn.onnx_eval import export_onnx, run_onnx
from greenbench.nn.training import load_checkpoint
from greenbench.quantization.affine import Affine
from suite.tiers import network_params

pytestmark = pytest.mark.claim("affine-int8-accuracy")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BITS, BUDGET_PP, PERCENTILE = 8, 0.8, 99.99
CALIBRATIONS = {"minmax": ("minmax", 100.0), "percentile": ("percentile", PERCENTILE)}


def _affine(values: np.ndarray, calibration: str) -> np.ndarray:
    method, pct = CALIBRATIONS[calibration]
    flat = values.reshape(-1)
    if np.all(flat == flat[0]):  # a constant tensor (an all-zero bias): nothing to calibrate
        return values
    return Affine.calibrate(flat, BITS, method=method, percentile=pct).reconstruct(flat).reshape(values.shape)


def quantized_int8(proto, granularity: str, calibration: str):
    """The model with every weight and bias replaced by its 8-bit affine reconstruction."""
    replaced = {}
    for name, w in weights(proto).items():
        if granularity == "channel" and w.ndim >= 2:
            replaced[name] = np.stack([_affine(channel, calibration) for channel in w])
        else:
            replaced[name] = _affine(w, calibration)
    return with_weights(proto, replaced)


_FP32: dict[str, np.ndarray] = {}  # model -> the FP32 model's right/wrong per image, computed once per module


def _check(claim, proto, x, y, granularity, calibration, inputs, model_key):
    if model_key not in _FP32:
        _FP32[model_key] = run_onnx(proto, x).argmax(1) == y
    fp32 = _FP32[model_key]
    int8 = run_onnx(quantized_int8(proto, granularity, calibration), x).argmax(1) == y
    loss_pp = 100 * (fp32.mean() - int8.mean())
    se_pp = 100 * float(np.sqrt(max(np.sum(fp32 != int8), 1))) / len(y)
    claim.verdict(loss_pp <= BUDGET_PP, claimed="8-bit affine quantization keeps the accuracy",
                  tolerance=f"top-1 loss ≤ {BUDGET_PP} pp",
                  measured={"top-1 FP32": float(fp32.mean()), "top-1 int8": float(int8.mean()), "loss pp": loss_pp,
                            "McNemar p": mcnemar(fp32, int8).p_value, "calibration": calibration,
                            "granularity": granularity},
                  metrics={"loss_pp": Metric(loss_pp, se_pp, "lower", "pp")}, inputs=inputs)


@pytest.mark.parametrize("calibration", list(CALIBRATIONS))
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
@pytest.mark.parametrize("network", network_params(("lenet5", "googlenet")))
def test_int8_keeps_the_accuracy(network, granularity, calibration, trained_networks, claim):
    x, y = trained_networks.test_set(network)
    _check(claim, trained_networks.onnx(network), x, y, granularity, calibration, trained_networks.inputs(network),
           network)


@pytest.mark.parametrize("calibration", list(CALIBRATIONS))
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_int8_keeps_the_distilled_students_accuracy(granularity, calibration, trained_networks, claim):
    path = FIXTURES / "student-distilled-fashion-mnist.safetensors"
    if not path.is_file():
        pytest.skip(f"no {path.name}: see suite/test_claim_distillation.py")
    student, meta = load_checkpoint(path)
    x, y = trained_networks.test_set("lenet5")
    _check(claim, export_onnx(student, (3, 32, 32)), x, y, granularity, calibration,
           {"data_md5": trained_networks.dataset.checksum, "checkpoint_sha256": meta["weights_sha256"]},
           "student-distilled")
