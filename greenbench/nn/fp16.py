"""Seed 000's FP16 benchmark (§3.5): inference over a test set in three precisions and two loops.

Precisions. PyTorch runs FP32 convolutions as TF32 on Ampere and newer by default
(`torch.backends.cudnn.allow_tf32`), so the paper's "FP32" on its RTX 3050 (Ampere) was TF32
convolutions. `fp32` turns TF32 off for convolutions and matmuls (true FP32), `fp32-default` keeps
PyTorch's defaults (the paper's condition) and `fp16` is `torch.autocast(dtype=float16)` with half
inputs, as the paper did. Every series records the math mode it ran in (`math_mode_record`).

Loops. The kernel loop stages the images on the device once, so a window holds inference alone. The
paper loop is the paper's published code (`Codigos/*_fp16_modificado.py`): batches of 32 from a
DataLoader with min(4, threads) workers, copied to the device per batch, `.half()` inputs for FP16,
autocast entered per batch (which re-casts the weights every batch: the paper's condition), the
predictions copied back per batch, cudnn deterministic and not benchmarking. Its per-batch NVML query
is the paper's instrument, not its workload, and is left out. The paper loop is the one compared with
Table 2; the kernel loop says what the arithmetic alone gains.

Each series is first warmed up until its time and power stop drifting; then runs are interleaved
(forward, then reversed order, …) so slow drift — temperature, clocks — hits every series alike. An
optional second meter (CodeCarbon, seed 000's instrument) spans the whole series, and an optional
peer meter (Zeus) measures every window beside NVML's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from greenbench.energy.meter import MIN_WINDOW_S, EnergyMeter, Measurement, idle_power, measure, warm_up

PRECISIONS = ("fp32", "fp32-default", "fp16")
ROUNDED_FP16 = "fp16-rounded"  # AMP's numerics emulated in float32 (see `half_rounded`): for CPUs
PAPER = "paper:"  # the prefix of the paper loop's series
# the paper loop's series, and the row of Table 2 each sits beside (the paper's FP32 was PyTorch's default math)
PAPER_TABLE_ROWS = {PAPER + "fp32-default": "fp32", PAPER + "fp16": "fp16"}
SERIES = (*PRECISIONS, *PAPER_TABLE_ROWS)
# (cudnn.allow_tf32, cuda.matmul.allow_tf32) per precision; fp16's float32 ops run at PyTorch's defaults
TF32_FLAGS = {"fp32": (False, False), "fp32-default": (True, False), "fp16": (True, False),
              ROUNDED_FP16: (False, False)}


@contextlib.contextmanager
def math_mode(precision: str, deterministic: bool | None = None) -> Iterator[None]:
    """The TF32 flags of `precision` (and cudnn's determinism when given, benchmark off with it), restored after."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    cudnn.allow_tf32, matmul.allow_tf32 = TF32_FLAGS[precision]
    if deterministic is not None:
        cudnn.deterministic, cudnn.benchmark = deterministic, False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


def math_mode_record(series: str) -> dict[str, Any]:
    """What a series ran in, read back from torch's flags inside its math mode."""
    paper, precision = series.startswith(PAPER), series.removeprefix(PAPER)
    with math_mode(precision, deterministic=True if paper else None):
        cudnn = torch.backends.cudnn
        return {"loop": "paper" if paper else "kernel", "precision": precision,
                "cudnn.allow_tf32": cudnn.allow_tf32, "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn.deterministic": cudnn.deterministic, "cudnn.benchmark": cudnn.benchmark,
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "autocast": "float16" if precision == "fp16" else None}


def device_batches(inputs: torch.Tensor, batch_size: int, device: str) -> list[torch.Tensor]:
    """The inputs in batches, staged on the device before any window opens."""
    if len(inputs) == 0:
        raise ValueError("no inputs to batch")
    return [b.to(device) for b in torch.split(inputs, batch_size)]


def paper_loader(inputs: torch.Tensor, batch_size: int = 32, workers: int | None = None):
    """The paper's test loader: batches of 32 in order, min(4, torch threads) workers."""
    from torch.utils.data import DataLoader, TensorDataset

    if len(inputs) == 0:
        raise ValueError("no inputs to batch")
    workers = min(4, torch.get_num_threads()) if workers is None else workers
    return DataLoader(TensorDataset(inputs), batch_size=batch_size, shuffle=False, num_workers=workers)


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


def _forward(model: nn.Module, batch: torch.Tensor, precision: str, half_dtype: torch.dtype) -> torch.Tensor:
    if precision == ROUNDED_FP16:
        return model(batch.to(half_dtype).float())
    if precision == "fp16":
        with torch.autocast(device_type=batch.device.type, dtype=half_dtype):  # entered per batch, as the paper
            return model(batch.to(half_dtype))
    return model(batch)


def _checked(precision: str) -> str:
    if precision not in (*PRECISIONS, ROUNDED_FP16):
        raise ValueError(f"unknown precision {precision!r}; use one of {(*PRECISIONS, ROUNDED_FP16)}")
    return precision


def inference_pass(model: nn.Module, batches: list[torch.Tensor], precision: str,
                   half_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """Predicted classes for every device-resident batch (the kernel loop): `fp32` (TF32 off), `fp32-default`
    (PyTorch's math), AMP with `half_dtype` ("fp16": float16 as the paper; the CPU rehearsal passes bfloat16),
    or AMP's numerics emulated in float32 (ROUNDED_FP16, see `half_rounded`)."""
    if _checked(precision) == ROUNDED_FP16:
        model = half_rounded(model, half_dtype)
    with torch.no_grad(), math_mode(precision):
        return torch.cat([_forward(model, batch, precision, half_dtype).argmax(1) for batch in batches])


def paper_pass(model: nn.Module, loader, precision: str, device: str,
               half_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """The paper's inference loop over `loader` (see the module's docstring); predictions on the CPU."""
    if _checked(precision) == ROUNDED_FP16:
        raise ValueError("the paper loop runs real precisions only")
    predictions = []
    with torch.no_grad(), math_mode(precision, deterministic=True):
        for (images,) in loader:
            predictions.append(_forward(model, images.to(device), precision, half_dtype).argmax(1).cpu())
    return torch.cat(predictions)


@dataclass
class NetworkBenchmark:
    network: str
    device: str
    images: int = 0
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {s: [] for s in SERIES})
    warmup_passes: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    math_modes: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: math_mode_record(s) for s in SERIES})
    labels: np.ndarray | None = None
    idle_power_w: float | None = None
    min_window_s: float = MIN_WINDOW_S
    series: Measurement | None = None  # the second meter over the whole series (CodeCarbon)
    series_error: str = ""  # why there is no series measurement
    peer_unavailable: str = ""  # why a peer meter (Zeus) measured no window
    seconds: float = 0.0  # the whole benchmark, idle and warm-up included

    def energy(self, series: str, net_of_idle: bool = False) -> np.ndarray:
        """Joules per pass over the test set."""
        idle = self.idle_power_w or 0.0
        return np.array([(m.net_of_idle_j(idle) if net_of_idle else m.energy_j) / m.repeats
                         for m in self.runs[series]])

    def time(self, series: str) -> np.ndarray:
        return np.array([m.duration_per_repeat_s for m in self.runs[series]])

    def peer_energy(self, series: str, peer: str) -> np.ndarray:
        """A peer meter's joules per pass, window by window (NaN where it gave none)."""
        return np.array([m.peers.get(peer, {}).get("energy_j", np.nan) / m.repeats for m in self.runs[series]])

    def peer_errors(self, peer: str) -> list[str]:
        """The distinct errors a peer meter gave (empty when it measured every window)."""
        return sorted({m.peers[peer]["error"] for runs in self.runs.values() for m in runs
                       if "error" in m.peers.get(peer, {})})

    def sources(self) -> set[str]:
        return {m.source for runs in self.runs.values() for m in runs}

    def disagreements(self) -> np.ndarray:
        """Polled power's energy against the counter's, per window (empty without both)."""
        return np.array([m.disagreement for runs in self.runs.values() for m in runs if m.disagreement is not None])

    def correct(self, series: str) -> np.ndarray:
        if self.labels is None:
            raise ValueError(f"{self.network}: benchmark ran without labels")
        return self.predictions[series] == self.labels

    def summary(self, series: str) -> dict[str, float]:
        """Per pass (J, s), per image (mJ) and images per joule, gross and net of idle."""
        gross, net = self.energy(series).mean(), self.energy(series, net_of_idle=True).mean()
        return {"J per pass": float(gross), "J per pass net": float(net),
                "s per pass": float(self.time(series).mean()),
                "mJ per image": 1000 * float(gross) / self.images, "mJ per image net": 1000 * float(net) / self.images,
                "images per J": self.images / float(gross) if gross > 0 else float("nan"),
                "images per J net": self.images / float(net) if net > 0 else float("nan")}

    def series_per_pass_j(self) -> float | None:
        """The second meter's energy over the whole series, per pass (every series together)."""
        if self.series is None:
            return None
        passes = sum(m.repeats for runs in self.runs.values() for m in runs)
        return self.series.energy_j / passes

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "device": self.device, "images": self.images,
                "idle_power_w": self.idle_power_w, "min_window_s": self.min_window_s, "seconds": self.seconds,
                "warmup_passes": self.warmup_passes, "math_modes": self.math_modes,
                "series_order": list(self.runs), "paper_table_rows": PAPER_TABLE_ROWS,
                "runs": {s: [m.to_json() for m in ms] for s, ms in self.runs.items()},
                "summary": {s: self.summary(s) for s in SERIES if self.runs[s]},
                "series": self.series.to_json() if self.series else None, "series_error": self.series_error,
                "series_per_pass_j": self.series_per_pass_j(),
                "peer_unavailable": self.peer_unavailable,
                "accuracy": {s: float(self.correct(s).mean()) for s in self.predictions} if self.labels is not None
                else {}}


