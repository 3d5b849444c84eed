"""The compiled minifloat and μ-law kernels against the float64 numpy formulas they replace (thesis Eqs. 2.27–2.30).

Every path of each quantizer — minifloat's rule on bit patterns; μ-law's per-element rule and the
threshold tables used on large inputs — must give the numpy reference's indices and values to the
last bit, at every edge between levels and the floats either side of it (where a wrong rounding or
table would show), on Laplacian weights of several scales, and on fuzzed inputs. The minifloat
reference below is the frexp/ldexp formula the kernels replaced; μ-law's is its own `compress`/`expand`
around a midtread.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.quantization.tabled import MINIFLOAT_FORMATS, Minifloat, MuLaw
from greenbench.quantization.uniform import Midtread


def minifloat_reference_quantize(q: Minifloat, x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        xs = x.astype(np.float64) / q.scale
        a = np.abs(xs)
        m, lo, hi = q.mantissa_bits, q._code_lo - q.bias, q._code_hi - q.bias
        quantum = np.ldexp(1.0, np.clip(np.frexp(a)[1].astype(np.int64) - 1, lo, hi) - m)
        v = np.rint(a / quantum) * quantum
    below = v < q.min_normal
    if q.zero and not q.subnormals:
        v = np.where(below, np.where(a <= q.min_normal / 2, 0.0, q.min_normal), v)
    elif not q.zero:
        v = np.where(below, q.min_normal, v)
    v = np.minimum(v, q.max_value)
    exp = np.frexp(v)[1].astype(np.int64) - 1
    normal = v >= q.min_normal
    scale = np.where(normal, np.ldexp(1.0, m - exp), 1.0 / math.ldexp(1.0, 1 - q.bias - m))
    mag = (np.where(normal, exp + q.bias, 0) << m) + np.rint(v * scale).astype(np.int64) - np.where(normal, 2**m, 0)
    return np.where(xs < 0, -mag - (not q.zero), mag)


def minifloat_reference_values(q: Minifloat, k: np.ndarray) -> np.ndarray:
    k = k.astype(np.int64)
    mag = np.where(k >= 0, k, -k - (not q.zero))
    code, mant = mag >> q.mantissa_bits, mag & (2**q.mantissa_bits - 1)
    v = np.where(code >= q._code_lo, np.ldexp(1.0 + mant / 2.0**q.mantissa_bits, code - q.bias),
                 mant * math.ldexp(1.0, 1 - q.bias - q.mantissa_bits))
    return np.where(k < 0, -v, v) * q.scale


def reference_indices(q, x: np.ndarray) -> np.ndarray:
    if isinstance(q, MuLaw):
        return Midtread(levels=q.levels, xmax=q.xmax).quantize(q.compress(x))
    return minifloat_reference_quantize(q, x)


def reference_values(q, k: np.ndarray) -> np.ndarray:
    if isinstance(q, MuLaw):
        return q.expand(Midtread(levels=q.levels, xmax=q.xmax).dequantize(k))
    return minifloat_reference_values(q, k)


QUANTIZERS = ([Minifloat(e, m) for e, m in MINIFLOAT_FORMATS] + Minifloat.examples()[len(MINIFLOAT_FORMATS):]
              + [Minifloat(4, 3, zero=True, scale=1e-3), Minifloat(5, 2, bias=3, zero=True, subnormals=True)]
              + [Minifloat(3, 0, zero=True), Minifloat(4, 0, zero=True, subnormals=True), Minifloat(2, 1)]  # m ≤ 1
              + [MuLaw(2**i, xmax=x) for i in (2, 5, 8, 12, 16) for x in (1.0, 4.0)] + MuLaw.examples()[2:])


def _paths(q, x: np.ndarray) -> list[np.ndarray]:
    """The indices of x by every path of q's quantize: μ-law's tables and its rule, minifloat's rule."""
    if isinstance(q, Minifloat):
        return [q.quantize(x)]
    return [q._indices(x, tabled=tabled) for tabled in (True, False)]


