"""Fused loops for the hot paths (numba), on threads for large data: one pass per operation over the data.

Each quantize kernel also counts the non-finite inputs it met, so that validation costs no extra
pass; each dequantize kernel counts indices outside the quantizer's range. Callers raise on a
non-zero count. Arithmetic is float64 whatever the input dtype, so results do not depend on it.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from types import FunctionType

import numba as nb
import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import types
from numba.extending import intrinsic

# Below this many elements a chunk costs more in thread hand-offs than it saves.
PARALLEL_MIN = 1 << 16


@functools.cache
def _threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=nb.get_num_threads(), thread_name_prefix="greenbench-kernel")


class _Kernel:
    """One serial loop (nogil, cached on disk) that runs on large data in chunks on threads, numba's own
    thread count of them; `combine` makes one result of the chunks' (a sum unless given).

    Not numba's `parallel=True`: its parfor compilation took 1-3 s per loop and input dtype in every fresh
    environment, and its disk cache does not tell a parallel compilation from a serial one of the same
    function (whichever compiled first ran at every size). `elementwise` loops write their second argument
    element by element, so it is split like the first.
    """

    def __init__(self, func, combine=sum, elementwise: bool = True):
        self.serial = nb.njit(cache=True, nogil=True)(func)
        self.combine, self.elementwise = combine, elementwise
        self.__doc__ = func.__doc__

    def __call__(self, data, *args):
        chunks = min(nb.get_num_threads(), data.size // PARALLEL_MIN)
        if chunks <= 1:
            return self.serial(data, *args)
        ends = np.linspace(0, data.size, chunks + 1).astype(np.int64)
        if self.elementwise:
            out, rest = args[0], args[1:]
            jobs = [(data[a:b], out[a:b], *rest) for a, b in zip(ends[:-1], ends[1:])]
        else:
            jobs = [(data[a:b], *args) for a, b in zip(ends[:-1], ends[1:])]
        # submit and wait, not Executor.map: a Ctrl-C inside map's generator left a traceback frame without a line
        # number, on which pytest's interrupt report crashed (exit 1 instead of 2)
        futures = [_threads().submit(self.serial, *job) for job in jobs]
        return self.combine([future.result() for future in futures])


# Two loops serve every kernel-backed quantizer: one applies a per-element index rule and counts the
# non-finite inputs, the other a value rule and counts the indices it rejects. Each rule gets its own copy
# of the loop, with the rule bound as the loop's global `rule` and a name of its own (`_for_rule`), so the
# loop is specialised to it and numba caches it on disk like the other kernels. Passing the rule as an
# argument instead would put a dispatcher in the signature, which numba's cache cannot key: every process
# recompiled every loop (0.2-1.4 s each). Choosing the rule by a flag inside one loop would cost about half
# again the time of every call.

@nb.njit(inline="always")
def midtread_rule(t, delta):
    """Eq. 2.21, round(t) with ties away from zero (t = |X|/Δ)."""
    f = math.floor(t)
    return np.int64(f) + (1 if t - f >= 0.5 else 0)


@nb.njit(inline="always")
def midrise_rule(t, delta):
    """Eq. 2.23, ⌈t⌉ taken as ⌊t⌋ + 1 (bins [kΔ, (k+1)Δ)), so that X = 0 maps to +1 (s(0) = +1)."""
    return np.int64(math.floor(t)) + 1


@nb.njit(inline="always")
def deadzone_rule(t, delta):
    """Eq. 2.25: 0 if t < δ, else ⌊t − δ⌋ + 1."""
    return np.int64(0) if t < delta else np.int64(math.floor(t - delta)) + 1


@nb.njit(inline="always")
def uniform_index(v, step, delta, qmax, magnitude_rule):
    """s(X)·min(rule(|X|/Δ), qmax) for one of the magnitude rules above.

    Magnitudes at or beyond qmax + 1 steps are clipped in floating point, before any integer cast:
    casting a float beyond int64 would wrap (1e19 would land on a small index of either sign).
    """
    t = abs(v) / step
    q = qmax if t >= qmax + 1.0 else min(magnitude_rule(t, delta), qmax)
    return -q if v < 0 else q


@nb.njit(inline="always")
def midtread_index(v, step, delta, qmax, unused):
    return uniform_index(v, step, delta, qmax, midtread_rule)


@nb.njit(inline="always")
def midrise_index(v, step, delta, qmax, unused):
    return uniform_index(v, step, delta, qmax, midrise_rule)


@nb.njit(inline="always")
def deadzone_index(v, step, delta, qmax, unused):
    return uniform_index(v, step, delta, qmax, deadzone_rule)


@nb.njit(inline="always")
def uniform_value(k, step, offset, qmax, allow_zero):
    """X̂ = s(q)·Δ·(|q| + offset), 0 for q = 0: Eqs. 2.22 (offset 0), 2.24 (−½), 2.26 (δ − ½); NaN if invalid."""
    a = abs(k)
    if a > qmax or (k == 0 and not allow_zero):
        return math.nan
    if k == 0:
        return 0.0
    r = step * (a + offset)
    return -r if k < 0 else r


@nb.njit(inline="always")
def affine_index(v, scale, zero_point, qmin, qmax):
    """Seed 003: Q(r) = Int(r/S) − Z with Int rounding half up, clipped to [qmin, qmax].

    The clipping is decided in floating point before the integer cast, which would wrap beyond int64.
    """
    f = v / scale + 0.5
    if f >= qmax + zero_point:
        return qmax
    if f < qmin + zero_point + 1.0:
        return qmin
    return np.int64(math.floor(f)) - zero_point


@nb.njit(inline="always")
def affine_value(k, scale, zero_point, qmin, qmax):
    """r̂ = S·(q + Z); NaN outside [qmin, qmax]."""
    return scale * (k + zero_point) if qmin <= k <= qmax else math.nan


def _indices_loop(x, out, a, b, c, d):
    """out[i] = rule(x[i], a, b, c, d); returns how many inputs were NaN or inf."""
    bad = 0
    for i in range(x.size):
        v = np.float64(x[i])
        if math.isfinite(v):
            out[i] = rule(v, a, b, c, d)  # noqa: F821 - the global `_for_rule` binds
        else:
            bad += 1
            out[i] = 0
    return bad


def _values_loop(q, out, a, b, c, d):
    """out[i] = rule(q[i], a, b, c, d); returns how many indices the rule rejected (NaN, left in out)."""
    bad = 0
    for i in range(q.size):
        r = rule(np.int64(q[i]), a, b, c, d)  # noqa: F821 - the global `_for_rule` binds
        bad += np.int64(r != r)  # NaN; a sum, not an if, keeps the loop vectorised (1.6× faster)
        out[i] = r
    return bad


def _for_rule(loop, rule, name: str) -> _Kernel:
    """A copy of `loop` that sees `rule` as its global `rule`, named `name` (numba's disk cache keeps a
    function's entries by its name)."""
    copy = FunctionType(loop.__code__, {**loop.__globals__, "rule": rule}, name, loop.__defaults__, loop.__closure__)
    copy.__qualname__, copy.__module__, copy.__doc__ = name, loop.__module__, loop.__doc__
    return _Kernel(copy)


midtread_indices = _for_rule(_indices_loop, midtread_index, "midtread_indices")
midrise_indices = _for_rule(_indices_loop, midrise_index, "midrise_indices")
deadzone_indices = _for_rule(_indices_loop, deadzone_index, "deadzone_indices")
affine_indices = _for_rule(_indices_loop, affine_index, "affine_indices")
uniform_values = _for_rule(_values_loop, uniform_value, "uniform_values")
affine_values = _for_rule(_values_loop, affine_value, "affine_values")


def _range_of_ranges(ranges):
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


@functools.partial(_Kernel, combine=_range_of_ranges, elementwise=False)
def index_range(q):
    """(least, greatest) of q, as int64."""
    lo = np.int64(q[0])
    hi = np.int64(q[0])
    for i in range(q.size):
        k = np.int64(q[i])
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@functools.partial(_Kernel, elementwise=False)
def index_histogram(q, lo, bins):
    """Counts of q − lo in [0, bins): one pass (a histogram per chunk, summed)."""
    counts = np.zeros(bins, np.int64)
    for i in range(q.size):
        counts[q[i] - lo] += 1
    return counts


# Bit access to float64 (LLVM bitcasts): exponents and powers of two without libm's frexp/ldexp calls.

@intrinsic
def float_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, b):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