def benchmark_network(network: str, model: nn.Module, inputs: torch.Tensor, labels: np.ndarray | None,
                      meter: EnergyMeter, device: str, runs: int = 10, kernel_runs: int | None = None,
                      batch_size: int = 32,
                      min_window_s: float = MIN_WINDOW_S, idle_seconds: float = 2.0,
                      half_dtype: torch.dtype = torch.float16, series_meter: EnergyMeter | None = None,
                      series: tuple[str, ...] = SERIES, warmup_windows: int = 4,
                      peers: dict[str, EnergyMeter] | None = None,
                      progress: Callable[[str], None] | None = None) -> NetworkBenchmark:
    """Interleaved runs of every series over `inputs`, each run in its own measurement window (and in each peer
    meter's window beside it): `runs` of the paper loop's series, `kernel_runs` (default: `runs`) of the kernel
    loop's."""
    import time

    kernel_runs = runs if kernel_runs is None else kernel_runs
    if min(runs, kernel_runs) < 1:
        raise ValueError(f"runs must be ≥ 1, got {runs!r} and {kernel_runs!r}")
    unknown = sorted(set(series) - set(SERIES))
    if unknown or not series:
        raise ValueError(f"unknown series {unknown}; choose among {SERIES}")
    started = time.perf_counter()
    model = model.eval().to(device)
    batches = device_batches(inputs, batch_size, device)
    loader = paper_loader(inputs, batch_size)
    result = NetworkBenchmark(network, device, images=len(inputs), labels=labels, min_window_s=min_window_s)
    result.runs = {s: [] for s in series}

    def work(name: str) -> Callable[[], torch.Tensor]:
        if name.startswith(PAPER):
            return lambda: paper_pass(model, loader, name.removeprefix(PAPER), device, half_dtype)
        return lambda: inference_pass(model, batches, name, half_dtype)

    if idle_seconds > 0:  # before any work: a warmed-up GPU idles above its true idle for seconds
        result.idle_power_w = idle_power(meter, idle_seconds)
    for name in series:
        result.predictions[name] = work(name)().cpu().numpy()
        result.warmup_passes[name] = len(warm_up(meter, work(name), min_window_s=min_window_s,
                                                 max_passes=warmup_windows))
    def series_failed(exc: Exception) -> None:  # CodeCarbon failing empties its column, never the benchmark
        result.series_error = f"{type(exc).__name__}: {exc}"

    series_open = False
    if series_meter is not None:
        try:
            series_meter.begin()
            series_open = True
        except Exception as exc:
            series_failed(exc)
    try:
        for run in range(max(runs, kernel_runs)):
            for name in series if run % 2 == 0 else series[::-1]:
                wanted = runs if name.startswith(PAPER) else kernel_runs
                if run >= wanted:
                    continue
                m = measure(meter, work(name), min_window_s, peers)
                result.runs[name].append(m)
                if progress:
                    progress(f"{network} run {run + 1}/{wanted} {name}: {m.energy_per_repeat_j:.3f} J, "
                             f"{m.duration_per_repeat_s:.4f} s ({m.source})")
    finally:
        if series_open:
            try:
                result.series = series_meter.end()
            except Exception as exc:
                series_failed(exc)
        result.seconds = time.perf_counter() - started
    return result