def _edges(q) -> np.ndarray:
    """Where the index changes: μ-law's table thresholds (a table must have been built), minifloat's midpoints
    between consecutive values."""
    if isinstance(q, MuLaw):
        q._indices(np.zeros(1), tabled=True)
        assert q._tables[2].size, "no table was built"
        return q._tables[0][1:-1]
    k = np.arange(q.index_bounds[1] + 1)
    values = np.unique(q.dequantize(k[~q.invalid_indices(k)]))
    return np.concatenate([values, (values[:-1] + values[1:]) / 2])


@pytest.mark.parametrize("q", QUANTIZERS, ids=repr)
def test_every_path_gives_the_reference_bit_for_bit(q):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(scale=s, size=20_000) for s in (1e-4, 0.01, 0.05, 0.5, 5.0)]
                       + [np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1e300, -1e300, q.xmax if isinstance(q, MuLaw)
                                    else q.max_value * q.scale])])
    edges = _edges(q)
    edges = np.concatenate([edges, np.nextafter(edges, 0.0), np.nextafter(edges, np.inf)])
    x = np.concatenate([x, edges, -edges])
    expected = reference_indices(q, x)
    for indices in _paths(q, x):
        np.testing.assert_array_equal(indices, expected)
    with np.errstate(over="ignore"):  # float32 inputs (μ-law's tables for them compare float32 bit patterns)
        edges32 = edges.astype(np.float32)
    edges32 = edges32[np.isfinite(edges32)]
    x32 = np.concatenate([x[np.abs(x) < 1e38].astype(np.float32), edges32, np.nextafter(edges32, np.float32(0)),
                          np.nextafter(edges32, np.float32(np.inf))])
    x32 = np.concatenate([x32, -x32])
    for indices in _paths(q, x32):
        np.testing.assert_array_equal(indices, reference_indices(q, x32))
    values = reference_values(q, expected)
    for dtype in (np.float64, np.float32, np.float16):
        if np.max(np.abs(values)) > np.finfo(dtype).max:  # a dtype that cannot hold them is refused, not inf
            with pytest.raises(ValueError, match=f"beyond {np.dtype(dtype)}'s largest finite"):
                q.dequantize(expected, dtype)
            continue
        np.testing.assert_array_equal(q.dequantize(expected, dtype).view(np.uint8),
                                      values.astype(dtype).view(np.uint8))


@pytest.mark.property
@pytest.mark.parametrize("q", [Minifloat(4, 3), Minifloat(1, 2), Minifloat(3, 2, zero=True), MuLaw(2**8)], ids=repr)
@given(x=hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), st.integers(1, 200),
                    elements=st.floats(-1e4, 1e4, width=16, allow_subnormal=True)))
def test_fuzzed_inputs_give_the_reference(q, x):
    expected = reference_indices(q, x)
    for indices in _paths(q, x):
        np.testing.assert_array_equal(indices, expected)


def test_parallel_kernels_on_large_data_give_the_small_data_results():
    """Large data runs in chunks on threads: indices, counts of bad inputs, ranges and histograms are those of the
    same data taken 1,000 elements at a time (chunk edges fall inside a run of 1,000)."""
    from greenbench.quantization import kernels
    from greenbench.quantization.uniform import Deadzone

    x = np.random.default_rng(8).laplace(scale=0.05, size=300_007)
    x[[0, -1, 65_536]] = (np.nan, np.inf, -np.inf)
    q = Deadzone(0.7, levels=255)
    whole = np.empty(x.size, np.int8)
    assert kernels.deadzone_indices(x, whole, q.step, 0.7, q.qmax, 0) == 3
    pieces = [q.quantize(np.nan_to_num(x[i:i + 1000], nan=0.0, posinf=0.0, neginf=0.0))
              for i in range(0, x.size, 1000)]
    np.testing.assert_array_equal(whole, np.concatenate(pieces))
    assert tuple(int(v) for v in kernels.index_range(whole)) == (int(whole.min()), int(whole.max()))
    lo, hi = int(whole.min()), int(whole.max())
    np.testing.assert_array_equal(kernels.index_histogram(whole, np.int64(lo), hi - lo + 1),
                                  np.bincount(whole.astype(np.int64) - lo))
    clean = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    for q in (MuLaw(2**8), Minifloat(4, 3)):  # μ-law's tables and gather; minifloat's bit-pattern rules
        indices = q.quantize(clean)
        np.testing.assert_array_equal(indices, reference_indices(q, clean))
        np.testing.assert_array_equal(q.dequantize(indices), reference_values(q, indices))


