"""Scalar quantizers with one protocol and a registry (SPEC §2, thesis Eqs. 2.21–2.30, seed 003).

Every quantizer maps float arrays to integer indices (`quantize`) and indices to values
(`dequantize`), keeps the input's shape, accepts float16/32/64 and rejects bad input with a
ValueError that names the problem. `make_quantizer(name, **params)` builds one by name;
`examples()` of each registered class lists the configurations the common checks run over.

Index conventions: indices are signed and contiguous, 0 is the zero level where there is one,
and reconstruction is monotone non-decreasing in the index.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from . import _kernels

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
REGISTRY: dict[str, type[Quantizer]] = {}  # name -> class, filled by register_quantizer
UNBOUNDED = np.int64(2**62)  # the largest |index| a step-only quantizer may give; larger values are refused
MAX_LEVELS = 2**62  # level counts beyond this would overflow int64 index arithmetic


def as_float_array(x: Any, what: str = "input") -> np.ndarray:
    """`x` as a float16/32/64 array; empty arrays and other dtypes are rejected."""
    arr = np.asarray(x)
    if arr.dtype.type not in FLOAT_DTYPES:
        raise ValueError(f"{what} must be float16, float32 or float64, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    return arr


def check_finite(arr: np.ndarray, what: str = "input") -> None:
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{what} holds {bad} non-finite value(s) (NaN or inf); quantizers need finite values")


def as_index_array(q: Any) -> np.ndarray:
    """`q` as an integer index array, checked before any cast: every value must fit in int64."""
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError("indices are empty")
    if arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"index {int(arr.max())} does not fit in int64: no quantizer produces it")
    return arr


def float_dtype(dtype: Any) -> np.dtype:
    """A float16/32/64 output dtype, or a ValueError: dequantized values are never integers."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dtype!r}") from None
    if dt.type not in FLOAT_DTYPES:
        raise ValueError(f"dequantize gives float16, float32 or float64 values, not {dt}")
    return dt


def _kernel_output(size: int, dtype: Any) -> np.ndarray:
    # the kernels write float32/float64; other dtypes (float16) are cast afterwards
    dtype = float_dtype(dtype)
    return np.empty(size, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)


def _raise_if(bad: int, message: str) -> None:
    if bad:
        raise ValueError(message.format(bad=bad))


def _kernel_input(arr: np.ndarray) -> np.ndarray:
    # the kernels read float32/float64; float16 is widened (exactly) first
    flat = arr.reshape(-1)
    return flat.astype(np.float32) if arr.dtype == np.float16 else flat


