"""μ-law (thesis Eq. 2.27), looked up in threshold tables built with its exact rule (bit-identical to the
rule per element), and minifloat (Eqs. 2.29–2.30, Table 3.5), computed on float64 bit patterns.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from greenbench.core.validation import as_float_array, as_index_array, check_scalar
from greenbench.quantization import kernels as _kernels
from greenbench.quantization.base import (
    Quantizer,
    cast_output,
    check_levels,
    kernel_output,
    raise_if_bad,
    register_quantizer,
)
from greenbench.quantization.uniform import Midtread


class _Tabled(Quantizer):
    """Kernels for a symmetric quantizer whose |index| never decreases with |x| and whose exact rule is
    costly per element (μ-law's is numpy's log1p).

    On large inputs `quantize` looks indices up in threshold tables instead of evaluating the exact
    rule per element; the thresholds (the least |x| at which each |index| starts) are found with the
    exact rule itself, by a bisection over float64 bit patterns run for all thresholds at once, so
    both paths give the same indices to the last bit. `dequantize` gathers from a table of every
    level's value computed by the exact formula.
    """

    TABLE_ELEMENTS_PER_LEVEL = 64  # tables pay for their construction from this many inputs per level
    TABLE_MAX_MAGNITUDES = 1 << 20  # beyond, the tables would not stay in cache: the rule per element
    MAX_BUCKET_BITS = 20

    _tables: tuple | None = None
    _tables_float32: np.ndarray | None = None

    @abstractmethod
    def _exact_indices(self, flat: np.ndarray, out: np.ndarray) -> int:
        """Indices of a flat float array into `out` by the exact rule; returns the count of non-finite inputs."""

    @abstractmethod
    def _magnitudes(self) -> int:
        """How many |index| values the quantizer has (bounds the table)."""

    @abstractmethod
    def _level_values(self, k: np.ndarray) -> np.ndarray:
        """Float64 values of indices k, NaN where invalid."""

    def _magnitude_of(self, a: np.ndarray) -> np.ndarray:
        out = np.empty(a.size, np.int64)
        self._exact_indices(a, out)
        return np.abs(out)

    def _build_tables(self) -> tuple:
        """(thresholds, codes, bucket table, first key, key shift, sign_from, consecutive); an empty bucket table
        if none fits."""
        limit = np.array([np.finfo(np.float64).max])
        low, top = int(self._magnitude_of(np.zeros(1))[0]), int(self._magnitude_of(limit)[0])
        wanted = np.arange(low + 1, top + 1)  # least |x| with |index| ≥ each value: bisect all at once
        lo = np.zeros(wanted.size, np.int64)
        hi = np.full(wanted.size, limit.view(np.int64)[0])
        while np.any(hi - lo > 1):
            mid = lo + (hi - lo) // 2
            reached = self._magnitude_of(mid.view(np.float64)) >= wanted
            hi, lo = np.where(reached, mid, hi), np.where(reached, lo, mid)
        starts = np.unique(hi)  # values no input reaches share the next one's threshold
        thresholds = np.concatenate([[0.0], starts.view(np.float64), [np.inf]])
        codes = np.concatenate([[low], self._magnitude_of(starts.view(np.float64))]).astype(np.int32)
        consecutive = bool(np.all(np.diff(codes) == 1))  # every |index| reached: the kernel skips `codes`
        # the least |x| from which −x gets −|index| (x/scale may underflow to −0 below it)
        sign_from = 0.0 if self._signs_agree(5e-324) else self._bisect_sign(limit)
        for bucket_bits in range(4, self.MAX_BUCKET_BITS + 1):
            shift = 52 - bucket_bits
            keys = starts >> shift
            if np.any(np.diff(keys) == 0):
                continue
            first = int(keys[0]) - 1 if keys.size else 0
            last = int(keys[-1]) if keys.size else 0
            bucket_starts = (np.arange(first, last + 1, dtype=np.int64) << shift).view(np.float64)
            table = np.searchsorted(thresholds[1:-1], bucket_starts, side="right").astype(np.int32)
            return thresholds, codes, table, np.int64(first), np.int64(shift), sign_from, consecutive
        return thresholds, codes, np.empty(0, np.int32), np.int64(0), np.int64(0), sign_from, consecutive

    @staticmethod
    def _float32_table(thresholds: np.ndarray, table: np.ndarray) -> np.ndarray:
        """`step_indices_float32`'s table: per bucket, its starting rank and the bit pattern of the least
        float32 at or above the threshold that ends it (a float32 x is at or above the one iff at or above
        the other)."""
        ends = thresholds[table.astype(np.int64) + 1]
        with np.errstate(over="ignore"):
            ends32 = ends.astype(np.float32)
        ends32 = np.where(ends32.astype(np.float64) < ends, np.nextafter(ends32, np.float32(np.inf)), ends32)
        return (table.astype(np.int64) << 32) | ends32.view(np.uint32).astype(np.int64)

    def _signs_agree(self, a: float) -> bool:
        out = np.empty(2, np.int64)
        self._exact_indices(np.array([a, -a]), out)
        return bool(out[1] == -out[0])

    def _bisect_sign(self, limit: np.ndarray) -> float:
        lo, hi = 0, int(limit.view(np.int64)[0])
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            if self._signs_agree(float(np.array([mid]).view(np.float64)[0])):
                hi = mid
            else:
                lo = mid
        return float(np.array([hi]).view(np.float64)[0])

    def _indices(self, x: Any, tabled: bool | None = None) -> np.ndarray:
        """Indices of x; `tabled` forces a path (None: by size)."""
        arr = as_float_array(x)
        if tabled is None:
            tabled = arr.size >= self.TABLE_ELEMENTS_PER_LEVEL * self._magnitudes()
        tabled = tabled and self._magnitudes() <= self.TABLE_MAX_MAGNITUDES
        if tabled and self._tables is None:
            tables = self._build_tables()
            self._tables_float32 = self._float32_table(tables[0], tables[2])  # first: a thread may see `_tables` set
            self._tables = tables
        if tabled and self._tables[2].size:
            if arr.dtype.itemsize <= 4:  # float16 and float32 reach the kernels as float32
                _, codes, _, *rest = self._tables
                return self._quantize_with(_kernels.step_indices_float32, arr, self._tables_float32, codes, *rest)
            return self._quantize_with(_kernels.step_indices, arr, *self._tables)
        return self._quantize_with(self._exact_indices, arr)

    def quantize(self, x: Any) -> np.ndarray:
        return self._indices(x)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        idx = as_index_array(q)
        flat = idx.reshape(-1)
        lo, hi = self.index_bounds
        if hi - lo + 1 > flat.size:  # a table of every level would outweigh the data: the span present
            lo, hi = (int(v) for v in _kernels.index_range(flat))
        if hi - lo + 1 > max(flat.size, 1 << 16):  # even that span's table would: the values one by one
            values = self._level_values(flat)
            bad = int(np.count_nonzero(np.isnan(values)))
            out = values
        else:  # the gather counts indices beyond the table as invalid
            out = kernel_output(flat.size, dtype)
            bad = _kernels.gather(flat, out, np.int64(lo), self._level_values(np.arange(lo, hi + 1)))
        raise_if_bad(bad, f"{{bad}} index(es) are not valid for {self!r}")
        return cast_output(out.reshape(idx.shape), dtype, self)


@register_quantizer
class MuLaw(_Tabled):
    """Thesis Eq. 2.27: μ-law companding, then a uniform midtread of `levels` levels on [−X_max, X_max].

    Expansion is the exact inverse of the compressor (the seed's Eq. 2.28 is garbled):
    X = s(y)·(X_max/μ)·((1 + μ)^{|y|/X_max} − 1). Inputs beyond ±X_max are clipped.
    """

    name = "mulaw"

    def __init__(self, levels: int, mu: float = 255.0, xmax: float = 1.0):
        self.levels = check_levels(levels)
        self.mu = check_scalar(mu, "mu", float, low=0.0, include_low=False)
        self.xmax = check_scalar(xmax, "xmax", float, low=0.0, include_low=False)
        self._uniform = Midtread(levels=self.levels, xmax=self.xmax)

    @property
    def params(self) -> dict[str, Any]:
        return {"levels": self.levels, "mu": self.mu, "xmax": self.xmax}

    @property
    def max_levels(self) -> int:
        return self._uniform.max_levels  # type: ignore[return-value]

    @property
    def index_bounds(self) -> tuple[int, int]:
        return self._uniform.index_bounds

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        return self._uniform.invalid_indices(q)

    def _exact_indices(self, flat: np.ndarray, out: np.ndarray) -> int:
        # numpy's log1p, not the compiled one: they differ in the last bit now and then, and so would an index
        bad = flat.size - int(np.count_nonzero(np.isfinite(flat)))
        if not bad:
            out[:] = self._uniform.quantize(self.compress(flat))
        return bad

    def _magnitudes(self) -> int:
        return int(self._uniform.qmax) + 1

    def compress(self, x: np.ndarray) -> np.ndarray:
        """Eq. 2.27 in numpy: the exact rule of `quantize`, from which its tables are built."""
        a = np.minimum(np.abs(np.asarray(x, dtype=np.float64)), self.xmax)
        y = np.minimum(self.xmax * np.log1p(self.mu * a / self.xmax) / math.log1p(self.mu), self.xmax)
        return np.copysign(y, x)

    def expand(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return np.copysign(self.xmax / self.mu * np.expm1(np.abs(y) / self.xmax * math.log1p(self.mu)), y)

    def _level_values(self, k: np.ndarray) -> np.ndarray:
        y = np.empty(k.size)
        _kernels.uniform_values(k, y, self._uniform.step, 0.0, self._uniform.qmax, True)
        return self.expand(y)  # numpy's expm1, not the compiled one: the values are numpy's to the last bit

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(2**4), cls(2**8), cls(2**6, mu=100.0, xmax=0.5), cls(7, mu=5.0, xmax=2.0)]


# Thesis Table 3.5 plus IEEE half (1/5/10): (exponent bits, mantissa bits); one sign bit each.
MINIFLOAT_FORMATS: tuple[tuple[int, int], ...] = (
    (5, 10), (4, 7), (3, 6), (3, 4), (4, 3), (3, 3), (2, 4), (2, 3), (1, 4), (2, 2), (1, 3), (1, 2), (0, 3))


@register_quantizer
class Minifloat(Quantizer):
    """Thesis Eqs. 2.29–2.30: (−1)^s·2^(e − bias)·(1 + m), rounded to nearest, ties to even.

    The seed's formats hold normalised numbers only (every exponent code is a normal binade; no zero,
    subnormals, inf or NaN). IEEE-style switches: `zero` makes 0 exact (exponent code 0 is then
    reserved), `subnormals` puts subnormals there (implies zero), `specials` reserves the top
    exponent code for inf/NaN. Out-of-range magnitudes saturate to the largest/smallest value; values
    are quantized as x/scale and reconstructed times scale. The default bias is 2^(E−1) − 1 (0 for E = 0).
    The index of a value whose magnitude has IEEE bit pattern p is p if it is positive and −p if negative
    (±0: 0); without a zero, a negative one's is −1 − p, so that a 16-bit format's indices are int16's
    −2^15 … 2^15 − 1 and an 8-bit one's int8's.
    """

    name = "minifloat"

    def __init__(self, exponent_bits: int, mantissa_bits: int, bias: int | None = None, *, zero: bool = False,
                 subnormals: bool = False, specials: bool = False, scale: float = 1.0):
        self.exponent_bits = check_scalar(exponent_bits, "exponent_bits", int, low=0, high=20)
        self.mantissa_bits = check_scalar(mantissa_bits, "mantissa_bits", int, low=0, high=20)
        default_bias = 2 ** (self.exponent_bits - 1) - 1 if self.exponent_bits else 0
        if bias is not None:
            check_scalar(bias, "bias", int)
        self.bias = default_bias if bias is None else int(bias)
        self.subnormals = bool(subnormals)
        self.zero = bool(zero) or self.subnormals
        self.specials = bool(specials)
        self.scale = check_scalar(scale, "scale", float, low=0.0, include_low=False)
        self._code_lo = 1 if self.zero else 0
        self._code_hi = 2**self.exponent_bits - (2 if self.specials else 1)
        if self._code_hi < self._code_lo:
            raise ValueError(f"minifloat 1/{exponent_bits}/{mantissa_bits} with these options has no normal numbers")
        m = self.mantissa_bits
        top, bottom = self._code_hi - self.bias, self._code_lo - self.bias - m
        # computed in float64, whose subnormals lose the exponent the kernel reads: its normal range only
        if top > 1023 or bottom < -1022:
            raise ValueError(f"minifloat 1/{exponent_bits}/{mantissa_bits} with bias {self.bias} spans 2^{bottom} to "
                             f"2^{top + 1}: beyond float64's normal range (2^-1022 to 2^1024), where it is computed")
        self.min_normal = math.ldexp(1.0, self._code_lo - self.bias)
        self.max_value = math.ldexp(2.0 - math.ldexp(1.0, -m), self._code_hi - self.bias)

    @property
    def params(self) -> dict[str, Any]:
        return {"exponent_bits": self.exponent_bits, "mantissa_bits": self.mantissa_bits, "bias": self.bias,
                "zero": self.zero, "subnormals": self.subnormals, "specials": self.specials, "scale": self.scale}

    @property
    def max_levels(self) -> int:
        normals = (self._code_hi - self._code_lo + 1) * 2**self.mantissa_bits
        subs = 2**self.mantissa_bits - 1 if self.subnormals else 0
        return 2 * (normals + subs) + (1 if self.zero else 0)

    def _args(self) -> tuple:
        """The arguments of the compiled rules after the element: scale, min normal, a slot they leave unused (the
        loops pass four; the largest value is the largest bit pattern, in the layout), layout."""
        mode = 2 if self.subnormals else 1 if self.zero else 0
        layout = (self.mantissa_bits, self.bias, self._code_lo, self._code_hi, mode)
        return self.scale, self.min_normal, 0.0, tuple(np.int64(v) for v in layout)

    def quantize(self, x: Any) -> np.ndarray:
        return self._quantize_with(_kernels.minifloat_indices, x, *self._args())

    @property
    def index_bounds(self) -> tuple[int, int]:
        top = ((self._code_hi + 1) << self.mantissa_bits) - 1  # the largest magnitude's bit pattern
        return -top - (not self.zero), top

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.int64)
        mag = np.where(q >= 0, q, -q - (not self.zero))
        code, mant = mag >> self.mantissa_bits, mag & (2**self.mantissa_bits - 1)
        reserved = (code < self._code_lo) & ~((code == 0) & self.zero)  # code 0 is zero/subnormal when reserved
        stray_subnormal = (code == 0) & (mant != 0) & self.zero & (not self.subnormals)
        return (mag < 0) | (code > self._code_hi) | reserved | stray_subnormal  # mag < 0: −q overflowed (−2^63)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._dequantize_with(_kernels.minifloat_values, q, dtype, *self._args())

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        a = np.abs(np.asarray(x, dtype=np.float64)) / self.scale
        exp = np.clip(np.frexp(a)[1] - 1, self._code_lo - self.bias, self._code_hi - self.bias)
        half_ulp = np.ldexp(0.5, exp - self.mantissa_bits)
        lowest = 0.0 if self.zero else self.min_normal
        if self.zero and not self.subnormals:
            half_ulp = np.where(a < self.min_normal, self.min_normal / 2, half_ulp)
        granular = (a >= lowest) & (a <= self.max_value)
        return np.where(granular, half_ulp * self.scale, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        seed = [cls(e, m) for e, m in MINIFLOAT_FORMATS]
        ieee = [cls(5, 10, zero=True, subnormals=True, specials=True), cls(4, 3, zero=True, subnormals=True),
                cls(3, 2, zero=True), cls(2, 3, scale=0.01)]
        return seed + ieee
