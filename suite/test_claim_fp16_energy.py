"""Claim `fp16-energy` — seed 000 §4, Tables 2–3 (baselines/paper/seed000-table2.json). GPU tier.

"AMP FP16 inference uses less energy than FP32 for all five networks; the larger the network, the
larger the reduction (ResNet-34: energy −32.96 %, time −34.55 %; LeNet-5: energy −6.16 %)."

On a measured source only (NVML's energy counter; estimates never gate): 10,000 test images at
batch 32, 10 interleaved runs per precision after warm-up, each run in its own window (≥ 1 s).
- FP16 uses less energy than FP32 for every network, and the 95 % bootstrap interval of the
  relative reduction excludes 0 for AlexNet, GoogLeNet, VGG-11 and ResNet-34; time likewise;
- ResNet-34's energy reduction is at least 20 %;
- measurement quality: the coefficient of variation of ResNet-34's 10 FP32 energies ≤ 3 % (the
  paper's is 12 %); NVML and CodeCarbon's GPU energy for the same window are recorded side by side;
- the paper's own pooled test (Shapiro-Wilk, Mann-Whitney FP32 vs FP16) is recomputed.
Energy does not depend on the weights' values: networks without a checkpoint run with seeded weights.
"""

from __future__ import annotations

import os

import pytest

from greenbench.baselines import load_paper_table
from greenbench.claims import Metric
from greenbench.data import to_network_input
from greenbench.energy import MEASURED, CodeCarbonMeter, measure
from greenbench.fp16 import benchmark_network, device_batches, inference_pass
from greenbench.models import CIFAR_NETWORKS, build_network
from greenbench.statistics import coefficient_of_variation, paper_analysis, relative_reduction

pytestmark = [pytest.mark.claim("fp16-energy"), pytest.mark.gpu]

RUNS = int(os.environ.get("GREENBENCH_FP16_RUNS", "10"))
NEEDS_INTERVAL = ("alexnet", "googlenet", "vgg11", "resnet34")


@pytest.fixture(scope="module")
def benchmarks(gpu_meter, cuda_device, benchmark_data, trained_networks, save_artifact):
    results = {}
    x = to_network_input(benchmark_data.test_images)
    for network in CIFAR_NETWORKS:
        model = (trained_networks.checkpoint(network)[0] if network in trained_networks.paths
                 else build_network(network, seed=0))
        results[network] = benchmark_network(network, model, x, benchmark_data.test_labels, gpu_meter, cuda_device,
                                             runs=RUNS)
    save_artifact("fp16_benchmark.json", {"data": benchmark_data.name,
                                          "networks": {n: b.to_json() for n, b in results.items()}})
    return results


def _inputs(benchmark_data) -> dict:
    return {"data": benchmark_data.name, "data_md5": benchmark_data.checksum, "runs": RUNS}


def _measured_or_skip(bench):
    if bench.sources() != {MEASURED}:
        pytest.skip(f"energy source is {sorted(bench.sources())}: estimates do not gate energy claims")


QUANTITIES = {"energy": ("energy_wh", "J", "saves energy"), "time": ("time_s", "s", "is faster")}


