"""The compiled minifloat and μ-law kernels against the float64 numpy formulas they replace (thesis Eqs. 2.27–2.30).

Both paths of each quantizer — the per-element rule and the threshold tables used on large inputs —
must give the numpy reference's indices and values to the last bit, at every table threshold and the
float just below it (where a wrong table would show), on Laplacian weights of several scales, and on
fuzzed inputs. The minifloat reference below is the implementation the kernels replaced; μ-law's is
its own `compress`/`expand` around a midtread.
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
    return np.where(xs < 0, -(mag + q._offset), mag + q._offset)


def minifloat_reference_values(q: Minifloat, k: np.ndarray) -> np.ndarray:
    mag = np.abs(k.astype(np.int64)) - q._offset
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
              + [MuLaw(2**i, xmax=x) for i in (2, 5, 8, 12, 16) for x in (1.0, 4.0)] + MuLaw.examples()[2:])


def _both_paths(q, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dtype = q.quantize(x[:1]).dtype
    return (q._indices(x, np.empty(x.size, dtype), tabled=True), q._indices(x, np.empty(x.size, dtype), tabled=False))


@pytest.mark.parametrize("q", QUANTIZERS, ids=repr)
def test_tables_and_rule_give_the_reference_bit_for_bit(q):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(scale=s, size=20_000) for s in (1e-4, 0.01, 0.05, 0.5, 5.0)]
                       + [np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1e300, -1e300, q.xmax if isinstance(q, MuLaw)
                                    else q.max_value * q.scale])])
    tabled, _ = _both_paths(q, x[:1])
    thresholds = q._tables[0][1:-1]
    assert q._tables[2].size, "no table was built"
    edges = np.concatenate([thresholds, np.nextafter(thresholds, 0.0)])
    x = np.concatenate([x, edges, -edges])
    expected = reference_indices(q, x)
    tabled, rule = _both_paths(q, x)
    np.testing.assert_array_equal(tabled, expected)
    np.testing.assert_array_equal(rule, expected)
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
    tabled, rule = _both_paths(q, x)
    np.testing.assert_array_equal(tabled, expected)
    np.testing.assert_array_equal(rule, expected)


def test_serial_and_parallel_kernels_keep_separate_disk_caches():
    """numba keys its disk cache by function name, not by `parallel`: a shared entry would run whichever variant
    compiled first at every size (the serial histogram and gather on 20 M int8 indices, 2-4 times slower)."""
    from numba.core.caching import FunctionCache

    from greenbench.quantization import kernels

    cached = [k for k in vars(kernels).values()
              if isinstance(k, kernels._Kernel) and isinstance(k.serial._cache, FunctionCache)]
    assert {"gather", "step_indices", "index_range", "index_histogram"} <= {k.serial.py_func.__name__ for k in cached}
    files = [variant._cache._cache_file._index_name for k in cached for variant in (k.serial, k.parallel)]
    assert len(set(files)) == len(files), f"kernel variants share disk cache entries: {sorted(files)}"
