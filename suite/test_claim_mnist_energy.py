"""Claim `mnist-energy` — seed 001, Results (baselines/paper/seed001-results.json).

"On MNIST, LeNet-5 and AlexNet reach similar accuracy (mean of 10 trainings 0.990556 vs 0.988175)
while AlexNet's training uses about 74.1 % more energy" — pyJoules over 10 trainings of 20 epochs at
batch 128: 3,956,288 µJ (LeNet-5) and 6,889,739 µJ (AlexNet) per training.

Measured on the paper's quantity, training energy: each network (the suite's 1×28×28 variants) is
trained several times (batch 128, seed 000's optimiser, MNIST where present, else Fashion-MNIST),
each training in its own window on the most direct measured source present — NVML on a GPU (GPU
tier), RAPL package + DRAM on a CPU where readable (nightly tier). An estimate never gates: without
a measured source the case is reported as not run, with the reason. Passes when the mean accuracies
lie within 1 pp and AlexNet's training takes more energy; the ratio is recorded beside the paper's
1.741, with the inference energy of each network's best model (as the paper reports) and the
parameter counts beside the paper's (609,354 and 1,938,922).
"""

from __future__ import annotations

import numpy as np
import pytest

from greenbench.analysis.statistics import relative_reduction
from greenbench.energy.gputier import gpu_tier_settings
from greenbench.energy.meter import MeterUnavailable, measure
from greenbench.energy.rapl import RaplMeter, rapl_readable
from greenbench.harness.baselines import load_paper_table
from greenbench.harness.claims import Metric
from greenbench.nn.data import SPLIT_SEED, load_first_available, to_network_input
from greenbench.nn.fp16 import device_batches, inference_pass
from greenbench.nn.models import build_network, count_parameters
from greenbench.nn.training import train_network

pytestmark = pytest.mark.claim("mnist-energy")

NETWORKS = ("lenet5", "alexnet")
PAPER_PARAMETERS = {"lenet5": 609_354, "alexnet": 1_938_922}
# Seed 001 shows its Keras layers only in figures; the suite trains seed 000's LeNet-5 and AlexNet
# (SPEC §3) on 1×28×28 input, whose counts differ (AlexNet's 4096-wide dense layers above all).
PARAMETER_NOTE = ("the suite's variants are seed 000's LeNet-5 and AlexNet on 1×28×28 input; seed 001's Keras "
                  "layers appear only in its figures")
CPU_TRAIN_LIMIT = 12_000  # a CPU training of AlexNet on all 48,000 images takes hours


@pytest.fixture(scope="module")
def mnist_like(fashion_mnist):
    return load_first_available("mnist", "fashion-mnist")


def _source(request, where: str):
    """(meter, device, settings) for the case: NVML on the GPU, or RAPL on the CPU, or a skip why not."""
    if where == "gpu":
        return (request.getfixturevalue("gpu_meter"), request.getfixturevalue("cuda_device"),
                request.getfixturevalue("gpu_tier"))
    try:
        meter = RaplMeter()
    except MeterUnavailable as exc:
        pytest.skip(f"no measured source on this CPU ({exc}); an estimate never gates an energy claim")
    settings = gpu_tier_settings()
    meter.min_window_s = 1.0
    return meter, "cpu", settings


@pytest.mark.parametrize("where", [pytest.param("gpu", marks=pytest.mark.gpu),
                                   pytest.param("cpu", marks=pytest.mark.nightly if rapl_readable() else ())])
def test_alexnet_training_uses_more_energy_for_similar_accuracy(where, request, mnist_like, baseline_root, claim):
    meter, device, settings = _source(request, where)
    data = settings.sized(mnist_like)
    paper = load_paper_table("seed001-results", baseline_root)["data"]
    limit = settings.mnist_train_limit or (CPU_TRAIN_LIMIT if device == "cpu" else None)
    energy, accuracy, best = {n: [] for n in NETWORKS}, {n: [] for n in NETWORKS}, {}
    for training in range(settings.mnist_trainings):
        for n in NETWORKS if training % 2 == 0 else NETWORKS[::-1]:
            with meter.window() as got:
                result = train_network(f"{n}-mnist", data, settings.mnist_epochs, batch_size=128,
                                       seed=SPLIT_SEED + training, device=device, progress=False, train_limit=limit)
            energy[n].append(got[0].energy_j)
            accuracy[n].append(result.test_accuracy)
            if n not in best or result.test_accuracy > best[n].test_accuracy:
                best[n] = result
    if reason := settings.unmeasured_reason({got[0].source}):
        pytest.skip(reason)
    # inference of each network's most accurate model, as the paper reports it
    batches = device_batches(to_network_input(data.test_images, (1, 28, 28)), 32, device)
    inference = {n: [] for n in NETWORKS}
    for run in range(settings.fp16_runs):
        for n in NETWORKS if run % 2 == 0 else NETWORKS[::-1]:
            model = best[n].model.to(device)
            m = measure(meter, lambda model=model: inference_pass(model, batches, "fp32"), meter.min_window_s)
            inference[n].append(m.energy_per_repeat_j)
    training_ratio = relative_reduction(energy["lenet5"], energy["alexnet"])  # 1 − AlexNet/LeNet-5
    extra = -training_ratio.estimate
    gap_pp = 100 * abs(np.mean(accuracy["alexnet"]) - np.mean(accuracy["lenet5"]))
    stated = paper["stated"]["alexnet_extra_energy_pct"]
    params = {n: count_parameters(build_network(f"{n}-mnist")) for n in NETWORKS}
    measured = {"data": mnist_like.name, "source": f"{got[0].meter} ({got[0].source})",
                "trainings": settings.mnist_trainings, "epochs": settings.mnist_epochs,
                "LeNet-5 training J": float(np.mean(energy["lenet5"])),
                "AlexNet training J": float(np.mean(energy["alexnet"])),
                "AlexNet extra training energy %": 100 * extra, "paper %": stated,
                "acc LeNet-5": float(np.mean(accuracy["lenet5"])), "acc AlexNet": float(np.mean(accuracy["alexnet"])),
                "LeNet-5 inference J": float(np.mean(inference["lenet5"])),
                "AlexNet inference J": float(np.mean(inference["alexnet"])),
                **{f"params {n} (paper {PAPER_PARAMETERS[n]:,})": params[n] for n in NETWORKS},
                **{f"params {n} vs paper %": 100 * (params[n] / PAPER_PARAMETERS[n] - 1) for n in NETWORKS}}
    claim.verdict(gap_pp <= 1.0 and extra > 0, claimed=f"similar accuracy, AlexNet training +{stated} % energy",
                  tolerance="mean accuracy gap ≤ 1 pp and AlexNet training energy > LeNet-5's",
                  measured=measured,
                  metrics={"alexnet_over_lenet": Metric(1 + extra, (training_ratio.high - training_ratio.low) / 3.92,
                                                        None)},
                  note="; ".join(filter(None, (settings.describe(), PARAMETER_NOTE))),
                  inputs={"data": mnist_like.name, "data_md5": mnist_like.checksum, "seed": SPLIT_SEED,
                          "epochs": settings.mnist_epochs, "trainings": settings.mnist_trainings,
                          "train_limit": limit, "test_images": len(data.test_images), "batch_size": 128,
                          "device": device})
