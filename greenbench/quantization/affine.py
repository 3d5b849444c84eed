"""Affine (asymmetric) integer quantization, seed 003: Q(r) = Int(r/S) − Z, S = (β − α)/(2^b − 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from greenbench.core.validation import as_float_array, check_finite, check_scalar
from greenbench.quantization import kernels as _kernels
from greenbench.quantization.base import (
    Quantizer,
    register_quantizer,
)


def _check_bits(bits: Any) -> int:
    return check_scalar(bits, "bits", int, low=1, high=31)  # S·(q + Z) in int64 without overflow


@register_quantizer
class Affine(Quantizer):
    """Uniform affine b-bit quantization with a zero point (seed 003).

    S = (β − α)/(2^b − 1), Q(r) = Int(r/S) − Z, r̂ = S·(q + Z), indices in [−2^(b−1), 2^(b−1) − 1];
    Z = Int(α/S) − qmin puts α at the bottom of the range, and 0 ∈ [α, β] is reconstructed exactly.
    Inputs outside [α, β] are clipped. `calibrate` chooses [α, β] from data.
    """

    name = "affine"
    symmetric = False

    def __init__(self, bits: int, alpha: float, beta: float):
        self.bits = _check_bits(bits)
        self.alpha = check_scalar(alpha, "alpha", float)
        self.beta = check_scalar(beta, "beta", float)
        if not self.alpha <= 0.0 <= self.beta or self.alpha == self.beta:
            raise ValueError(f"the clipping range [alpha, beta] must contain 0 and be non-empty, "
                             f"got [{alpha!r}, {beta!r}]")
        self.qmin, self.qmax = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        self.scale = (self.beta - self.alpha) / (2**self.bits - 1)
        if not self.scale >= np.finfo(np.float64).tiny:
            raise ValueError(f"the clipping range [{alpha!r}, {beta!r}] is too narrow for {bits} bits "
                             "(the scale underflows)")
        self.zero_point = int(math.floor(self.alpha / self.scale + 0.5)) - self.qmin

    @classmethod
    def calibrate(cls, x: Any, bits: int, method: str = "minmax", percentile: float = 99.99) -> Affine:
        """[α, β] from the data: min/max, or the (100 − p, p) percentiles; widened to contain 0."""
        bits = _check_bits(bits)
        arr = as_float_array(x, "calibration data")
        check_finite(arr, "calibration data")
        if method == "minmax":
            lo, hi = float(arr.min()), float(arr.max())
        elif method == "percentile":
            percentile = check_scalar(percentile, "percentile", float, low=50, high=100, include_low=False)
            lo, hi = (float(v) for v in np.percentile(arr, [100.0 - percentile, percentile]))
        else:
            raise ValueError(f"unknown calibration method {method!r}; use 'minmax' or 'percentile'")
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi - lo < np.finfo(np.float64).tiny * 2**bits:  # all (nearly) zero: any range keeps them within S/2
            hi = lo + 1.0
        return cls(bits, lo, hi)

    @property
    def params(self) -> dict[str, Any]:
        return {"bits": self.bits, "alpha": self.alpha, "beta": self.beta}

    @property
    def max_levels(self) -> int:
        return 2**self.bits

    def quantize(self, x: Any) -> np.ndarray:
        return self._quantize_with(_kernels.affine_indices, x, self.scale, self.zero_point, self.qmin, self.qmax)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._dequantize_with(_kernels.affine_values, q, dtype, self.scale, self.zero_point, self.qmin,
                                     self.qmax)

    @property
    def index_bounds(self) -> tuple[int, int]:
        return self.qmin, self.qmax

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.int64)
        return (q < self.qmin) | (q > self.qmax)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        inside = (x >= self.alpha) & (x <= self.beta)
        return np.where(inside, self.scale / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(8, -1.0, 1.0), cls(4, -0.3, 1.7), cls(2, -1.0, 0.0), cls(16, 0.0, 3.0)]
