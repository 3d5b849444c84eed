"""Common checks: invariants every registered quantizer must satisfy (scikit-learn's common-checks style).

Each registered class lists its example configurations (`examples()`); every check of the public
`greenbench.checks` runs over all of them through `parametrize_with_checks` — the same API users
check their own quantizers with — so a new quantizer is checked as soon as it is registered.
"""

from __future__ import annotations

import numpy as np
import pytest

from greenbench.checks import CHECKS, FunctionQuantizer, check_quantizer, checks_for, parametrize_with_checks
from greenbench.quantization.base import REGISTRY, quantizer_examples
from greenbench.quantization.uniform import Midtread

pytestmark = pytest.mark.property


def test_every_registered_quantizer_has_examples():
    for name, cls in REGISTRY.items():
        assert cls.examples(), f"{name} lists no example configurations for the common checks"
        assert all(q.name == name for q in cls.examples())


@parametrize_with_checks(quantizer_examples())
def test_common_checks(quantizer, check):
    check(quantizer)


def _fake_int8(scale: float = 0.1):
    """A PyTorch-style symmetric int8 fake quantizer, as a user would wrap it."""
    return FunctionQuantizer(lambda x: np.clip(np.round(x / scale), -127, 127).astype(np.int64),
                             lambda q: q * scale, "fake-int8", levels=255, symmetric=True,
                             error_bound=lambda x: np.where(np.abs(x) <= 127.5 * scale, scale / 2, np.inf),
                             valid=lambda q: np.abs(q) <= 127, index_bounds=(-127, 127))


def test_a_correct_user_quantizer_passes_every_check():
    quantizer = _fake_int8()
    assert checks_for(quantizer) == list(CHECKS)  # it declares everything, so everything is checked
    check_quantizer(quantizer)


@pytest.mark.parametrize("broken, failing_check", [
    (FunctionQuantizer(lambda x: np.round(x * 4).astype(np.int64), lambda q: q / 4 + (q % 2) * 0.3, "odd-offset"),
     "idempotent"),
    (FunctionQuantizer(lambda x: -np.round(x).astype(np.int64), lambda q: -q * 1.0, "decreasing"), "monotone"),
    (FunctionQuantizer(lambda x: np.round(x).astype(np.int64), lambda q: q * 1.0, "too-many-levels", levels=16),
     "level_count"),
    (FunctionQuantizer(lambda x: np.floor(x).astype(np.int64), lambda q: q * 1.0, "floor", symmetric=True),
     "odd_symmetry"),
    (FunctionQuantizer(lambda x: np.round(x).astype(np.int64), lambda q: q * 1.0, "loose-bound",
                       error_bound=lambda x: np.full(np.shape(x), 0.25)), "error_bound"),
    (FunctionQuantizer(lambda x: np.clip(np.round(x), -127, 127).astype(np.int64), lambda q: q * 1.0,
                       "loose-index-bounds", valid=lambda q: np.abs(q) <= 127, index_bounds=(-200, 200)),
     "narrow_indices"),
], ids=lambda v: v if isinstance(v, str) else v.name)
def test_a_broken_user_quantizer_fails_with_the_check_named(broken, failing_check):
    with pytest.raises(AssertionError, match=rf"check {failing_check} failed for .*\n?.*") as failure:
        check_quantizer(broken)
    if failing_check not in ("level_count", "narrow_indices"):  # generated inputs come with a shrunk counterexample
        assert "minimal counterexample: x = np.array(" in str(failure.value)


def _flaky(rate: float):
    rng = np.random.default_rng(5)
    return FunctionQuantizer(lambda x: np.round(x / 0.1).astype(np.int64) + (rng.random() < rate),
                             lambda q: q * 0.1, "flaky")


def test_a_quantizer_wrong_on_two_percent_of_calls_fails_deterministic():
    with pytest.raises(AssertionError, match="check deterministic failed.*gave other indices"):
        check_quantizer(_flaky(0.02))


def test_a_quantizer_whose_indices_wrap_in_int16_fails():
    """Step 0.1 in int16 wraps at 3276.8: inputs over the quantizer's scale, not just ±50, find it."""
    wraps = FunctionQuantizer(lambda x: np.round(x / 0.1).astype(np.int16), lambda q: q * 0.1, "int16-indices")
    with pytest.raises(AssertionError, match="check (idempotent|monotone|shape_and_dtype) failed"):
        check_quantizer(wraps)


def test_a_quantizer_wider_than_its_index_bounds_fails_narrow_indices():
    class WideMidtread(Midtread):
        def quantize(self, x):
            return super().quantize(x).astype(np.int64)

    with pytest.raises(AssertionError, match="check narrow_indices failed.*indices are int64; the narrowest dtype "
                                             r"for \[-7, 7\] is int8"):
        check_quantizer(WideMidtread(levels=15))


