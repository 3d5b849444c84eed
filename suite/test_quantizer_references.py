"""Cross-checks against references nobody here wrote: numpy float16, ml_dtypes float8, scipy's entropy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from greenbench.coding.entropy import entropy_bits
from greenbench.quantization.tabled import Minifloat

IEEE = {"zero": True, "subnormals": True, "specials": True}
# numpy rounds float64 to float16 directly; ml_dtypes goes through float32 (a double rounding near
# ties for float64 input), so the float8 references are fed float32, which they round once.
REFERENCES = [
    pytest.param(Minifloat(5, 10, **IEEE), np.float16, np.float64, id="1/5/10=float16"),
    pytest.param(Minifloat(4, 3, **IEEE), ml_dtypes.float8_e4m3, np.float32, id="1/4/3=float8_e4m3"),
    pytest.param(Minifloat(5, 2, **IEEE), ml_dtypes.float8_e5m2, np.float32, id="1/5/2=float8_e5m2"),
]


def _defined(reference: np.ndarray) -> np.ndarray:
    """Where the reference type gives a finite value (it overflows to inf where we saturate)."""
    return np.isfinite(reference.astype(np.float64))


@pytest.mark.parametrize("quantizer, dtype, source", REFERENCES)
def test_every_representable_value_and_midpoint(quantizer: Minifloat, dtype, source):
    # all finite values of the reference type, and the midpoints between neighbours (the tie cases)
    bits = np.arange(2 ** (8 * np.dtype(dtype).itemsize), dtype=np.uint32)
    values = bits.astype(np.uint16 if np.dtype(dtype).itemsize == 2 else np.uint8).view(dtype).astype(np.float64)
    values = np.unique(values[np.isfinite(values)])
    midpoints = ((values[:-1] + values[1:]) / 2).astype(source)
    x = np.concatenate([values.astype(source), midpoints, np.nextafter(midpoints, source(np.inf)),
                        np.nextafter(midpoints, source(-np.inf))])
    reference = x.astype(dtype)
    ok = _defined(reference)
    np.testing.assert_array_equal(quantizer.reconstruct(x[ok]), reference[ok].astype(np.float64))


@pytest.mark.property
@pytest.mark.parametrize("quantizer, dtype, source", REFERENCES)
@given(x=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-7e4, 7e4, allow_nan=False)))
def test_random_values_round_like_reference(quantizer: Minifloat, dtype, source, x):
    x = x.astype(source)
    with np.errstate(over="ignore"):
        reference = x.astype(dtype)
    ok = _defined(reference)
    if not ok.any():
        return
    np.testing.assert_array_equal(quantizer.reconstruct(x[ok]), reference[ok].astype(np.float64))


@pytest.mark.property
@given(q=hnp.arrays(np.int64, st.integers(1, 500), elements=st.integers(-300, 300)))
def test_entropy_equals_scipy(q):
    _, counts = np.unique(q, return_counts=True)
    assert entropy_bits(q) == pytest.approx(stats.entropy(counts, base=2), abs=1e-12)
