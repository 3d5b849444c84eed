"""Seed 000's FP16 benchmark (§3.5): inference over a test set in FP32 and in AMP FP16.

Each run is one pass over the test images at batch 32 inside its own measurement window; FP16 is
`torch.autocast(device, dtype=float16)` with the inputs cast to half, as the paper did. Runs are
interleaved (FP32, FP16, then FP16, FP32, …) so slow drift — temperature, clocks — hits both alike,
and a warm-up pass of each precision comes first. The images are staged on the device before the
series, so the windows hold the inference alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .energy import MIN_WINDOW_S, EnergyMeter, Measurement, idle_power, measure

PRECISIONS = ("fp32", "fp16")


def device_batches(inputs: torch.Tensor, batch_size: int, device: str) -> list[torch.Tensor]:
    """The inputs in batches, staged on the device before any window opens."""
    return [b.to(device) for b in torch.split(inputs, batch_size)]


def inference_pass(model: nn.Module, batches: list[torch.Tensor], precision: str) -> torch.Tensor:
    """Predicted classes for every batch, in FP32 or under AMP FP16."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
    device_type = batches[0].device.type
    outputs = []
    with torch.no_grad():
        for batch in batches:
            if precision == "fp16":
                with torch.autocast(device_type=device_type, dtype=torch.float16):
                    outputs.append(model(batch.half()).argmax(1))
            else:
                outputs.append(model(batch).argmax(1))
    return torch.cat(outputs)


@dataclass
class NetworkBenchmark:
    network: str
    device: str
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {p: [] for p in PRECISIONS})
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    idle_power_w: float | None = None

    def energy(self, precision: str, net_of_idle: bool = False) -> np.ndarray:
        """Joules per pass over the test set."""
        idle = self.idle_power_w or 0.0
        return np.array([(m.net_of_idle_j(idle) if net_of_idle else m.energy_j) / m.repeats
                         for m in self.runs[precision]])

    def time(self, precision: str) -> np.ndarray:
        return np.array([m.duration_per_repeat_s for m in self.runs[precision]])

    def sources(self) -> set[str]:
        return {m.source for runs in self.runs.values() for m in runs}

    def correct(self, precision: str) -> np.ndarray:
        assert self.labels is not None
        return self.predictions[precision] == self.labels

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "device": self.device, "idle_power_w": self.idle_power_w,
                "runs": {p: [m.to_json() for m in ms] for p, ms in self.runs.items()},
                "accuracy": {p: float(self.correct(p).mean()) for p in self.predictions} if self.labels is not None
                else {}}


def benchmark_network(network: str, model: nn.Module, inputs: torch.Tensor, labels: np.ndarray | None,
                      meter: EnergyMeter, device: str, runs: int = 10, batch_size: int = 32,
                      min_window_s: float = MIN_WINDOW_S, idle_seconds: float = 2.0,
                      progress: Callable[[str], None] | None = None) -> NetworkBenchmark:
    """Interleaved FP32/FP16 runs of inference over `inputs`, each in its own measurement window."""
    model = model.eval().to(device)
    batches = device_batches(inputs, batch_size, device)
    result = NetworkBenchmark(network, device, labels=labels)
    for precision in PRECISIONS:  # warm-up: kernels chosen, caches filled, clocks up
        result.predictions[precision] = inference_pass(model, batches, precision).cpu().numpy()
    if idle_seconds > 0:
        result.idle_power_w = idle_power(meter, idle_seconds)
    for run in range(runs):
        order = PRECISIONS if run % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            m = measure(meter, lambda p=precision: inference_pass(model, batches, p), min_window_s)
            result.runs[precision].append(m)
            if progress:
                progress(f"{network} run {run + 1}/{runs} {precision}: {m.energy_per_repeat_j:.2f} J, "
                         f"{m.duration_per_repeat_s:.3f} s ({m.source})")
    return result
