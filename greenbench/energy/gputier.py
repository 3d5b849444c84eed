"""The GPU tier's settings: the real run on a CUDA device, or its rehearsal on the CPU.

`GREENBENCH_GPU_REHEARSAL=1` runs every GPU test's body on the CPU against a simulated NVML
(`energy.SimulatedNvml`), on a small slice of the data, with bfloat16 standing in for float16 (CPU
float16 kernels are emulated, ~100× slower): the code paths are exercised, nothing is a verdict and
no baseline is written. Sizes can be set by environment variables (validated here, so a typo is an
error rather than a silently different run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from greenbench.core.settings import setting, xdist_gpu

REHEARSAL_ENV = "GREENBENCH_GPU_REHEARSAL"
WARMUP_WINDOWS = 2  # of the measuring windows' length: a GPU is steady within 2–3 passes; 2 keeps the run in 8 minutes
# Windows of 1 s: both ends wait for a counter tick (energy.nvml), so no quantisation is left; what varies is the
# idle tail after the work, up to one period, uniform: σ = T/√12 ≈ 29 ms at T = 100 ms, at idle power (≈ 1/4 of
# ResNet-34's) ≈ 0.25 × 29 ms / 1 s ≈ 0.7 % of a window's energy: below the 3 % CV gate, near its 1 % target.
WINDOW_CAP_S = 1.0


def rehearsal_requested(environ: Mapping[str, str] | None = None) -> bool:
    return setting(REHEARSAL_ENV, False, environ)


@dataclass(frozen=True)
class GpuTierSettings:
    rehearsal: bool
    device: str
    test_images: int | None  # None: the whole test set
    fp16_runs: int  # the paper loop's series (compared with Table 2; the paper ran 10)
    kernel_runs: int  # the kernel loop's series (recorded beside them)
    half_dtype: torch.dtype
    window_floor_s: float  # the minimum window follows the counter's update period, within these bounds
    window_cap_s: float
    idle_seconds: float
    warmup_windows: int  # the most warm-up windows per series
    mnist_epochs: int
    mnist_trainings: int
    mnist_train_limit: int | None  # None: every training image

    @property
    def cuda_index(self) -> int:
        """The CUDA device's index (0 in a rehearsal)."""
        return int(self.device.partition(":")[2] or 0) if self.device.startswith("cuda") else 0

    @property
    def half_name(self) -> str:
        return "fp16" if self.half_dtype == torch.float16 else str(self.half_dtype).removeprefix("torch.")

    def describe(self) -> str:
        """What a rehearsal row says about how it differs from the real run."""
        if not self.rehearsal:
            return ""
        return (f"CPU rehearsal: simulated NVML, {self.test_images} test images, {self.fp16_runs} runs, "
                f"FP16 as {self.half_name}")

    def unmeasured_reason(self, sources: set[str]) -> str | None:
        """Why these energy sources cannot gate a claim (None when they can): only measured ones do; a
        rehearsal's simulated ones pass, since a rehearsal judges nothing."""
        from greenbench.energy.meter import MEASURED, SIMULATED

        allowed = {MEASURED, SIMULATED} if self.rehearsal else {MEASURED}
        if sources and sources <= allowed:
            return None
        return f"energy source is {sorted(sources)}: only measured sources gate energy claims"

    def subset(self, n: int) -> slice:
        """The part of an n-image test set this tier evaluates."""
        return slice(0, n if self.test_images is None else min(n, self.test_images))

    def sized(self, dataset):
        """The data set with its test part cut to this tier's size (training is cut by its own limit)."""
        part = self.subset(len(dataset.test_images))
        return dataclasses.replace(dataset, test_images=dataset.test_images[part],
                                   test_labels=dataset.test_labels[part])


def gpu_tier_settings(environ: Mapping[str, str] | None = None) -> GpuTierSettings:
    """The tier's sizes from the environment (core.settings validates each), defaults by mode."""
    def get(name: str, default):
        return setting(f"GREENBENCH_{name}", default, environ)

    if rehearsal_requested(environ):
        return GpuTierSettings(
            rehearsal=True, device="cpu", test_images=get("GPU_TEST_IMAGES", 32), fp16_runs=get("FP16_RUNS", 2),
            kernel_runs=get("KERNEL_RUNS", 2),
            half_dtype=torch.bfloat16, window_floor_s=0.0, window_cap_s=0.05, idle_seconds=0.05, warmup_windows=2,
            mnist_epochs=get("MNIST_EPOCHS", 1), mnist_trainings=get("MNIST_TRAININGS", 2),
            mnist_train_limit=get("MNIST_TRAIN_LIMIT", 256))
    return GpuTierSettings(
        rehearsal=False, device=f"cuda:{get('GPU', xdist_gpu(environ))}", test_images=get("GPU_TEST_IMAGES", None),
        fp16_runs=get("FP16_RUNS", 10), kernel_runs=get("KERNEL_RUNS", 3), half_dtype=torch.float16,
        window_floor_s=0.5, window_cap_s=get("WINDOW_CAP_S", WINDOW_CAP_S), idle_seconds=2.0,
        warmup_windows=WARMUP_WINDOWS, mnist_epochs=get("MNIST_EPOCHS", 2),
        mnist_trainings=get("MNIST_TRAININGS", 3), mnist_train_limit=get("MNIST_TRAIN_LIMIT", None))


def open_gpu_meter(tier: GpuTierSettings, cuda_device: str):
    """The NVML meter of the GPU under test (a simulated one in a rehearsal, with the faults and period of
    GREENBENCH_SIMULATED_NVML so CI runs each path), its counter's update period measured and its minimum
    window set from it; MeterUnavailable when there is no energy source."""
    from greenbench.energy.meter import min_window_for
    from greenbench.energy.nvml import NvmlMeter, cuda_identity
    from greenbench.energy.simulated import SimulatedNvml

    if tier.rehearsal:
        meter = NvmlMeter(nvml=SimulatedNvml.from_setting(setting("GREENBENCH_SIMULATED_NVML")),
                          synchronize=lambda: None)
    else:  # NVML ignores CUDA_VISIBLE_DEVICES: the handle is the CUDA device's, by UUID or PCI bus id
        meter = NvmlMeter(cuda_identity=cuda_identity(torch.device(cuda_device).index or 0))
    meter.update_period_s = meter.update_period()
    meter.min_window_s = min_window_for(meter.update_period_s, floor_s=tier.window_floor_s, cap_s=tier.window_cap_s)
    return meter
