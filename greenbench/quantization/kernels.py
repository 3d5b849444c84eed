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
from numba.core import compiler, types
from numba.extending import intrinsic

# Below this many elements a chunk costs more in thread hand-offs than it saves.
PARALLEL_MIN = 1 << 16


@functools.cache
def _threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=nb.get_num_threads(), thread_name_prefix="greenbench-kernel")


class _NoAliasCompiler(compiler.Compiler):
    """numba's compiler with every array argument marked `noalias` (as numba does for its parallel loops).

    Without it LLVM must assume that a store to the output may change the tables read through
    computed indices, and leaves those loops scalar (2× slower). Sound here: every kernel writes only
    an output array of its own, which `_Kernel` checks shares no memory with its inputs.
    """

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


class _Kernel:
    """One serial loop (nogil, no aliasing, cached on disk) that runs on large data in chunks on threads,
    numba's own thread count of them; `combine` makes one result of the chunks' (a sum unless given).

    Not numba's `parallel=True`: its parfor compilation took 1-3 s per loop and input dtype in every fresh
    environment, and its disk cache does not tell a parallel compilation from a serial one of the same
    function (whichever compiled first ran at every size). `elementwise` loops write their second argument
    element by element, so it is split like the first.
    """

    def __init__(self, func, combine=sum, elementwise: bool = True):
        self.serial = nb.njit(cache=True, nogil=True, pipeline_class=_NoAliasCompiler)(func)
        self.combine, self.elementwise = combine, elementwise
        self.__doc__ = func.__doc__

    def __call__(self, data, *args):
        if self.elementwise and any(isinstance(a, np.ndarray) and np.may_share_memory(a, args[0])
                                    for a in (data, *args[1:])):
            raise ValueError("a kernel's output must share no memory with its inputs (compiled as noalias)")
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
    """out[i] = rule(x[i], a, b, c, d), rule(0) for NaN or inf; returns how many inputs were NaN or inf."""
    bad = 0
    for i in range(x.size):
        v = np.float64(x[i])
        finite = math.isfinite(v)
        bad += np.int64(not finite)  # a sum and a select, not an if: the loop vectorises
        out[i] = rule(v if finite else 0.0, a, b, c, d)  # noqa: F821 - the global `_for_rule` binds
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
    """(least, greatest) of q, as int64; a ValueError for an empty q (it has neither)."""
    if q.size == 0:
        raise ValueError("an empty index array has no range")
    lo = np.int64(q[0])
    hi = np.int64(q[0])
    for i in range(q.size):
        k = np.int64(q[i])
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@functools.partial(_Kernel, elementwise=False)
def index_histogram(q, lo, bins):
    """Counts of q − lo, every one in [0, bins): one pass (a histogram per chunk, summed).

    Up to 4,096 bins, four interleaved int32 tables: a run of equal indices then does not wait on one
    counter's store, and the tables stay in L1 (2.5 ms instead of 5 ms for 20 M int8 indices on 2 threads).
    The int32 counts are added to the int64 ones every 2^30 elements, before they could overflow.
    """
    counts = np.zeros(bins, np.int64)
    ways = 4 if bins <= 4096 else 1
    part = np.zeros(ways * bins, np.int32)
    for start in range(0, q.size, 1 << 30):
        _count(q[start:start + (1 << 30)], lo, bins, ways, part)
        for way in range(ways):
            for b in range(bins):
                counts[b] += part[way * bins + b]
        part[:] = 0
    return counts


@nb.njit(inline="always")
def _count(q, lo, bins, ways, part):
    # loops from 0 and unsigned offsets: no negative-index wraparound checks (a quarter of the time at 30 k bins)
    groups = q.size // 4 if ways == 4 else 0
    for g in range(groups):
        part[np.uint64(np.int64(q[4 * g]) - lo)] += 1
        part[np.uint64(bins + np.int64(q[4 * g + 1]) - lo)] += 1
        part[np.uint64(2 * bins + np.int64(q[4 * g + 2]) - lo)] += 1
        part[np.uint64(3 * bins + np.int64(q[4 * g + 3]) - lo)] += 1
    rest = q[4 * groups:]
    for i in range(rest.size):
        part[np.uint64(np.int64(rest[i]) - lo)] += 1


# Bit access to float64 (LLVM bitcasts): minifloat rounding and values computed on bit patterns, without
# libm's frexp/ldexp calls or branches, so that their loops vectorise.

@intrinsic
def float_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def float32_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def bits_float(typingctx, b):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


@nb.njit(inline="always")
def power_of_two(k):
    """2^k for −1022 ≤ k ≤ 1023 (float64's normal range, which `Minifloat` checks its formats stay in)."""
    return bits_float(np.int64(k + 1023) << 52)


# Minifloat (thesis Eqs. 2.29–2.30). `layout` is (mantissa bits, bias, lowest and highest normal
# exponent code, subnormal mode); mode 0: no zero, 1: zero, 2: zero and subnormals. The index of a
# magnitude with bit pattern p is p if positive, −p if negative, −1 − p if negative and there is no zero.
# Every result equals the float64 reference's (rint(a·2^(m−e))·2^(e−m), ties to even; tested against it).