class Quantizer(ABC):
    """A scalar quantizer: `quantize` to integer indices, `dequantize` back to values."""

    name: ClassVar[str]
    symmetric: ClassVar[bool] = True  # D(Q(−x)) = −D(Q(x)) away from cell edges

    @abstractmethod
    def quantize(self, x: Any) -> np.ndarray:
        """Indices (same shape as x)."""

    @abstractmethod
    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        """Reconstructed values (same shape as q)."""

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters that define this quantizer (what a container stores)."""

    @property
    def max_levels(self) -> int | None:
        """Most distinct outputs it can produce; None when unbounded."""
        return None

    @abstractmethod
    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        """Mask of the indices this quantizer never produces (dequantize rejects them)."""

    def _check_indices(self, q: Any) -> np.ndarray:
        idx = as_index_array(q)
        _raise_if(int(np.count_nonzero(self.invalid_indices(idx))), f"{{bad}} index(es) are not valid for {self!r}")
        return idx

    def error_bound(self, x: np.ndarray) -> np.ndarray | None:
        """Largest |x − D(Q(x))| allowed at each x (inf outside the granular region); None if no bound."""
        return None

    def reconstruct(self, x: Any) -> np.ndarray:
        """D(Q(x)) in x's dtype."""
        arr = as_float_array(x)
        return self.dequantize(self.quantize(arr), dtype=arr.dtype)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        """Configurations the common checks run over."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


class _Tabled(Quantizer):
    """Kernels for a symmetric quantizer whose |index| never decreases with |x| (minifloat, μ-law).

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
        """(thresholds, codes, bucket table, first key, key shift, sign_from); an empty table if none fits."""
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
        codes = np.concatenate([[low], self._magnitude_of(starts.view(np.float64))])
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
            table = np.searchsorted(thresholds[1:-1], bucket_starts, side="right").astype(np.int64)
            return thresholds, codes, table, np.int64(first), np.int64(shift), sign_from
        return thresholds, codes, np.empty(0, np.int64), np.int64(0), np.int64(0), sign_from

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

    def _indices(self, arr: np.ndarray, out: np.ndarray, tabled: bool | None = None) -> np.ndarray:
        """Indices of `arr` into `out`; `tabled` forces a path (None: by size)."""
        if tabled is None:
            tabled = arr.size >= self.TABLE_ELEMENTS_PER_LEVEL * self._magnitudes()
        tabled = tabled and self._magnitudes() <= self.TABLE_MAX_MAGNITUDES
        if tabled and self._tables is None:
            self._tables = self._build_tables()
        if tabled and self._tables[2].size:
            bad = _kernels.step_indices(_kernel_input(arr), out, *self._tables)
        else:
            bad = self._exact_indices(_kernel_input(arr), out)
        _raise_if(bad, "input holds {bad} non-finite value(s) (NaN or inf); quantizers need finite values")
        return out.reshape(arr.shape)

    def _values(self, q: Any, dtype: Any) -> np.ndarray:
        idx = as_index_array(q)
        flat = idx.reshape(-1)
        lo, hi = (int(v) for v in _kernels.index_range(flat))
        if hi - lo + 1 > max(flat.size, 1 << 16):  # a table of every level would outweigh the data
            values = self._level_values(flat)
            bad = int(np.count_nonzero(np.isnan(values)))
            out = values.astype(float_dtype(dtype), copy=False)
        else:
            out = _kernel_output(flat.size, dtype)
            bad = _kernels.gather(flat, lo, self._level_values(np.arange(lo, hi + 1)), out)
        _raise_if(bad, f"{{bad}} index(es) are not valid for {self!r}")
        return out.reshape(idx.shape).astype(dtype, copy=False)


# --------------------------------------------------------------------------- uniform family

def _check_number(value: Any, what: str, low: float | None = None, low_inclusive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise ValueError(f"{what} must be {'≥' if low_inclusive else '>'} {low}, got {value!r}")
    return v


def _check_levels(levels: Any) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)):
        raise ValueError(f"levels must be an integer ≥ 2, got {levels!r}")
    if not 2 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must lie in [2, 2^62], got {levels}")
    return int(levels)


class _UniformBase(Quantizer):
    """Step Δ either given directly (no clipping) or from `levels` over [−xmax, xmax]: Δ = 2·xmax/levels."""

    def __init__(self, levels: int | None = None, xmax: float = 1.0, step: float | None = None):
        if (levels is None) == (step is None):
            raise ValueError("give either levels (with xmax) or step, not both and not neither")
        if step is not None:
            self.levels, self.xmax = None, None
            self.step = _check_number(step, "step", 0.0, low_inclusive=False)
        else:
            self.levels = _check_levels(levels)
            self.xmax = _check_number(xmax, "xmax", 0.0, low_inclusive=False)
            self.step = 2.0 * self.xmax / self.levels
            if not math.isfinite(self.step) or self.step < np.finfo(np.float64).tiny:
                raise ValueError(f"xmax {xmax!r} over {levels} levels gives step {self.step!r}: the step must be a "
                                 f"finite normal float64 (xmax ≤ {np.finfo(np.float64).max / 2:.3g})")

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

    def _index_dtype(self) -> type:
        return np.int64 if self.levels is None or self.qmax >= 2**31 else np.int32

    def _run_quantize(self, x: Any, delta: float, rule: Any) -> np.ndarray:
        arr = as_float_array(x)
        out = np.empty(arr.size, dtype=self._index_dtype())
        bad = _kernels.to_indices(_kernel_input(arr), out, _kernels.uniform_index, self.step, delta, self.qmax, rule)
        _raise_if(bad, "input holds {bad} non-finite value(s) (NaN or inf)")
        if self.levels is None:  # step-only: an index clipped at the limit would be a wrong value, not a clip
            lo, hi = _kernels.index_range(out)
            if max(-int(lo), int(hi)) >= UNBOUNDED:
                value = arr.reshape(-1)[int(np.flatnonzero(np.abs(out) >= UNBOUNDED)[0])]
                raise ValueError(f"value {value!r} is {abs(float(value)) / self.step:.3g} steps of {self.step!r} "
                                 "from 0: its index does not fit in int64 (limit 2^62); give levels and xmax to clip")
        return out.reshape(arr.shape)

    def _run_dequantize(self, q: Any, offset: float, allow_zero: bool, dtype: Any) -> np.ndarray:
        idx = as_index_array(q)
        out = _kernel_output(idx.size, dtype)
        bad = _kernels.to_values(idx.reshape(-1), out, _kernels.uniform_value, self.step, offset, self.qmax, allow_zero)
        _raise_if(bad, f"{{bad}} index(es) are not valid for {self!r}")
        return out.reshape(idx.shape).astype(dtype, copy=False)

    @property
    def max_levels(self) -> int | None:
        if self.levels is None:
            return None
        return 2 * int(self.qmax) + (1 if self.has_zero else 0)

    has_zero: ClassVar[bool] = True


