"""Common checks: invariants every registered quantizer must satisfy (scikit-learn's common-checks style).

Each registered class lists its example configurations (`examples()`); every check runs over all of
them, so a new quantizer is checked as soon as it is registered.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.quantizers import REGISTRY, Quantizer, quantizer_examples

EXAMPLES = quantizer_examples()
IDS = [f"{q.name}-{i}" for i, q in enumerate(EXAMPLES)]
DTYPES = (np.float16, np.float32, np.float64)

pytestmark = pytest.mark.property


def float_arrays(limit: float = 4.0, max_side: int = 12):
    dtype = st.sampled_from(DTYPES)
    return dtype.flatmap(lambda d: hnp.arrays(
        d, hnp.array_shapes(min_dims=1, max_dims=3, max_side=max_side),
        elements=st.floats(-limit, limit, width=np.finfo(d).bits, allow_nan=False, allow_infinity=False)))


def interior(q: Quantizer, x: np.ndarray) -> np.ndarray:
    """Points where Q is locally constant (not on a cell edge): neighbours on both sides agree."""
    x64 = x.astype(np.float64)
    return q.quantize(np.nextafter(x64, np.inf)) == q.quantize(np.nextafter(x64, -np.inf))


def test_every_registered_quantizer_has_examples():
    for name, cls in REGISTRY.items():
        assert cls.examples(), f"{name} lists no example configurations for the common checks"
        assert all(q.name == name for q in cls.examples())


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
@given(x=float_arrays())
def test_shape_and_dtype(quantizer: Quantizer, x: np.ndarray):
    q = quantizer.quantize(x)
    assert q.shape == x.shape and q.dtype.kind == "i"
    r = quantizer.dequantize(q)
    assert r.shape == x.shape and r.dtype == np.float64
    assert quantizer.reconstruct(x).dtype == x.dtype


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
@given(x=float_arrays(limit=50.0))
def test_idempotent(quantizer: Quantizer, x: np.ndarray):
    q = quantizer.quantize(x)
    np.testing.assert_array_equal(quantizer.quantize(quantizer.dequantize(q)), q)


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
@given(x=float_arrays(limit=50.0))
def test_reconstruction_is_monotone(quantizer: Quantizer, x: np.ndarray):
    xs = np.sort(x.reshape(-1).astype(np.float64))
    q = quantizer.quantize(xs)
    assert np.all(np.diff(q) >= 0), "indices must not decrease as the input grows"
    assert np.all(np.diff(quantizer.dequantize(q)) >= 0), "reconstruction must not decrease as the input grows"


@pytest.mark.parametrize("quantizer", [q for q in EXAMPLES if q.symmetric],
                         ids=[i for i, q in zip(IDS, EXAMPLES) if q.symmetric])
@given(x=float_arrays(limit=50.0))
def test_odd_symmetry(quantizer: Quantizer, x: np.ndarray):
    x = x.astype(np.float64)
    keep = interior(quantizer, x) & interior(quantizer, -x) & (x != 0)
    if not keep.any():
        return
    r_pos = quantizer.dequantize(quantizer.quantize(x[keep]))
    r_neg = quantizer.dequantize(quantizer.quantize(-x[keep]))
    # designed codebooks are symmetric up to rounding of their centroids (≤ 1e-12)
    np.testing.assert_allclose(r_neg, -r_pos, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
@given(x=float_arrays(limit=50.0))
def test_error_bound_in_granular_region(quantizer: Quantizer, x: np.ndarray):
    bound = quantizer.error_bound(x.astype(np.float64))
    if bound is None:
        pytest.skip(f"{quantizer.name} has no uniform error bound")
    err = np.abs(x.astype(np.float64) - quantizer.dequantize(quantizer.quantize(x)))
    finite = np.isfinite(bound)
    slack = 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(x[finite].astype(np.float64)))
    assert np.all(err[finite] <= bound[finite] + slack)


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
def test_distinct_outputs_at_most_levels(quantizer: Quantizer):
    if quantizer.max_levels is None:
        pytest.skip("unbounded quantizer (step given, no levels)")
    grid = np.concatenate([np.linspace(-1e4, 1e4, 200_001), np.geomspace(1e-12, 1e4, 20_000),
                           -np.geomspace(1e-12, 1e4, 20_000)])
    distinct = np.unique(quantizer.quantize(grid)).size
    assert distinct <= quantizer.max_levels
    assert np.unique(quantizer.dequantize(np.unique(quantizer.quantize(grid)))).size == distinct


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("bad, problem", [
    (np.array([0.1, np.nan]), "non-finite"),
    (np.array([np.inf, 0.0], dtype=np.float32), "non-finite"),
    (np.array([], dtype=np.float64), "empty"),
    (np.array([1, 2, 3]), "float16, float32 or float64"),
])
def test_bad_input_raises_clear_error(quantizer: Quantizer, bad: np.ndarray, problem: str):
    with pytest.raises(ValueError, match=problem):
        quantizer.quantize(bad)


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
def test_invalid_indices_rejected(quantizer: Quantizer):
    candidates = np.arange(-(2**20), 2**20 + 1, dtype=np.int64)
    invalid = candidates[quantizer.invalid_indices(candidates)]
    if invalid.size == 0:
        pytest.skip("every index in ±2^20 is valid (unbounded quantizer)")
    with pytest.raises(ValueError, match="not valid|outside"):
        quantizer.dequantize(invalid[:1])
    with pytest.raises(ValueError, match="integers"):
        quantizer.dequantize(np.array([0.0, 1.0]))


@pytest.mark.parametrize("quantizer", EXAMPLES, ids=IDS)
def test_valid_indices_are_fixed_points(quantizer: Quantizer):
    candidates = np.arange(-4096, 4097, dtype=np.int64)
    valid = candidates[~quantizer.invalid_indices(candidates)]
    np.testing.assert_array_equal(quantizer.quantize(quantizer.dequantize(valid)), valid)
