"""Claim `fp16-accuracy` — seed 000 §4, Table 3 (baselines/paper/seed000-table3.json).

"FP16 changes accuracy, precision, recall and F1 by no statistically significant amount
(Mann-Whitney, all p > 0.7); largest shift ResNet-34 −0.73 pp."

Stronger than the paper's pooled test: per network, the FP32 and AMP FP16 predictions on the same
10,000 test images are paired, so McNemar's exact test applies (p > 0.05 required) and the accuracy
change must stay within ±0.8 pp (the thesis's budget; the paper's largest shift is 0.73 pp). The TOST
equivalence interval at that margin is recorded too. GPU tier: every trained network under CUDA
autocast. CPU tier: the committed fixtures with AMP's float16 numerics emulated in float32
(`fp16.half_rounded`: parameters, inputs and every module's output rounded to float16, float32
accumulation) — CPU autocast's float16 kernels are themselves emulated and ~10× slower (GoogLeNet: ~20
min instead of ~1.5), and gave the same predictions on the images compared.
"""

from __future__ import annotations

import pytest
import torch

from greenbench.analysis.metrics import classification_report
from greenbench.analysis.statistics import accuracy_equivalence, mcnemar
from greenbench.harness.claims import Metric
from greenbench.nn.data import to_network_input
from greenbench.nn.fp16 import ROUNDED_FP16, device_batches, inference_pass
from greenbench.nn.models import CIFAR_NETWORKS, network_spec
from greenbench.nn.training import channels_last
from suite.tiers import network_params

pytestmark = pytest.mark.claim("fp16-accuracy")

MARGIN_PP = 0.8


def _check(network, device, trained_networks, claim, gpu_tier=None, half_precision="fp16"):
    rehearsal = gpu_tier is not None and gpu_tier.rehearsal
    model, weights = trained_networks.model_for_gpu_tier(network, rehearsal)
    part = gpu_tier.subset(len(trained_networks.dataset.test_images)) if gpu_tier else slice(None)
    x = to_network_input(trained_networks.dataset.test_images[part], network_spec(network).input_shape)
    y = trained_networks.dataset.test_labels[part]
    half = gpu_tier.half_dtype if gpu_tier else torch.float16
    batches = device_batches(x, 256, device)
    model = model.to(device)
    with channels_last(model):  # half the CPU time of the default layout
        pred = {"fp32": inference_pass(model, batches, "fp32").cpu().numpy(),
                "fp16": inference_pass(model, batches, half_precision, half).cpu().numpy()}
    correct = {p: pred[p] == y for p in pred}
    test = mcnemar(correct["fp32"], correct["fp16"])
    tost = accuracy_equivalence(correct["fp32"], correct["fp16"], MARGIN_PP / 100)
    reports = {p: classification_report(y, pred[p]) for p in pred}
    delta_pp = 100 * (reports["fp16"].accuracy - reports["fp32"].accuracy)
    claim.verdict(test.p_value > 0.05 and abs(delta_pp) <= MARGIN_PP,
                  claimed="no significant accuracy change under AMP FP16", tolerance="McNemar p > 0.05, |Δ| ≤ 0.8 pp",
                  measured={"acc FP32": reports["fp32"].accuracy, "acc FP16": reports["fp16"].accuracy,
                            "Δ pp": delta_pp, "McNemar p": test.p_value,
                            "discordant": test.only_first_correct + test.only_second_correct,
                            "F1 Δ pp": 100 * (reports["fp16"].f1 - reports["fp32"].f1),
                            "TOST equivalent": tost.equivalent},
                  metrics={"delta_pp": Metric(delta_pp, 100 * (tost.high - tost.low) / 3.3, None, "pp")},
                  note=gpu_tier.describe() if gpu_tier else "",
                  inputs={"data_md5": trained_networks.dataset.checksum, **weights, "device": device,
                          "images": len(y), "half precision": half_precision})


@pytest.mark.parametrize("network", network_params(("lenet5", "googlenet")))
def test_fp16_accuracy_unchanged_on_cpu(network, trained_networks, claim):
    _check(network, "cpu", trained_networks, claim, half_precision=ROUNDED_FP16)


@pytest.mark.gpu
@pytest.mark.parametrize("network", CIFAR_NETWORKS)
def test_fp16_accuracy_unchanged_on_gpu(network, cuda_device, gpu_tier, trained_networks, claim):
    _check(network, cuda_device, trained_networks, claim, gpu_tier)