class Midtread(_UniformBase):
    """Thesis Eqs. 2.21–2.22: q = round(X/Δ) (ties away from zero), X̂ = Δ·q.

    With `levels` L the indices are clipped to ±⌊(L−1)/2⌋, an odd, symmetric set of at most L levels.
    """

    name = "midtread"

    def _qmax_for(self, levels: int) -> int:
        return (levels - 1) // 2

    def quantize(self, x: Any) -> np.ndarray:
        return self._run_quantize(x, 0.0, _kernels.midtread_rule)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._run_dequantize(q, 0.0, True, dtype)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        granular = np.abs(x) <= (float(self.qmax) + 0.5) * self.step
        return np.where(granular, self.step / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(levels=2**4), cls(levels=2**8, xmax=0.5), cls(levels=5, xmax=2.0), cls(step=0.1)]


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
        return self._run_quantize(x, 0.0, _kernels.midrise_rule)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._run_dequantize(q, -0.5, False, dtype)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        granular = np.abs(x) <= float(self.qmax) * self.step
        return np.where(granular, self.step / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(levels=2**4), cls(levels=2**8, xmax=0.5), cls(levels=6, xmax=2.0), cls(step=0.1)]


class Deadzone(_UniformBase):
    """Thesis Eqs. 2.25–2.26: q = 0 if |X| < δΔ, else s(X)·⌈|X|/Δ − δ⌉; X̂ = s(q)·Δ·(|q| + δ − ½).

    ⌈t⌉ is taken as ⌊t⌋ + 1 so that the zero-bin test |X| < δΔ is exactly the equation's and bins
    are [(k−1+δ)Δ, (k+δ)Δ); δ = ½ is then midtread and δ = 0 midrise, everywhere. With `levels` L the
    indices are clipped to ±⌊(L − 1)/2⌋ (±⌊L/2⌋ for δ = 0, which has no zero level).
    """

    name = "deadzone"

    def __init__(self, delta: float, levels: int | None = None, xmax: float = 1.0, step: float | None = None):
        d = _check_number(delta, "delta", 0.0)
        if d >= 1.0:
            raise ValueError(f"delta must lie in [0, 1), got {delta!r}")
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
        return self._run_quantize(x, self.delta, _kernels.deadzone_rule)

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


# --------------------------------------------------------------------------- μ-law

