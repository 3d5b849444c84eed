"""Claim `onnx-weight-share` — seed 004 §3.1, Table 3.1.

"Weights and biases make up 99.246 % (ShuffleNet) to 99.999 % (CaffeNet) of each ONNX file" — 13
ImageNet-era models of 4.7 to 548 MB, the reason the thesis compresses the weights and nothing else.

The thesis's quantity is the share of the ONNX file's bytes held by the weights and biases. The
tested quantity is the same share of the ONNX export of every network the suite has (BatchNorm folded
into the convolutions, as the exporter writes it; users' models with `--model`) and of both
distillation students: bytes of the float initializers the layers read as weights or biases over
the serialized file's bytes. Tolerance: ≥ 99.2 %, the smallest share of Table 3.1. A small network
carries relatively more graph (the 24 K-parameter students: names, shapes and nodes are ~2 % of
97 KB), which the thesis's models, all over 4 MB, did not test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from greenbench.coding.weights import weights
from greenbench.harness.claims import Metric
from greenbench.nn.onnx_eval import export_onnx
from greenbench.nn.training import load_checkpoint

pytestmark = pytest.mark.claim("onnx-weight-share")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SMALLEST_SHARE = 0.99246  # Table 3.1: ShuffleNet


def _verdict(claim, proto, inputs):
    tensors = weights(proto)
    file_bytes = len(proto.SerializeToString())
    weight_bytes = sum(t.nbytes for t in tensors.values())
    share = weight_bytes / file_bytes
    claim.verdict(share >= SMALLEST_SHARE, claimed="weights and biases ≥ 99.2 % of the ONNX file (Table 3.1)",
                  tolerance=f"share ≥ {100 * SMALLEST_SHARE:.3f} % (Table 3.1's smallest)",
                  measured={"share %": 100 * share, "file bytes": file_bytes, "weight bytes": weight_bytes,
                            "tensors": len(tensors)},
                  metrics={"share": Metric(share, 0.0, "higher")}, inputs=inputs)


@pytest.mark.networks()
def test_weights_are_nearly_all_of_the_onnx_file(network, trained_networks, claim):
    _verdict(claim, trained_networks.onnx(network), trained_networks.inputs(network))


@pytest.mark.parametrize("student", ["distilled", "labels"])
def test_weights_are_nearly_all_of_a_small_students_onnx_file(student, claim):
    path = FIXTURES / f"student-{student}-fashion-mnist.safetensors"
    if not path.is_file():
        pytest.skip(f"no {path.name}: see suite/test_claim_distillation.py")
    model, meta = load_checkpoint(path)
    _verdict(claim, export_onnx(model, (3, 32, 32)), {"checkpoint_sha256": meta["weights_sha256"]})
