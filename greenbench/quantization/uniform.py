"""The uniform family (thesis Eqs. 2.21–2.26): midtread, midrise and deadzone. δ = ½ is midtread and
δ = 0 midrise; one step Δ for the whole model, given directly or from a level count over [−xmax, xmax].
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from greenbench.core.validation import as_float_array, check_scalar
from greenbench.quantization import kernels as _kernels
from greenbench.quantization.base import (
    UNBOUNDED,
    Quantizer,
    check_levels,
    register_quantizer,
)


class _UniformBase(Quantizer):
    """Step Δ either given directly (no clipping) or from `levels` over [−xmax, xmax]: Δ = 2·xmax/levels."""

    def __init__(self, levels: int | None = None, xmax: float = 1.0, step: float | None = None):
        if (levels is None) == (step is None):
            raise ValueError("give either levels (with xmax) or step, not both and not neither")
        if step is not None:
            self.levels, self.xmax = None, None
            self.step = check_scalar(step, "step", float, low=0.0, include_low=False)
        else:
            self.levels = check_levels(levels)
            self.xmax = check_scalar(xmax, "xmax", float, low=0.0, include_low=False)
            self.step = 2.0 * self.xmax / self.levels
            if not math.isfinite(self.step) or self.step < np.finfo(np.float64).tiny:
                raise ValueError(f"xmax {xmax!r} over {levels} levels gives step {self.step!r}: the step must be a "
                                 f"finite normal float64 (xmax ≤ {np.finfo(np.float64).max / 2:.3g})")
        if self.levels is None and self.step > np.finfo(np.float64).max / 2**62:  # below, indices bound the output
            with np.errstate(over="ignore"):
                ends = self.dequantize(self.quantize(np.array([-1.0, 1.0]) * np.finfo(np.float64).max))
            if not np.all(np.isfinite(ends)):
                raise ValueError(f"step {step!r} is so large that reconstructing the largest float64 inputs "
                                 f"overflows (gives {float(ends[1])}); use a smaller step or levels with xmax")

    @property
    def qmax(self) -> np.int64:
        return UNBOUNDED if self.levels is None else np.int64(self._qmax_for(self.levels))

    @abstractmethod
    def _qmax_for(self, levels: int) -> int:
        """Largest |index| allowed with `levels` levels."""

    @property
    def params(self) -> dict[str, Any]:
        if self.levels is None:
            return {"step": self.step}
        return {"levels": self.levels, "xmax": self.xmax}

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.int64)
        return (np.abs(q) > self.qmax) | ((q == 0) & (not self.has_zero))

    @property
    def index_bounds(self) -> tuple[int, int]:
        return -int(self.qmax), int(self.qmax)

    def _run_quantize(self, x: Any, delta: float, kernel: Any) -> np.ndarray:
        out = self._quantize_with(kernel, x, self.step, delta, self.qmax, 0)
        flat = out.reshape(-1)
        if self.levels is None:  # step-only: an index clipped at the limit would be a wrong value
            lo, hi = _kernels.index_range(flat)
            if max(-int(lo), int(hi)) >= UNBOUNDED:
                value = as_float_array(x).reshape(-1)[int(np.flatnonzero(np.abs(flat) >= UNBOUNDED)[0])]
                raise ValueError(f"value {value!r} is {abs(float(value)) / self.step:.3g} steps of {self.step!r} "
                                 "from 0: its index does not fit in int64 (limit 2^62); give levels and xmax to clip")
        return out

    def _run_dequantize(self, q: Any, offset: float, allow_zero: bool, dtype: Any) -> np.ndarray:
        return self._dequantize_with(_kernels.uniform_values, q, dtype, self.step, offset, self.qmax, allow_zero)

    @property
    def max_levels(self) -> int | None:
        if self.levels is None:
            return None
        return 2 * int(self.qmax) + (1 if self.has_zero else 0)

    has_zero: ClassVar[bool] = True


@register_quantizer
class Midtread(_UniformBase):
    """Thesis Eqs. 2.21–2.22: q = round(X/Δ) (ties away from zero), X̂ = Δ·q.

    With `levels` L the indices are clipped to ±⌊(L−1)/2⌋, an odd, symmetric set of at most L levels.
    """

    name = "midtread"

    def _qmax_for(self, levels: int) -> int:
        return (levels - 1) // 2

    def quantize(self, x: Any) -> np.ndarray:
        return self._run_quantize(x, 0.0, _kernels.midtread_indices)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._run_dequantize(q, 0.0, True, dtype)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        granular = np.abs(x) <= (float(self.qmax) + 0.5) * self.step
        return np.where(granular, self.step / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(levels=2**4), cls(levels=2**8, xmax=0.5), cls(levels=5, xmax=2.0), cls(step=0.1)]


@register_quantizer
class Midrise(_UniformBase):
    """Thesis Eqs. 2.23–2.24: q = s(X)·⌈|X|/Δ⌉, X̂ = s(q)·Δ·(|q| − ½); no zero level.

    ⌈t⌉ is taken as ⌊t⌋ + 1 (bins [kΔ, (k+1)Δ)), so X = 0 maps to +1 (s(0) = +1 in the thesis);
    this differs from ⌈t⌉ only on bin edges. With `levels` L the indices are clipped to ±⌊L/2⌋.
    """

    name = "midrise"
    has_zero = False

    def _qmax_for(self, levels: int) -> int:
        return levels // 2

    def quantize(self, x: Any) -> np.ndarray:
        return self._run_quantize(x, 0.0, _kernels.midrise_indices)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._run_dequantize(q, -0.5, False, dtype)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        granular = np.abs(x) <= float(self.qmax) * self.step
        return np.where(granular, self.step / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(levels=2**4), cls(levels=2**8, xmax=0.5), cls(levels=6, xmax=2.0), cls(step=0.1)]


@register_quantizer
class Deadzone(_UniformBase):
    """Thesis Eqs. 2.25–2.26: q = 0 if |X| < δΔ, else s(X)·⌈|X|/Δ − δ⌉; X̂ = s(q)·Δ·(|q| + δ − ½).

    ⌈t⌉ is taken as ⌊t⌋ + 1 so that the zero-bin test |X| < δΔ is exactly the equation's and bins
    are [(k−1+δ)Δ, (k+δ)Δ); δ = ½ is then midtread and δ = 0 midrise, everywhere. With `levels` L the
    indices are clipped to ±⌊(L − 1)/2⌋ (±⌊L/2⌋ for δ = 0, which has no zero level).
    """

    name = "deadzone"

    def __init__(self, delta: float, levels: int | None = None, xmax: float = 1.0, step: float | None = None):
        d = check_scalar(delta, "delta", float, low=0.0, high=1.0, include_high=False)
        self.delta = d
        super().__init__(levels, xmax, step)

    @property
    def has_zero(self) -> bool:  # type: ignore[override]
        return self.delta > 0

    def _qmax_for(self, levels: int) -> int:
        return (levels - (1 if self.delta > 0 else 0)) // 2

    @property
    def params(self) -> dict[str, Any]:
        return {"delta": self.delta, **super().params}

    def quantize(self, x: Any) -> np.ndarray:
        return self._run_quantize(x, self.delta, _kernels.deadzone_indices)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._run_dequantize(q, self.delta - 0.5, self.delta > 0, dtype)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        a = np.abs(x)
        granular = a <= (float(self.qmax) + self.delta) * self.step
        inner = np.where(a < self.delta * self.step, self.delta * self.step, self.step / 2)
        return np.where(granular, inner, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(0.0, levels=2**4), cls(0.1, levels=2**6), cls(0.25, levels=2**8, xmax=0.5),
                cls(0.4, levels=7), cls(0.5, levels=2**4), cls(0.7, levels=2**5), cls(0.9, step=0.05)]