def test_a_user_quantizer_beyond_its_declared_index_bounds_is_refused():
    outside = FunctionQuantizer(lambda x: np.round(x).astype(np.int64), lambda q: q * 1.0, "unclipped",
                                index_bounds=(-3, 3))
    with pytest.raises(ValueError, match=r"indices from -9 to 9, beyond the declared index_bounds \[-3, 3\]"):
        outside.quantize(np.array([-9.0, 9.0]))


@pytest.mark.parametrize("delay_s, limits, fragment", [
    (60.0, {"deadline_s": 0.2}, "did not return within its deadline of 0.2 s, on float64 array"),
    (0.05, {"budget_s": 0.3}, "over their 0.3 s budget|remaining budget"),
], ids=["blocks", "crawls"])
def test_a_quantizer_that_blocks_or_crawls_fails_in_bounded_time(delay_s, limits, fragment):
    import time

    def slow(x):
        time.sleep(delay_s)
        return np.round(x).astype(np.int64)

    started = time.perf_counter()
    with pytest.raises(AssertionError, match=f"check deterministic failed for.*({fragment})"):
        check_quantizer(FunctionQuantizer(slow, lambda q: q * 1.0, "sleepy"), **limits)
    assert time.perf_counter() - started < 10  # a hundred examples at 60 s would be 100 minutes


class Halves(Midtread):
    """The smallest subclass a user writes: a registered quantizer with its own name (README)."""

    name = "halves"


def test_a_subclass_that_skips_validation_fails_bad_input_rejected():
    class Trusting(FunctionQuantizer):
        def quantize(self, x):
            with np.errstate(invalid="ignore"):  # NaN cast to an integer: what this broken quantizer does
                return np.round(np.asarray(x, dtype=np.float64)).astype(np.int64)

    with pytest.raises(AssertionError, match="check bad_input_rejected failed.*NaN"):
        check_quantizer(Trusting(np.round, lambda q: q * 1.0, "trusting"))


def test_check_quantizer_refuses_what_is_not_a_quantizer():
    with pytest.raises(TypeError, match="takes a greenbench Quantizer"):
        check_quantizer(np.round)
    check_quantizer(Halves(levels=16))


@pytest.mark.parametrize("name", list(CHECKS))
def test_each_check_is_importable_on_its_own(name):
    import greenbench.checks as public

    check = getattr(public, f"check_{name}")
    assert check.__name__ == name and check.__doc__
    check(Midtread(levels=16))  # a correct quantizer passes each one
    if name == "idempotent":
        broken = FunctionQuantizer(lambda x: np.round(x * 4).astype(np.int64), lambda q: q / 4 + (q % 2) * 0.3, "odd")
        with pytest.raises(AssertionError, match="check idempotent failed"):
            check(broken)


def test_parametrize_ids_name_the_quantizer_by_its_repr():
    marker = parametrize_with_checks([Midtread(levels=16), Midtread(levels=8)]).mark
    ids = [p.id for p in marker.args[1]]
    assert "Midtread(levels=16, xmax=1.0)-idempotent" in ids and "Midtread(levels=8, xmax=1.0)-monotone" in ids


_KNOWN_BROKEN = FunctionQuantizer(lambda x: -np.round(x).astype(np.int64), lambda q: -q * 1.0, "decreasing")


@parametrize_with_checks([_KNOWN_BROKEN, Midtread(levels=16)], expected_failed_checks=lambda q: {
    "monotone": "decreasing on purpose: the expected failure still runs, strictly"} if q is _KNOWN_BROKEN else {})
def test_expected_failed_checks_run_as_strict_expected_failures(quantizer, check):
    check(quantizer)


def test_expected_failed_checks_refuses_unknown_names_and_missing_reasons():
    with pytest.raises(ValueError, match="unknown checks \\['monotonic'\\]"):
        parametrize_with_checks([Midtread(levels=16)], expected_failed_checks=lambda q: {"monotonic": "typo"})
    with pytest.raises(TypeError, match="check name: reason"):
        parametrize_with_checks([Midtread(levels=16)], expected_failed_checks=lambda q: {"monotone": ""})


def test_an_expected_failure_that_passes_fails_the_run(pytester):
    pytester.makepyfile("""
        from greenbench.checks import parametrize_with_checks
        from greenbench.quantizers import Midtread

        @parametrize_with_checks([Midtread(levels=16)], expected_failed_checks=lambda q: {"monotone": "fixed since"})
        def test_checks(quantizer, check):
            check(quantizer)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "monotone")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*fixed since*"])
