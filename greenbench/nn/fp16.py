"""Seed 000's FP16 benchmark (§3.5): inference over a test set in FP32 and in AMP FP16.

Each run is one pass over the test images at batch 32 inside its own measurement window; FP16 is
`torch.autocast(device, dtype=float16)` with the inputs cast to half, as the paper did. Each
precision is first warmed up until its time and power stop drifting (kernels chosen, caches filled,
clocks up); then runs are interleaved (FP32, FP16, then FP16, FP32, …) so slow drift —
temperature, clocks — hits both alike. The images are staged on the device before the series, so
the windows hold the inference alone. An optional second meter (CodeCarbon, seed 000's instrument)
spans the whole series, for a like-for-like column beside the paper's Table 2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from greenbench.energy.meter import MIN_WINDOW_S, EnergyMeter, Measurement, idle_power, measure, warm_up

PRECISIONS = ("fp32", "fp16")
ROUNDED_FP16 = "fp16-rounded"  # AMP's numerics emulated in float32 (see `half_rounded`): for CPUs


def device_batches(inputs: torch.Tensor, batch_size: int, device: str) -> list[torch.Tensor]:
    """The inputs in batches, staged on the device before any window opens."""
    if len(inputs) == 0:
        raise ValueError("no inputs to batch")
    return [b.to(device) for b in torch.split(inputs, batch_size)]


def half_rounded(model: nn.Module, half_dtype: torch.dtype = torch.float16) -> nn.Module:
    """A copy of the model that computes in float32 on `half_dtype` numbers: its parameters, its inputs and every
    module's output are rounded to `half_dtype`. That is AMP's arithmetic — half operands (whose products float32
    holds exactly), float32 accumulation, half results — at float32 speed, where float16 kernels are emulated
    (CPUs: ~10× slower than float32)."""
    rounded = copy.deepcopy(model).float()
    with torch.no_grad():
        for tensor in [*rounded.parameters(), *rounded.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(half_dtype))

    def round_output(module, inputs, output):
        return output.to(half_dtype).float() if torch.is_tensor(output) and output.is_floating_point() else output

    for module in rounded.modules():
        module.register_forward_hook(round_output)
    return rounded


def inference_pass(model: nn.Module, batches: list[torch.Tensor], precision: str,
                   half_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """Predicted classes for every batch: FP32, AMP with `half_dtype` ("fp16": float16 as the paper; the CPU
    rehearsal passes bfloat16), or AMP's numerics emulated in float32 (ROUNDED_FP16, see `half_rounded`)."""
    if precision not in (*PRECISIONS, ROUNDED_FP16):
        raise ValueError(f"unknown precision {precision!r}; use one of {(*PRECISIONS, ROUNDED_FP16)}")
    device_type = batches[0].device.type
    if precision == ROUNDED_FP16:
        model = half_rounded(model, half_dtype)
    outputs = []
    with torch.no_grad():
        for batch in batches:
            if precision == ROUNDED_FP16:
                outputs.append(model(batch.to(half_dtype).float()).argmax(1))
            elif precision == "fp16":
                with torch.autocast(device_type=device_type, dtype=half_dtype):
                    outputs.append(model(batch.to(half_dtype)).argmax(1))
            else:
                outputs.append(model(batch).argmax(1))
    return torch.cat(outputs)


