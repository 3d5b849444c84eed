"""The GPU tier's first lines: what the environment is, and the time each stage gets from what it measured.

`python -m greenbench.harness.gpuprobe [--limits FILE] [--epochs N]` (tools/gpu-run runs it first)
prints the versions the tier depends on, the NVML mode, the counter's update period, a power-read
probe, one AMP training step and one paper-loop pass per network, then the stage budget table; with
`--limits` it writes each stage's limit, and stage 2a's networks, as shell assignments. A failure
shows its cause in the log's first lines, not half-way through a stage.

The budget of a stage is its work counted from these measurements (never a guess fixed in a script):
- fp16-energy, per network: idle + Σ over series of (1 prediction pass + warm-up windows + runs) ×
  window, a window lasting max(minimum window, one pass) plus up to two counter periods (the wait for
  the start's tick and the idle tail to the end's); one paper-loop FP32 pass bounds every series'
  pass (the kernel loop and FP16 are faster);
- training: epochs × steps × the measured AMP step of ResNet-34 (the slowest of the three) per network,
  plus each epoch's validation and the final test pass at the network's measured pass rate;
- fp16-accuracy: two passes per network; mnist-energy: its trainings' steps × the measured MNIST step,
  plus its inference windows.
Each limit is 1.5 × the estimate plus a fixed start-up (pytest, torch and CUDA initialised, NVML's period
measured: STARTUP_S), so a stage that runs as estimated never times out and one that hangs is stopped.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_S = 40.0
LIMIT_FACTOR = 1.5
TRAINING_NETWORKS = ("resnet34", "vgg11", "alexnet")  # stage 2a's, by value
DISTRIBUTIONS = ("torch", "numpy", "numba", "scipy", "nvidia-ml-py", "typing-extensions", "jsonschema",
                 "onnxruntime", "onnxruntime-gpu", "codecarbon", "zeus")


def versions() -> dict[str, str | None]:
    """Installed versions of what the GPU tier depends on (None: not installed), with CUDA's and cuDNN's."""
    import torch

    from greenbench.core.provenance import library_versions

    found = library_versions()  # the ones a provenance records: DISTRIBUTIONS are among them
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {**{name: found.get(name) for name in DISTRIBUTIONS}, "cuda (torch)": torch.version.cuda,
            "cudnn": str(cudnn) if cudnn else None}


@dataclass
class Probe:
    update_period_s: float
    min_window_s: float
    nvml: dict[str, object]
    pass_images: int = 0
    pass_s: dict[str, float] = field(default_factory=dict)  # one paper-loop FP32 pass per network
    step_s: dict[str, float] = field(default_factory=dict)  # one training step: resnet34 (AMP), mnist


def _timed(run, device: str, repeats: int) -> float:
    import torch

    run()  # kernels chosen, memory allocated
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def _training_step(network: str, batch: int, amp: bool, device: str, shape: tuple[int, int, int]):
    import torch

    from greenbench.nn.models import build_network

    model = build_network(network, seed=0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=amp)
    x, y = torch.randn(batch, *shape, device=device), torch.randint(0, 10, (batch,), device=device)

    def step():
        optimizer.zero_grad()
        with torch.autocast(device.split(":")[0], dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


def run_probe(tier, test_images) -> Probe:
    """Measure what the budget needs on this device (tier: GpuTierSettings; test_images: the tier's set)."""
    from greenbench.energy.gputier import open_gpu_meter
    from greenbench.nn.data import to_network_input
    from greenbench.nn.fp16 import paper_loader, paper_pass
    from greenbench.nn.models import CIFAR_NETWORKS, build_network

    meter = open_gpu_meter(tier, tier.device)
    try:
        power = meter.power_w()
        nvml = {"mode": meter.mode, "power reading": meter.power_reading, "power now W": power,
                "matched by": meter.device_match, "faults": dict(meter.faults)}
    finally:
        meter.close()
    images = test_images[tier.subset(len(test_images))]
    probe = Probe(meter.update_period_s, meter.min_window_s, nvml, pass_images=len(images))
    loader = paper_loader(to_network_input(images))
    for network in CIFAR_NETWORKS:
        model = build_network(network, seed=0).eval().to(tier.device)
        probe.pass_s[network] = _timed(lambda m=model: paper_pass(m, loader, "fp32-default", tier.device),
                                       tier.device, 1)
    amp = tier.device.startswith("cuda")
    probe.step_s["resnet34"] = _timed(_training_step("resnet34", 32, amp, tier.device, (3, 32, 32)), tier.device, 5)
    probe.step_s["alexnet-mnist"] = _timed(_training_step("alexnet-mnist", 128, False, tier.device, (1, 28, 28)),
                                           tier.device, 5)
    return probe


@dataclass(frozen=True)
class StageBudget:
    stage: str
    work: str
    estimate_s: float

    @property
    def limit_s(self) -> int:
        return math.ceil(LIMIT_FACTOR * self.estimate_s + STARTUP_S)


def stage_budget(tier, probe: Probe, epochs: int, train_images: int, test_images: int,
                 train_limit: int | None = None) -> list[StageBudget]:
    """Each stage's estimated seconds from the probe's measurements (the module's docstring gives the sums)."""
    from greenbench.nn.fp16 import PAPER, SERIES

    tail = 2 * probe.update_period_s
    windows = {s: 1 + tier.warmup_windows + (tier.fp16_runs if s.startswith(PAPER) else tier.kernel_runs)
               for s in SERIES}
    per_network = {n: tier.idle_seconds + sum(windows.values()) * (max(probe.min_window_s, p) + tail)
                   for n, p in probe.pass_s.items()}
    fp16_windows = sum(windows.values()) * len(per_network)
    images = min(train_images, train_limit) if train_limit else train_images
    steps = epochs * math.ceil(images / 32)
    evaluated = epochs * min(images, train_images // 5) + test_images  # validation is a fifth of the training set
    evaluation = sum(evaluated / probe.pass_images * probe.pass_s[n] for n in TRAINING_NETWORKS)
    mnist_steps = tier.mnist_trainings * 2 * tier.mnist_epochs * math.ceil(
        (min(train_images, tier.mnist_train_limit) if tier.mnist_train_limit else train_images) / 128)
    return [
        StageBudget("1-fp16-energy", f"{len(per_network)} networks × {fp16_windows // len(per_network)} windows "
                    f"(min {probe.min_window_s:.2f} s + ≤ {tail:.2f} s of ticks)", sum(per_network.values())),
        StageBudget("2a-train", f"{len(TRAINING_NETWORKS)} networks × {steps:,} steps × "
                    f"{1000 * probe.step_s['resnet34']:.1f} ms + {evaluated:,} images evaluated",
                    len(TRAINING_NETWORKS) * steps * probe.step_s["resnet34"] + evaluation),
        StageBudget("2b-fp16-accuracy", f"{len(probe.pass_s)} networks × 2 passes", 2 * sum(probe.pass_s.values())),
        StageBudget("3-mnist-energy", f"{mnist_steps:,} steps × {1000 * probe.step_s['alexnet-mnist']:.1f} ms + "
                    f"{2 * tier.fp16_runs} windows", mnist_steps * probe.step_s["alexnet-mnist"]
                    + 2 * tier.fp16_runs * (probe.min_window_s + tail)),
    ]


def budget_table(budget: list[StageBudget]) -> str:
    from tabulate import tabulate

    rows = [[b.stage, b.work, f"{b.estimate_s:.0f}", b.limit_s] for b in budget]
    rows.append(["total", "", f"{sum(b.estimate_s for b in budget):.0f}", sum(b.limit_s for b in budget)])
    return tabulate(rows, headers=["stage", "work", "estimate s", "limit s"], tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenbench.harness.gpuprobe", description=__doc__.split("\n")[0])
    parser.add_argument("--limits", type=Path, help="write each stage's limit here as shell assignments")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of stage 2a")
    parser.add_argument("--train-limit", type=int, default=None, help="training images of stage 2a")
    args = parser.parse_args(argv)
    import torch

    from greenbench.energy.gputier import gpu_tier_settings
    from greenbench.nn.data import load_first_available

    tier = gpu_tier_settings()
    if not tier.rehearsal and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --rehearse on a CPU")
    print(f"device {torch.cuda.get_device_name(tier.cuda_index) if not tier.rehearsal else 'cpu'} "
          f"({tier.device}); rehearsal {tier.rehearsal}")
    for name, version in versions().items():
        print(f"  {name:18} {version or 'not installed'}")
    data = load_first_available("cifar-10", "fashion-mnist")
    probe = run_probe(tier, data.test_images)
    print(f"NVML: {probe.nvml}; counter update period {1000 * probe.update_period_s:.1f} ms, "
          f"minimum window {probe.min_window_s:.2f} s")
    print("one paper-loop FP32 pass: " + ", ".join(f"{n} {s:.3f} s" for n, s in probe.pass_s.items()))
    print("one training step: " + ", ".join(f"{n} {1000 * s:.1f} ms" for n, s in probe.step_s.items()))
    budget = stage_budget(tier, probe, args.epochs, len(data.train_images), len(data.test_images), args.train_limit)
    print(budget_table(budget))
    if args.limits:
        args.limits.write_text("".join(f"limit_{b.stage.split('-')[0]}={b.limit_s}\n" for b in budget)
                               + f"training_networks='{' '.join(TRAINING_NETWORKS)}'\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