@pytest.mark.parametrize("size", [1, 3, 4, 5, 300_003])
@pytest.mark.parametrize("bins", [1, 7, 4096, 4097, 40_000])
def test_index_histogram_counts_every_index(size, bins):
    """Both paths (four interleaved tables up to 4,096 bins, one beyond), sizes that leave 1-3 elements after the
    groups of four, and chunks on threads: counts equal numpy's bincount."""
    from greenbench.quantization import kernels

    rng = np.random.default_rng(size + bins)
    lo = -(bins // 2)
    q = (rng.integers(0, bins, size) + lo).astype(np.int32)
    q[: size // 3] = lo + bins - 1  # a run of one index (one counter's stores in a row)
    np.testing.assert_array_equal(kernels.index_histogram(q, np.int64(lo), bins),
                                  np.bincount(q.astype(np.int64) - lo, minlength=bins))


def test_kernels_refuse_an_output_that_overlaps_their_inputs():
    """The loops are compiled as noalias: an output overlapping an input would give undefined results, so it is
    refused before the loop runs."""
    from greenbench.quantization import kernels

    x = np.zeros(16)
    with pytest.raises(ValueError, match="share no memory"):
        kernels.uniform_values(x.view(np.int64), x, 0.1, 0.0, np.int64(7), True)
    table = np.zeros(4)
    with pytest.raises(ValueError, match="share no memory"):
        kernels.gather(np.zeros(4, np.int64), table, np.int64(0), table)


@pytest.mark.property
@given(exponent_bits=st.integers(0, 6), mantissa_bits=st.integers(0, 6), bias_shift=st.integers(-4, 4),
       mode=st.sampled_from([{}, {"zero": True}, {"subnormals": True}, {"zero": True, "specials": True}]),
       scale=st.sampled_from([1.0, 0.375, 1e-3]))
def test_any_minifloat_format_rounds_like_the_reference(exponent_bits, mantissa_bits, bias_shift, mode, scale):
    """Formats beyond the seed's: every exponent and mantissa width to 6 bits, shifted biases, each zero/subnormal
    mode; at every edge between levels, the floats either side, and Laplacian values."""
    try:
        q = Minifloat(exponent_bits, mantissa_bits, 2 ** max(exponent_bits - 1, 0) - 1 + bias_shift, scale=scale,
                      **mode)
    except ValueError:  # a format with no normal numbers (specials on a 1-bit exponent)
        return
    edges = _edges(q)
    x = np.concatenate([edges, np.nextafter(edges, 0.0), np.nextafter(edges, np.inf),
                        np.random.default_rng(exponent_bits).laplace(scale=q.max_value * scale, size=500)])
    x = np.concatenate([x, -x])
    np.testing.assert_array_equal(q.quantize(x), reference_indices(q, x))
    k = q.quantize(x)
    np.testing.assert_array_equal(q.dequantize(k).view(np.int64), reference_values(q, k).view(np.int64))


def test_the_range_of_no_indices_is_an_error_not_a_read_past_the_array():
    from greenbench.quantization import kernels

    for dtype in (np.int8, np.int64):
        with pytest.raises(ValueError, match="empty index array"):
            kernels.index_range(np.empty(0, dtype))
