"""The most direct meter this machine offers.
"""

from __future__ import annotations

import contextlib

from greenbench.energy.estimate import CpuTimeEstimateMeter
from greenbench.energy.meter import EnergyMeter, MeterUnavailable
from greenbench.energy.nvml import NvmlMeter
from greenbench.energy.rapl import RaplMeter


def best_meter(gpu_index: int | None = 0) -> EnergyMeter:
    """The most direct meter this machine offers: NVML for a CUDA GPU, else RAPL, else an estimate."""
    import torch

    if gpu_index is not None and torch.cuda.is_available():
        with contextlib.suppress(MeterUnavailable):
            return NvmlMeter(gpu_index)
    with contextlib.suppress(MeterUnavailable):
        return RaplMeter()
    return CpuTimeEstimateMeter()