class MuLaw(_Tabled):
    """Thesis Eq. 2.27: μ-law companding, then a uniform midtread of `levels` levels on [−X_max, X_max].

    Expansion is the exact inverse of the compressor (the seed's Eq. 2.28 is garbled):
    X = s(y)·(X_max/μ)·((1 + μ)^{|y|/X_max} − 1). Inputs beyond ±X_max are clipped.
    """

    name = "mulaw"

    def __init__(self, levels: int, mu: float = 255.0, xmax: float = 1.0):
        self.levels = _check_levels(levels)
        self.mu = _check_number(mu, "mu", 0.0, low_inclusive=False)
        self.xmax = _check_number(xmax, "xmax", 0.0, low_inclusive=False)
        self._uniform = Midtread(levels=self.levels, xmax=self.xmax)

    @property
    def params(self) -> dict[str, Any]:
        return {"levels": self.levels, "mu": self.mu, "xmax": self.xmax}

    @property
    def max_levels(self) -> int:
        return self._uniform.max_levels  # type: ignore[return-value]

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
        _kernels.to_values(k, y, _kernels.uniform_value, self._uniform.step, 0.0, self._uniform.qmax, True)
        return self.expand(y)  # numpy's expm1, not the compiled one: the values are numpy's to the last bit

    def quantize(self, x: Any) -> np.ndarray:
        arr = as_float_array(x)
        return self._indices(arr, np.empty(arr.size, dtype=self._uniform._index_dtype()))

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._values(q, dtype)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(2**4), cls(2**8), cls(2**6, mu=100.0, xmax=0.5), cls(7, mu=5.0, xmax=2.0)]


# --------------------------------------------------------------------------- minifloat

# Thesis Table 3.5 plus IEEE half (1/5/10): (exponent bits, mantissa bits); one sign bit each.
MINIFLOAT_FORMATS: tuple[tuple[int, int], ...] = (
    (5, 10), (4, 7), (3, 6), (3, 4), (4, 3), (3, 3), (2, 4), (2, 3), (1, 4), (2, 2), (1, 3), (1, 2), (0, 3))