@nb.njit(inline="always")
def exponent_of(a):
    """frexp(a)[1] − 1 for a ≥ 0: ⌊log2 a⌋ (−1 for 0, as frexp gives)."""
    biased = (float_bits(a) >> 52) & 0x7FF
    return biased - 1023 if biased != 0 else math.frexp(a)[1] - 1  # float64 subnormals and 0: rare


@nb.njit(inline="always")
def power_of_two(k):
    """ldexp(1.0, k)."""
    return bits_float(np.int64(k + 1023) << 52) if -1022 <= k <= 1023 else math.ldexp(1.0, k)


# Minifloat (thesis Eqs. 2.29–2.30). `layout` is (mantissa bits, bias, lowest and highest normal
# exponent code, subnormal mode, index offset); mode 0: no zero, 1: zero, 2: zero and subnormals.
# Every result equals the float64 reference's: scalings by powers of two are exact, rint is ties-to-even.

@nb.njit(inline="always")
def minifloat_index(v, scale, min_normal, max_value, layout):
    m, bias, code_lo, code_hi, mode, offset = layout
    xs = v / scale
    a = abs(xs)
    if a >= max_value:  # saturates (an input that overflows to inf too)
        r = max_value
    else:
        e = min(max(exponent_of(a), code_lo - bias), code_hi - bias)
        r = min(np.rint(a * power_of_two(m - e)) * power_of_two(e - m), max_value)
        if r < min_normal:
            if mode == 1:
                r = 0.0 if a <= min_normal / 2 else min_normal
            elif mode == 0:
                r = min_normal
    if r >= min_normal:
        e = exponent_of(r)
        mag = ((e + bias) << m) + np.int64(np.rint(r * power_of_two(m - e))) - (np.int64(1) << m) + offset
    else:  # zero or a subnormal: its multiple of the subnormal quantum
        mag = np.int64(np.rint(r * (1.0 / power_of_two(1 - bias - m)))) + offset
    return -mag if xs < 0 else mag