@dataclass
class NetworkBenchmark:
    network: str
    device: str
    images: int = 0
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {p: [] for p in PRECISIONS})
    warmup_passes: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    idle_power_w: float | None = None
    min_window_s: float = MIN_WINDOW_S
    series: Measurement | None = None  # the second meter over the whole series (CodeCarbon)
    series_error: str = ""  # why there is no series measurement

    def energy(self, precision: str, net_of_idle: bool = False) -> np.ndarray:
        """Joules per pass over the test set."""
        idle = self.idle_power_w or 0.0
        return np.array([(m.net_of_idle_j(idle) if net_of_idle else m.energy_j) / m.repeats
                         for m in self.runs[precision]])

    def time(self, precision: str) -> np.ndarray:
        return np.array([m.duration_per_repeat_s for m in self.runs[precision]])

    def sources(self) -> set[str]:
        return {m.source for runs in self.runs.values() for m in runs}

    def disagreements(self) -> np.ndarray:
        """Polled power's energy against the counter's, per window (empty without both)."""
        return np.array([m.disagreement for runs in self.runs.values() for m in runs if m.disagreement is not None])

    def correct(self, precision: str) -> np.ndarray:
        if self.labels is None:
            raise ValueError(f"{self.network}: benchmark ran without labels")
        return self.predictions[precision] == self.labels

    def summary(self, precision: str) -> dict[str, float]:
        """Per pass (J, s), per image (mJ) and images per joule, gross and net of idle."""
        gross, net = self.energy(precision).mean(), self.energy(precision, net_of_idle=True).mean()
        return {"J per pass": float(gross), "J per pass net": float(net),
                "s per pass": float(self.time(precision).mean()),
                "mJ per image": 1000 * float(gross) / self.images, "mJ per image net": 1000 * float(net) / self.images,
                "images per J": self.images / float(gross) if gross > 0 else float("nan"),
                "images per J net": self.images / float(net) if net > 0 else float("nan")}

    def series_per_pass_j(self) -> float | None:
        """The second meter's energy over the whole series, per pass (both precisions together)."""
        if self.series is None:
            return None
        passes = sum(m.repeats for runs in self.runs.values() for m in runs)
        return self.series.energy_j / passes

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "device": self.device, "images": self.images,
                "idle_power_w": self.idle_power_w, "min_window_s": self.min_window_s,
                "warmup_passes": self.warmup_passes,
                "runs": {p: [m.to_json() for m in ms] for p, ms in self.runs.items()},
                "summary": {p: self.summary(p) for p in PRECISIONS if self.runs[p]},
                "series": self.series.to_json() if self.series else None, "series_error": self.series_error,
                "series_per_pass_j": self.series_per_pass_j(),
                "accuracy": {p: float(self.correct(p).mean()) for p in self.predictions} if self.labels is not None
                else {}}


WARMUP_WINDOWS = 4  # of the measuring windows' length: steady within 2–3 on a GPU; 4 caps the cost


def benchmark_network(network: str, model: nn.Module, inputs: torch.Tensor, labels: np.ndarray | None,
                      meter: EnergyMeter, device: str, runs: int = 10, batch_size: int = 32,
                      min_window_s: float = MIN_WINDOW_S, idle_seconds: float = 2.0,
                      half_dtype: torch.dtype = torch.float16, series_meter: EnergyMeter | None = None,
                      progress: Callable[[str], None] | None = None) -> NetworkBenchmark:
    """Interleaved FP32/FP16 runs of inference over `inputs`, each in its own measurement window."""
    if runs < 1:
        raise ValueError(f"runs must be ≥ 1, got {runs!r}")
    model = model.eval().to(device)
    batches = device_batches(inputs, batch_size, device)
    result = NetworkBenchmark(network, device, images=len(inputs), labels=labels, min_window_s=min_window_s)

    def work(precision: str) -> Callable[[], torch.Tensor]:
        return lambda: inference_pass(model, batches, precision, half_dtype)

    if idle_seconds > 0:  # before any work: a warmed-up GPU idles above its true idle for seconds
        result.idle_power_w = idle_power(meter, idle_seconds)
    for precision in PRECISIONS:
        result.predictions[precision] = work(precision)().cpu().numpy()
        result.warmup_passes[precision] = len(warm_up(meter, work(precision), min_window_s=min_window_s,
                                                      max_passes=WARMUP_WINDOWS))
    if series_meter is not None:
        series_meter.begin()
    try:
        for run in range(runs):
            order = PRECISIONS if run % 2 == 0 else PRECISIONS[::-1]
            for precision in order:
                m = measure(meter, work(precision), min_window_s)
                result.runs[precision].append(m)
                if progress:
                    progress(f"{network} run {run + 1}/{runs} {precision}: {m.energy_per_repeat_j:.3f} J, "
                             f"{m.duration_per_repeat_s:.4f} s ({m.source})")
    finally:
        if series_meter is not None:
            result.series = series_meter.end()
    return result