class Minifloat(_Tabled):
    """Thesis Eqs. 2.29–2.30: (−1)^s·2^(e − bias)·(1 + m), rounded to nearest, ties to even.

    The seed's formats hold normalised numbers only (every exponent code is a normal binade; no zero,
    subnormals, inf or NaN). IEEE-style switches: `zero` makes 0 exact (exponent code 0 is then
    reserved), `subnormals` puts subnormals there (implies zero), `specials` reserves the top
    exponent code for inf/NaN. Out-of-range magnitudes saturate to the largest/smallest value; values
    are quantized as x/scale and reconstructed times scale. The default bias is 2^(E−1) − 1 (0 for E = 0).
    Indices are the sign times the IEEE bit pattern of the magnitude (plus one where there is no zero).
    """

    name = "minifloat"

    def __init__(self, exponent_bits: int, mantissa_bits: int, bias: int | None = None, *, zero: bool = False,
                 subnormals: bool = False, specials: bool = False, scale: float = 1.0):
        for value, what in ((exponent_bits, "exponent_bits"), (mantissa_bits, "mantissa_bits")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 20:
                raise ValueError(f"{what} must be an integer in [0, 20], got {value!r}")
        self.exponent_bits, self.mantissa_bits = int(exponent_bits), int(mantissa_bits)
        default_bias = 2 ** (self.exponent_bits - 1) - 1 if self.exponent_bits else 0
        if bias is not None and (isinstance(bias, bool) or not isinstance(bias, (int, np.integer))):
            raise ValueError(f"bias must be an integer, got {bias!r}")
        self.bias = default_bias if bias is None else int(bias)
        self.subnormals = bool(subnormals)
        self.zero = bool(zero) or self.subnormals
        self.specials = bool(specials)
        self.scale = _check_number(scale, "scale", 0.0, low_inclusive=False)
        self._code_lo = 1 if self.zero else 0
        self._code_hi = 2**self.exponent_bits - (2 if self.specials else 1)
        if self._code_hi < self._code_lo:
            raise ValueError(f"minifloat 1/{exponent_bits}/{mantissa_bits} with these options has no normal numbers")
        self._offset = 0 if self.zero else 1
        m = self.mantissa_bits
        top, bottom = self._code_hi - self.bias, self._code_lo - self.bias - m
        if top > 1023 or bottom < -1074:  # float64's exponent range, subnormals included
            raise ValueError(f"minifloat 1/{exponent_bits}/{mantissa_bits} with bias {self.bias} spans 2^{bottom} to "
                             f"2^{top + 1}: beyond float64 (2^-1074 to 2^1024), where it is computed")
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
        """The arguments of the compiled rules after the element: scale, min normal, max value, layout."""
        mode = 2 if self.subnormals else 1 if self.zero else 0
        layout = (self.mantissa_bits, self.bias, self._code_lo, self._code_hi, mode, self._offset)
        return self.scale, self.min_normal, self.max_value, tuple(np.int64(v) for v in layout)

    def _exact_indices(self, flat: np.ndarray, out: np.ndarray) -> int:
        return _kernels.to_indices(flat, out, _kernels.minifloat_index, *self._args())

    def _magnitudes(self) -> int:
        return self.max_levels // 2 + 1

    def _level_values(self, k: np.ndarray) -> np.ndarray:
        values = np.empty(k.size)
        _kernels.to_values(k, values, _kernels.minifloat_value, *self._args())
        return values

    def quantize(self, x: Any) -> np.ndarray:
        arr = as_float_array(x)
        return self._indices(arr, np.empty(arr.size, dtype=np.int32 if self.exponent_bits + self.mantissa_bits < 30
                                           else np.int64))

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        mag = np.abs(np.asarray(q, dtype=np.int64)) - self._offset
        code, mant = mag >> self.mantissa_bits, mag & (2**self.mantissa_bits - 1)
        reserved = (code < self._code_lo) & ~((code == 0) & self.zero)  # code 0 is zero/subnormal when reserved
        stray_subnormal = (code == 0) & (mant != 0) & self.zero & (not self.subnormals)
        return (mag < 0) | (code > self._code_hi) | reserved | stray_subnormal

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._values(q, dtype)

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


# --------------------------------------------------------------------------- affine (seed 003)

class Affine(Quantizer):
    """Uniform affine b-bit quantization with a zero point (seed 003).

    S = (β − α)/(2^b − 1), Q(r) = Int(r/S) − Z, r̂ = S·(q + Z), indices in [−2^(b−1), 2^(b−1) − 1];
    Z = Int(α/S) − qmin puts α at the bottom of the range, and 0 ∈ [α, β] is reconstructed exactly.
    Inputs outside [α, β] are clipped. `calibrate` chooses [α, β] from data.
    """

    name = "affine"
    symmetric = False

    def __init__(self, bits: int, alpha: float, beta: float):
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 31:
            raise ValueError(f"bits must be an integer in [1, 31], got {bits!r}")
        self.bits = int(bits)
        self.alpha = _check_number(alpha, "alpha")
        self.beta = _check_number(beta, "beta")
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
        arr = as_float_array(x, "calibration data")
        check_finite(arr, "calibration data")
        if method == "minmax":
            lo, hi = float(arr.min()), float(arr.max())
        elif method == "percentile":
            if not 50.0 < percentile <= 100.0:
                raise ValueError(f"percentile must lie in (50, 100], got {percentile!r}")
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
        arr = as_float_array(x)
        out = np.empty(arr.size, dtype=np.int64 if self.bits > 16 else np.int32)
        bad = _kernels.to_indices(_kernel_input(arr), out, _kernels.affine_index, self.scale, self.zero_point,
                                  self.qmin, self.qmax)
        _raise_if(bad, "input holds {bad} non-finite value(s) (NaN or inf)")
        return out.reshape(arr.shape)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        idx = as_index_array(q)
        out = _kernel_output(idx.size, dtype)
        bad = _kernels.to_values(idx.reshape(-1), out, _kernels.affine_value, self.scale, self.zero_point,
                                 self.qmin, self.qmax)
        _raise_if(bad, f"{{bad}} index(es) are not valid for {self!r}")
        return out.reshape(idx.shape).astype(dtype, copy=False)

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.int64)
        return (q < self.qmin) | (q > self.qmax)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        inside = (x >= self.alpha) & (x <= self.beta)
        return np.where(inside, self.scale / 2, np.inf)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls(8, -1.0, 1.0), cls(4, -0.3, 1.7), cls(2, -1.0, 0.0), cls(16, 0.0, 3.0)]


# --------------------------------------------------------------------------- codebooks (ECSQ, centroids)

