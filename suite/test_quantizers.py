"""Quantizer-specific behaviour: the thesis's equivalences, μ-law's inverse, affine's range, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.quantization.affine import Affine
from greenbench.quantization.base import make_quantizer, quantizer_examples
from greenbench.quantization.tabled import MINIFLOAT_FORMATS, Minifloat, MuLaw
from greenbench.quantization.uniform import Deadzone, Midrise, Midtread

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
vectors = hnp.arrays(np.float64, st.integers(1, 64), elements=finite)
levels = st.integers(2, 2**16)
steps = st.floats(1e-4, 10.0)


@pytest.mark.property
@pytest.mark.parametrize("delta, uniform", [(0.5, Midtread), (0.0, Midrise)], ids=["δ=0.5≡midtread", "δ=0≡midrise"])
@given(x=vectors, n=levels, xmax=st.floats(0.01, 100.0))
def test_deadzone_contains_the_uniform_quantizers(delta, uniform, x, n, xmax):
    dz, u = Deadzone(delta, levels=n, xmax=xmax), uniform(levels=n, xmax=xmax)
    np.testing.assert_array_equal(dz.quantize(x), u.quantize(x))
    np.testing.assert_array_equal(dz.reconstruct(x), u.reconstruct(x))


@pytest.mark.property
@given(x=vectors, step=steps, delta=st.floats(0.0, 0.99))
def test_deadzone_zero_bin_is_exactly_eq_2_25(x, step, delta):
    q = Deadzone(delta, step=step).quantize(x)
    np.testing.assert_array_equal(q == 0, np.abs(x) / step < delta)


def test_thesis_equations_on_hand_values():
    # Δ = 0.5: midtread rounds (ties away from zero), midrise has no zero level, deadzone δ = 0.7 widens zero
    x = np.array([-1.3, -0.25, 0.0, 0.2, 0.25, 0.36, 1.3])
    np.testing.assert_array_equal(Midtread(step=0.5).quantize(x), [-3, -1, 0, 0, 1, 1, 3])
    np.testing.assert_allclose(Midrise(step=0.5).reconstruct(x), [-1.25, -0.25, 0.25, 0.25, 0.25, 0.25, 1.25])
    np.testing.assert_array_equal(Deadzone(0.7, step=0.5).quantize(x), [-2, 0, 0, 0, 0, 1, 2])
    np.testing.assert_allclose(Deadzone(0.7, step=0.5).reconstruct(x), [-1.1, 0, 0, 0, 0, 0.6, 1.1])


def test_levels_set_the_step_like_the_thesis_grid():
    # levels 2^i over [−1, 1]: Δ = 2/2^i
    for i in (2, 8, 24):
        assert Midtread(levels=2**i).step == 2 / 2**i
    q = Midrise(levels=4)
    np.testing.assert_allclose(q.dequantize(np.array([-2, -1, 1, 2])), [-0.75, -0.25, 0.25, 0.75])
    assert q.quantize(np.array([5.0]))[0] == 2  # clipped to the outermost level


@pytest.mark.property
@given(x=hnp.arrays(np.float64, st.integers(1, 64), elements=st.floats(-2.0, 2.0)),
       mu=st.floats(0.5, 1e4), xmax=st.floats(0.1, 2.0))
def test_mulaw_expander_inverts_compressor(x, mu, xmax):
    q = MuLaw(256, mu=mu, xmax=xmax)
    inside = np.clip(x, -xmax, xmax)
    np.testing.assert_allclose(q.expand(q.compress(inside)), inside, rtol=1e-9, atol=1e-12 * xmax)
    y = np.linspace(-xmax, xmax, 101)
    np.testing.assert_allclose(q.compress(q.expand(y)), y, rtol=1e-9, atol=1e-12 * xmax)
    assert np.all(np.abs(q.compress(x)) <= xmax)


@pytest.mark.property
@given(bits=st.integers(2, 16), alpha=st.floats(-100.0, 0.0), width=st.floats(1e-3, 200.0))
def test_affine_maps_range_ends_and_keeps_zero_exact(bits, alpha, width):
    beta = alpha + width
    assume(beta >= 0.0 and beta > alpha)
    q = Affine(bits, alpha, beta)
    ends = q.quantize(np.array([alpha, beta]))
    assert ends[0] == q.qmin and ends[1] == q.qmax
    assert q.reconstruct(np.array([0.0]))[0] == 0.0
    assert q.scale == pytest.approx((beta - alpha) / (2**bits - 1))


@pytest.mark.property
@given(x=hnp.arrays(np.float64, st.integers(2, 200), elements=st.floats(-50, 50)), bits=st.integers(2, 12),
       method=st.sampled_from(["minmax", "percentile"]))
def test_affine_calibration_covers_data_and_zero(x, bits, method):
    q = Affine.calibrate(x, bits, method=method, percentile=99.0)
    assert q.alpha <= 0.0 <= q.beta
    if method == "minmax":
        assert q.alpha <= x.min() and q.beta >= x.max()
        assert np.all(np.abs(q.reconstruct(x) - x) <= q.scale / 2 * (1 + 1e-9) + 1e-12)


def test_minifloat_formats_of_table_3_5():
    assert len(MINIFLOAT_FORMATS) == 13
    half = Minifloat(5, 10)
    assert half.bias == 15 and Minifloat(4, 3).bias == 7 and Minifloat(0, 3).bias == 0
    # normalised-only 1/4/3: smallest 2^−7, largest 2^8·(2 − 2^−3), 2·16·8 levels
    q = Minifloat(4, 3)
    assert q.min_normal == 2.0**-7 and q.max_value == 2.0**8 * 1.875 and q.max_levels == 256
    np.testing.assert_array_equal(q.reconstruct(np.array([0.0, 1e-9, 1e9, -3.3])), [2**-7, 2**-7, 480.0, -3.25])


@pytest.mark.parametrize("exponent_bits, mantissa_bits, zero, dtype", [
    (5, 10, False, np.int16), (4, 3, False, np.int8), (4, 3, True, np.int8), (5, 10, True, np.int16)])
def test_minifloat_indices_number_its_levels_contiguously(exponent_bits, mantissa_bits, zero, dtype):
    """Every level once, in order: the zero-less formats' 2^(1+E+M) levels are exactly int(1+E+M)'s range."""
    q = Minifloat(exponent_bits, mantissa_bits, zero=zero)
    lo, hi = q.index_bounds
    assert q.index_dtype == dtype and (lo, hi) == ((np.iinfo(dtype).min, np.iinfo(dtype).max) if not zero
                                                    else (-np.iinfo(dtype).max, np.iinfo(dtype).max))
    k = np.arange(lo, hi + 1)
    valid = ~q.invalid_indices(k)
    values = q.dequantize(k[valid])
    assert np.all(np.diff(values) > 0) and valid.sum() == q.max_levels
    np.testing.assert_array_equal(q.quantize(values), k[valid])
    least = 0 if not zero else 1 << mantissa_bits  # the least normal's bit pattern
    assert q.quantize(np.array([q.min_normal, -q.min_normal])).tolist() == [least, -least - (not zero)]


def test_minifloat_rounds_ties_to_even():
    q = Minifloat(3, 2)  # spacing 0.25 in [1, 2)
    np.testing.assert_array_equal(q.reconstruct(np.array([1.125, 1.375, 1.625, 1.875])), [1.0, 1.5, 1.5, 2.0])


@pytest.mark.parametrize("name, params, problem", [
    ("midtread", {"levels": 1}, "levels must lie in \\[2, 2\\^62\\]"),
    ("midtread", {"levels": 2.5}, "levels must be an integer"),
    ("midrise", {}, "either levels"),
    ("midrise", {"levels": 4, "step": 0.1}, "either levels"),
    ("midrise", {"step": 0.0}, "step must be >"),
    ("deadzone", {"delta": 1.0, "levels": 8}, r"delta must lie in \[0, 1\)"),
    ("deadzone", {"delta": -0.1, "levels": 8}, "delta must lie in \\[0, 1\\)"),
    ("deadzone", {"delta": math.nan, "levels": 8}, "delta must be finite"),
    ("mulaw", {"levels": 16, "mu": 0}, "mu must be >"),
    ("minifloat", {"exponent_bits": 1, "mantissa_bits": 2, "zero": True, "specials": True}, "no normal numbers"),
    ("affine", {"bits": 8, "alpha": 0.5, "beta": 1.0}, "must contain 0"),
    ("affine", {"bits": 0, "alpha": -1.0, "beta": 1.0}, "bits must lie in"),
    ("sparkle", {}, "unknown quantizer 'sparkle'"),
    ("midtread", {"colour": 3}, "bad parameters"),
])
def test_bad_parameters_raise_clear_errors(name, params, problem):
    with pytest.raises(ValueError, match=problem):
        make_quantizer(name, **params)


def test_affine_calibration_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown calibration method"):
        Affine.calibrate(np.array([0.1, 0.2]), 8, method="mse")


HUGE = np.array([1e19, -1e19, 1e38, -1e38, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -5e-324])


@pytest.mark.parametrize("quantizer", [q for q in quantizer_examples() if q.max_levels is not None], ids=repr)
def test_finite_inputs_of_any_magnitude_reach_the_extreme_indices(quantizer):
    """Magnitudes up to the largest float64 clip to the outermost level of their sign; none wraps."""
    edge = np.array([-1e6, 1e6])  # far beyond every example's range: the outermost levels
    lo, hi = quantizer.quantize(edge)
    q = quantizer.quantize(HUGE)
    assert list(q[:6]) == [hi, lo, hi, lo, hi, lo]
    values = quantizer.dequantize(quantizer.quantize(HUGE[:6]))
    assert np.all(np.sign(values[values != 0]) == np.sign(HUGE[:6][values != 0]))


def test_an_unbounded_quantizer_refuses_indices_beyond_int64_naming_the_value():
    q = Midtread(step=1e-3)
    assert q.quantize(np.array([4e18 * 1e-3]))[0] == 4_000_000_000_000_000_000  # just under 2^62: kept exactly
    with pytest.raises(ValueError, match=r"value np.float64\(-1e\+19\) .* does not fit in int64"):
        q.quantize(np.array([0.5, -1e19]))


@pytest.mark.parametrize("quantizer", quantizer_examples(), ids=repr)
def test_big_endian_input_gives_the_native_result(quantizer):
    """Arrays from a file or another machine ('>f4', '>i8') are the same numbers: same indices, same values."""
    x = np.linspace(-2.0, 2.0, 41)
    for dtype in (">f4", ">f8"):
        native = x.astype(dtype).astype(dtype[1:])
        q = quantizer.quantize(x.astype(dtype))
        np.testing.assert_array_equal(q, quantizer.quantize(native))
        np.testing.assert_array_equal(quantizer.dequantize(q.astype(">i8")), quantizer.dequantize(q))