@pytest.mark.parametrize("quantity", list(QUANTITIES))
@pytest.mark.parametrize("network", CIFAR_NETWORKS)
def test_fp16_reduces_energy_and_time(network, quantity, benchmarks, benchmark_data, baseline_root, claim):
    bench = benchmarks[network]
    if quantity == "energy":
        _measured_or_skip(bench)
    runs = {p: bench.energy(p) if quantity == "energy" else bench.time(p) for p in ("fp32", "fp16")}
    r = relative_reduction(runs["fp32"], runs["fp16"])
    paper_key, unit, verb = QUANTITIES[quantity]
    paper = load_paper_table("seed000-table2", baseline_root)["data"]["networks"][network]
    paper_reduction = 1 - paper["fp16"][paper_key] / paper["fp32"][paper_key]
    measured = {f"FP32 {unit}": float(runs["fp32"].mean()), f"FP16 {unit}": float(runs["fp16"].mean()),
                "reduction %": 100 * r.estimate, "CI %": f"[{100 * r.low:.1f}, {100 * r.high:.1f}]"}
    if quantity == "energy":
        net = {p: bench.energy(p, net_of_idle=True).mean() for p in ("fp32", "fp16")}
        measured.update({"net of idle %": 100 * (1 - net["fp16"] / net["fp32"]), "idle W": bench.idle_power_w})
    holds = r.estimate > 0 and (r.excludes_zero or network not in NEEDS_INTERVAL)
    claim.verdict(holds, claimed=f"FP16 {verb} (paper {100 * paper_reduction:.2f} %)",
                  tolerance="reduction > 0; 95 % CI excludes 0" + (" (required)" if network in NEEDS_INTERVAL else ""),
                  measured=measured, metrics={f"{quantity}_ratio": Metric(1 - r.estimate, (r.high - r.low) / 3.92,
                                                                          "lower")},
                  inputs=_inputs(benchmark_data))


def test_resnet34_energy_reduction_at_least_20_percent(benchmarks, benchmark_data, claim):
    bench = benchmarks["resnet34"]
    _measured_or_skip(bench)
    r = relative_reduction(bench.energy("fp32"), bench.energy("fp16"))
    claim.verdict(r.estimate >= 0.20, claimed="ResNet-34 energy −32.96 % (paper)", tolerance="reduction ≥ 20 %",
                  measured={"reduction %": 100 * r.estimate, "CI %": f"[{100 * r.low:.1f}, {100 * r.high:.1f}]"},
                  metrics={"reduction": Metric(r.estimate, (r.high - r.low) / 3.92, "higher")},
                  inputs=_inputs(benchmark_data))


def test_measurement_quality(benchmarks, gpu_meter, cuda_device, benchmark_data, claim):
    bench = benchmarks["resnet34"]
    _measured_or_skip(bench)
    cv = coefficient_of_variation(bench.energy("fp32"))
    # the same window seen by NVML's counter and by CodeCarbon (whose GPU figure is NVML power sampling)
    model = build_network("resnet34", seed=0).to(cuda_device)
    batches = device_batches(to_network_input(benchmark_data.test_images), 32, cuda_device)
    codecarbon = CodeCarbonMeter(measure_power_secs=0.5)
    codecarbon.begin()
    nvml = measure(gpu_meter, lambda: inference_pass(model, batches, "fp32"), min_window_s=5.0)
    cc = codecarbon.end()
    agreement = cc.components.get("gpu", float("nan")) / nvml.energy_j - 1
    claim.verdict(cv <= 0.03, claimed="CV of 10 FP32 energies (paper: 12 %)", tolerance="CV ≤ 3 %",
                  measured={"CV %": 100 * cv, "NVML J": nvml.energy_j, "CodeCarbon GPU J": cc.components.get("gpu"),
                            "CodeCarbon − NVML %": 100 * agreement},
                  metrics={"cv": Metric(cv, 0.0, "lower")},
                  inputs=_inputs(benchmark_data))


def test_paper_pooled_analysis(benchmarks, claim):
    fp32 = {n: b.energy("fp32") for n, b in benchmarks.items()}
    fp16 = {n: b.energy("fp16") for n, b in benchmarks.items()}
    result = paper_analysis(fp32, fp16)
    claim.verdict(result.mann_whitney.p_value < 0.06, claimed="pooled Mann-Whitney on energy p < 0.06 (paper)",
                  tolerance="p < 0.06",
                  measured={"Shapiro FP32 p": result.shapiro_fp32.p_value,
                            "Shapiro FP16 p": result.shapiro_fp16.p_value,
                            "Mann-Whitney p": result.mann_whitney.p_value})