@nb.njit(inline="always")
def minifloat_value(k, scale, min_normal, max_value, layout):
    """The value of index k, or NaN for an index the format never produces."""
    m, bias, code_lo, code_hi, mode, offset = layout
    mag = abs(k) - offset
    code = mag >> m
    mant = mag & ((np.int64(1) << m) - 1)
    if mag < 0 or code > code_hi:
        return math.nan
    if code >= code_lo:
        r = (1.0 + mant * power_of_two(-m)) * power_of_two(code - bias)
    elif code == 0 and mode > 0 and (mant == 0 or mode == 2):
        r = mant * power_of_two(1 - bias - m)
    else:
        return math.nan
    return (-r if k < 0 else r) * scale


minifloat_indices = _for_rule(_indices_loop, minifloat_index, "minifloat_indices")
minifloat_values = _for_rule(_values_loop, minifloat_value, "minifloat_values")


# Tables for a symmetric quantizer whose |index| never decreases with |x| (built by `quantizers._Tabled`):
# thresholds[r] is where rank r starts, codes[r] is its |index|, and a bucket table keyed by the top
# bits of |x| (no bucket holds two thresholds) gives the rank at the bucket's start; one comparison
# finishes. An element costs two loads and no transcendental function.

# numba's own parallel loop, not a `_Kernel`: its code for this loop runs twice as fast on one thread as
# the plain loop's (the threshold tables are used on large inputs only, so small calls are rare here).
@nb.njit(parallel=True, cache=True, nogil=True)
def step_indices(x, out, thresholds, codes, table, first, shift, sign_from):
    """out[i] = the index of x[i] through the tables; returns how many inputs were NaN or inf."""
    bad = 0
    last = table.size - 1
    for i in nb.prange(x.size):
        v = np.float64(x[i])
        a = abs(v)
        r = table[min(max((float_bits(a) >> shift) - first, 0), last)]
        r += a >= thresholds[r + 1]
        k = codes[r]
        if a < np.inf:
            out[i] = -k if (v < 0 and a >= sign_from) else k
        else:
            bad += 1
            out[i] = 0
    return bad


@_Kernel
def gather(q, out, lo, table):
    """out[i] = table[q[i] − lo]; returns how many were NaN (indices the quantizer never produces)."""
    bad = 0
    for i in range(q.size):
        r = table[q[i] - lo]
        bad += np.int64(r != r)  # NaN, counted without a branch
        out[i] = r
    return bad
