"""Claim `mnist-energy` — seed 001, Results (baselines/paper/seed001-results.json).

"On MNIST, LeNet-5 and AlexNet reach similar accuracy (inference 0.9929 vs 0.985; mean of 10
trainings 0.990556 vs 0.988175) while AlexNet's training uses about 74.1 % more energy" — pyJoules over
10 trainings of 20 epochs at batch 128; AlexNet's training also took 2.27× as long (76.65 s vs 33.83 s).

The paper's quantities are the training-energy ratio, the training-time ratio and the accuracy gap of
its two Keras models (609,354 and 1,938,922 parameters: 3.18×). The suite trains seed 000's LeNet-5 and
AlexNet on 1×28×28 input, a far larger pair (221,950 and 28,513,994 parameters: 128×; 58× the MACs), so
only a bound is comparable: a pair that differs 128× in size must cost at least the paper's 1.741× the
energy and 2.27× the time of training, at accuracies within 1 pp. The verdicts:
- energy (measured sources only, GPU tier; RAPL CPUs nightly): AlexNet/LeNet-5 training energy ≥ 1.741
  and mean accuracies within 1 pp; the time ratio is recorded beside it;
- time and accuracy (no energy source needed: the CPU, nightly, on a subset of 6,000 training images and
  3 epochs): AlexNet/LeNet-5 training time ≥ 2.27 and test accuracies within 1 pp.
The parameter counts and their ratios are recorded beside the paper's. An estimate never gates: without
a measured source the energy case is reported as not run, with the reason.
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
PAPER_ENERGY_RATIO = 1.741
PAPER_TIME_RATIO = 76.65 / 33.83  # 2.27
ACCURACY_GAP_PP = 1.0
CPU_TIME_LIMIT, CPU_TIME_EPOCHS = 6_000, 3


def _size_figures() -> dict:
    params = {n: count_parameters(build_network(f"{n}-mnist")) for n in NETWORKS}
    return {**{f"params {n} (paper {PAPER_PARAMETERS[n]:,})": params[n] for n in NETWORKS},
            "params ratio": params["alexnet"] / params["lenet5"],
            "paper params ratio": PAPER_PARAMETERS["alexnet"] / PAPER_PARAMETERS["lenet5"]}


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
    energy, accuracy, seconds = ({n: [] for n in NETWORKS} for _ in range(3))
    best = {}
    for training in range(settings.mnist_trainings):
        for n in NETWORKS if training % 2 == 0 else NETWORKS[::-1]:
            with meter.window() as got:
                result = train_network(f"{n}-mnist", data, settings.mnist_epochs, batch_size=128,
                                       seed=SPLIT_SEED + training, device=device, progress=False, train_limit=limit)
            energy[n].append(got[0].energy_j)
            accuracy[n].append(result.test_accuracy)
            seconds[n].append(result.seconds)
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
    time_ratio = float(np.mean(seconds["alexnet"]) / np.mean(seconds["lenet5"]))
    measured = {"data": mnist_like.name, "source": f"{got[0].meter} ({got[0].source})",
                "trainings": settings.mnist_trainings, "epochs": settings.mnist_epochs,
                "LeNet-5 training J": float(np.mean(energy["lenet5"])),
                "AlexNet training J": float(np.mean(energy["alexnet"])),
                "AlexNet extra training energy %": 100 * extra, "paper %": stated,
                "acc LeNet-5": float(np.mean(accuracy["lenet5"])), "acc AlexNet": float(np.mean(accuracy["alexnet"])),
                "LeNet-5 inference J": float(np.mean(inference["lenet5"])),
                "AlexNet inference J": float(np.mean(inference["alexnet"])),
                "training time ratio": time_ratio, "paper time ratio": PAPER_TIME_RATIO, **_size_figures()}
    claim.verdict(gap_pp <= ACCURACY_GAP_PP and 1 + extra >= PAPER_ENERGY_RATIO,
                  claimed=f"similar accuracy, AlexNet training at least +{stated} % energy (a 128× larger pair)",
                  tolerance=f"mean accuracy gap ≤ {ACCURACY_GAP_PP} pp and AlexNet/LeNet-5 training energy ≥ "
                            f"{PAPER_ENERGY_RATIO}",
                  measured=measured,
                  metrics={"alexnet_over_lenet": Metric(1 + extra, (training_ratio.high - training_ratio.low) / 3.92,
                                                        None)},
                  note="; ".join(filter(None, (settings.describe(), PARAMETER_NOTE))),
                  inputs={"data": mnist_like.name, "data_md5": mnist_like.checksum, "seed": SPLIT_SEED,
                          "epochs": settings.mnist_epochs, "trainings": settings.mnist_trainings,
                          "train_limit": limit, "test_images": len(data.test_images), "batch_size": 128,
                          "device": device})


@pytest.mark.nightly
def test_alexnet_training_takes_longer_for_similar_accuracy_on_cpu(mnist_like, claim):
    seconds, accuracy = {}, {}
    for n in NETWORKS:  # one thread per xdist worker, as every CPU figure of the suite
        result = train_network(f"{n}-mnist", mnist_like, CPU_TIME_EPOCHS, batch_size=128, seed=SPLIT_SEED,
                               progress=False, train_limit=CPU_TIME_LIMIT)
        seconds[n], accuracy[n] = result.seconds, result.test_accuracy
    ratio = seconds["alexnet"] / seconds["lenet5"]
    gap_pp = 100 * abs(accuracy["alexnet"] - accuracy["lenet5"])
    claim.verdict(ratio >= PAPER_TIME_RATIO and gap_pp <= ACCURACY_GAP_PP,
                  claimed=f"similar accuracy, AlexNet training at least {PAPER_TIME_RATIO:.2f}× as long",
                  tolerance=f"time ratio ≥ {PAPER_TIME_RATIO:.2f} and accuracy gap ≤ {ACCURACY_GAP_PP} pp",
                  measured={"data": mnist_like.name, "LeNet-5 s": seconds["lenet5"], "AlexNet s": seconds["alexnet"],
                            "time ratio": ratio, "acc LeNet-5": accuracy["lenet5"], "acc AlexNet": accuracy["alexnet"],
                            "gap pp": gap_pp, "paper acc": "0.9929 vs 0.985", **_size_figures()},
                  metrics={"time_ratio": Metric(ratio, 0.1 * ratio, None)},
                  note=f"{CPU_TIME_LIMIT:,} training images, {CPU_TIME_EPOCHS} epochs (the paper: 60,000 and 20)",
                  inputs={"data": mnist_like.name, "data_md5": mnist_like.checksum, "seed": SPLIT_SEED,
                          "epochs": CPU_TIME_EPOCHS, "train_limit": CPU_TIME_LIMIT})