@nb.njit(inline="always")
def minifloat_index(v, scale, min_normal, unused, layout):
    """|x|/scale rounded to m mantissa bits on its float64 bit pattern: adding half an ulp of the format
    (less one, plus the significand's parity: ties to even) and shifting gives (exponent, mantissa) at once, a
    carry out of the mantissa being the next binade's first value. Below the least normal: the format's
    subnormal, zero or least-normal rule; beyond the largest value: saturated.
    """
    m, bias, code_lo, code_hi, mode = layout
    xs = v / scale
    a = abs(xs)
    shift = 52 - m
    bits = float_bits(a)
    odd = (bits >> shift) & 1 if m else 1  # the significand's parity: with no mantissa bits it is the implicit 1
    rounded = (bits + ((np.int64(1) << (shift - 1)) - 1) + odd) >> shift
    normal = min(rounded - ((1023 - bias) << m), ((code_hi + 1) << m) - 1)  # the largest value's pattern at most
    if mode == 2:  # subnormals: multiples of the least normal's quantum
        small = np.int64(np.rint(a * (power_of_two(m) / min_normal)))
    elif mode == 1:  # zero, else the least normal from half of it up
        small = np.int64(0) if a <= min_normal / 2 else code_lo << m
    else:  # no zero: the least normal
        small = code_lo << m
    mag = normal if a >= min_normal else small
    return -mag - np.int64(mode == 0) if xs < 0 else mag


@nb.njit(inline="always")
def minifloat_value(k, scale, min_normal, unused, layout):
    """The value of index k, built as its float64 bit pattern; NaN for an index the format never produces."""
    m, bias, code_lo, code_hi, mode = layout
    mag = k if k >= 0 else -k - np.int64(mode == 0)
    code = mag >> m
    mant = mag & ((np.int64(1) << m) - 1)
    normal = bits_float(((code - bias + 1023) << 52) | (mant << (52 - m)))  # garbage where not valid: replaced
    subnormal = mant * power_of_two(-m) * min_normal
    valid = (mag >= 0) & (code <= code_hi) & (
        (code >= code_lo) | ((code == 0) & (mode > 0) & ((mant == 0) | (mode == 2))))
    r = (normal if code >= code_lo else subnormal) if valid else math.nan
    return (-r if k < 0 else r) * scale


minifloat_indices = _for_rule(_indices_loop, minifloat_index, "minifloat_indices")
minifloat_values = _for_rule(_values_loop, minifloat_value, "minifloat_values")


# Tables for a symmetric quantizer whose |index| never decreases with |x| (built by `tabled._Tabled`):
# thresholds[r] is where rank r starts, codes[r] is its |index| (codes[0] + r where `consecutive`), and a
# bucket table keyed by the top bits of |x| (no bucket holds two thresholds) gives the rank at the bucket's
# start; one comparison finishes. An element costs two or three loads from tables in cache (one or two for
# float32 x: `step_indices_float32`) and no transcendental function.

@nb.njit(inline="always")
def _ranked_index(v, a, r, codes, sign_from, consecutive):
    """The index of x = v (a = |v|) of rank r; 0 for NaN or inf, which the loops count."""
    k = np.int64(codes[0]) + r if consecutive else np.int64(codes[np.uint64(r)])  # loop-invariant: two loops
    return (-k if (v < 0) & (a >= sign_from) else k) if a < np.inf else 0


@_Kernel
def step_indices(x, out, thresholds, codes, table, first, shift, sign_from, consecutive):
    """out[i] = the index of x[i] through the tables; returns how many inputs were NaN or inf."""
    bad = 0
    last = table.size - 1
    for i in range(x.size):
        v = np.float64(x[i])
        a = abs(v)
        r = np.uint64(table[np.uint64(min(max((float_bits(a) >> shift) - first, 0), last))])
        r += np.uint64(a >= thresholds[r + np.uint64(1)])  # unsigned: no negative-index wraparound checks
        bad += np.int64(not (a < np.inf))
        out[i] = _ranked_index(v, a, np.int64(r), codes, sign_from, consecutive)
    return bad


@_Kernel
def step_indices_float32(x, out, packed, codes, first, shift, sign_from, consecutive):
    """`step_indices` for float32 x in one table load instead of two: packed[bucket] holds the bucket's starting
    rank (high 32 bits) and the bit pattern of the least float32 ≥ the one threshold in the bucket (low 32
    bits); non-negative floats order as their bit patterns do, so one integer comparison finishes."""
    bad = 0
    last = packed.size - 1
    for i in range(x.size):
        v = x[i]
        a = abs(v)
        entry = packed[np.uint64(min(max((float_bits(np.float64(a)) >> shift) - first, 0), last))]
        r = (entry >> 32) + np.int64(np.int64(float32_bits(a)) >= (entry & 0xFFFFFFFF))
        bad += np.int64(not (a < np.inf))
        out[i] = _ranked_index(v, a, r, codes, sign_from, consecutive)
    return bad


@_Kernel
def gather(q, out, lo, table):
    """out[i] = table[q[i] − lo]; returns how many indices fell outside the table or on NaN (indices the
    quantizer never produces)."""
    bad = 0
    last = table.size - 1
    for i in range(q.size):
        k = np.int64(q[i]) - lo
        r = table[np.uint64(min(max(k, 0), last))]
        bad += np.int64((r != r) | (k < 0) | (k > last))  # counted without a branch
        out[i] = r
    return bad