class Codebook(Quantizer):
    """A monotone scalar quantizer given by its cell edges and reconstruction points.

    Cell k is [edges[k−1], edges[k]) and reconstructs to points[k]; indices are k − (cell holding 0).
    The entropy-constrained quantizers and the centroid deadzone are codebooks built by design
    functions in `greenbench.ratedistortion`.
    """

    name = "codebook"

    def __init__(self, edges: Iterable[float], points: Iterable[float]):
        self.edges = np.asarray(list(edges), dtype=np.float64)
        self.points = np.asarray(list(points), dtype=np.float64)
        if self.points.size < 1 or self.edges.size != self.points.size - 1:
            raise ValueError(f"a codebook needs K points and K − 1 edges, got {self.points.size} and {self.edges.size}")
        if not (np.all(np.isfinite(self.edges)) and np.all(np.isfinite(self.points))):
            raise ValueError("codebook edges and points must be finite")
        if np.any(np.diff(self.edges) <= 0) or np.any(np.diff(self.points) < 0):
            raise ValueError("codebook edges must increase strictly and points must not decrease")
        inner = self.points[1:-1]
        if self.points.size > 2 and (np.any(inner < self.edges[:-1]) or np.any(inner > self.edges[1:])):
            raise ValueError("each reconstruction point must lie inside its cell")
        self.zero_cell = int(np.searchsorted(self.edges, 0.0, side="right"))

    @property
    def symmetric(self) -> bool:  # type: ignore[override]
        return bool(np.allclose(self.edges, -self.edges[::-1], rtol=0, atol=1e-12)
                    and np.allclose(self.points, -self.points[::-1], rtol=0, atol=1e-12))

    @property
    def params(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist(), "points": self.points.tolist()}

    @property
    def max_levels(self) -> int:
        return int(self.points.size)

    def quantize(self, x: Any) -> np.ndarray:
        arr = as_float_array(x)
        check_finite(arr)
        cells = np.searchsorted(self.edges, arr.astype(np.float64, copy=False), side="right")
        return (cells - self.zero_cell).astype(np.int32)

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        cells = np.asarray(q, dtype=np.int64) + self.zero_cell
        return (cells < 0) | (cells >= self.points.size)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        dtype = float_dtype(dtype)
        cells = self._check_indices(q).astype(np.int64) + self.zero_cell
        return self.points[cells].astype(dtype, copy=False)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        cells = np.searchsorted(self.edges, np.asarray(x, dtype=np.float64), side="right")
        lower = np.concatenate([[-np.inf], self.edges])[cells]
        upper = np.concatenate([self.edges, [np.inf]])[cells]
        return np.maximum(self.points[cells] - lower, upper - self.points[cells])

    @classmethod
    def examples(cls) -> list[Quantizer]:
        return [cls([-1.5, -0.5, 0.5, 1.5], [-2.0, -1.0, 0.0, 1.0, 2.0]), cls([0.0], [-0.3, 0.3]),
                cls([-0.2, 1.0], [-1.0, 0.1, 3.0])]


# --------------------------------------------------------------------------- registry

def register_quantizer(cls: type[Quantizer]) -> type[Quantizer]:
    """Register a quantizer class under its `name` (a class decorator): `make_quantizer` builds it by name,
    model containers name it, and the common checks run over its `examples()`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"quantizer name {name!r} is taken by {REGISTRY[name].__name__}")
    REGISTRY[name] = cls
    return cls


# Each class of this module is registered below; the designed codebooks (ECSQ, the centroid deadzone)
# register in greenbench.ratedistortion, where their designs live (the package imports it).
for _cls in (Midtread, Midrise, Deadzone, MuLaw, Minifloat, Affine, Codebook):
    register_quantizer(_cls)


def make_quantizer(name: str, **params: Any) -> Quantizer:
    """Build a registered quantizer by name; unknown names and bad parameters raise ValueError."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown quantizer {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for quantizer {name!r}: {exc}") from None


def quantizer_examples() -> list[Quantizer]:
    """Every registered quantizer's example configurations (what the common checks run over)."""
    return [q for cls in REGISTRY.values() for q in cls.examples()]
