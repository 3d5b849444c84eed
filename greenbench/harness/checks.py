"""Common checks for quantizers — the suite's own and users' — like scikit-learn's estimator checks.

`check_quantizer(q)` runs every invariant the suite holds its own quantizers to and raises an
`AssertionError` naming the failed check and a minimal counterexample (hypothesis generates the
inputs and shrinks a failure). `parametrize_with_checks([...])` gives one pytest case per
(quantizer, check). A quantizer needs only the `Quantizer` protocol; `FunctionQuantizer` wraps a
pair of plain functions (a PyTorch fake-quant, a float8 cast) so they can be checked without
subclassing.

The checks (those that do not apply to a quantizer are left out for it):
- shape_and_dtype: indices keep the input's shape and are integers; values are floats of the asked dtype
- narrow_indices (quantizers declaring `index_bounds`): the bounds are tight, indices come in the narrowest
  signed integer dtype that holds them, and int64 copies of them dequantize to the same bits
- idempotent: Q(D(Q(x))) = Q(x)
- monotone: indices and reconstruction do not decrease as the input grows
- odd_symmetry (quantizers declaring `symmetric`): D(Q(−x)) = −D(Q(x)) away from cell edges
- error_bound (quantizers declaring one): |x − D(Q(x))| within `error_bound(x)`
- level_count (quantizers declaring `max_levels`): at most that many distinct outputs
- valid_indices: what Q gives is valid (D accepts it and it is a fixed point); invalid indices are refused
- bad_input_rejected: NaN, inf, empty and non-float input raise ValueError
- deterministic: the same input gives the same output on each of 230 calls
- coder_round_trip: the entropy coder gives back exactly Q(x)
- container_round_trip: a model container of weights x decodes to exactly D(Q(x))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings

from greenbench.coding.entropy import decode_indices, encode_indices
from greenbench.core.validation import narrowest_int_dtype
from greenbench.harness.deadline import CALL_DEADLINE_S, CHECK_BUDGET_S, DeadlinedQuantizer
from greenbench.harness.inputs import CANDIDATE_INDICES, input_scale, invalid_candidates, quantizer_inputs
from greenbench.quantization.base import Quantizer

# --------------------------------------------------------------------------- inputs

def _interior(q: Quantizer, x: np.ndarray) -> np.ndarray:
    """Points where Q is locally constant (not on a cell edge): neighbours on both sides agree."""
    x64 = x.astype(np.float64)
    return q.quantize(np.nextafter(x64, np.inf)) == q.quantize(np.nextafter(x64, -np.inf))


# --------------------------------------------------------------------------- the checks (q, x) -> None

def _shape_and_dtype(quantizer: Quantizer, x: np.ndarray) -> None:
    """Indices are integers of x's shape; dequantize gives float64 by default and the dtype asked for."""
    q = quantizer.quantize(x)
    assert q.shape == x.shape, f"indices have shape {q.shape}, input {x.shape}"
    assert q.dtype.kind in "iu", f"indices are {q.dtype}, not integers"
    r = quantizer.dequantize(q)
    assert r.shape == x.shape and r.dtype == np.float64, f"dequantize gave {r.dtype} {r.shape}"
    assert quantizer.dequantize(q, dtype=x.dtype).dtype == x.dtype, "dequantize ignored the dtype asked for"


def _spread_inputs(quantizer: Quantizer) -> np.ndarray:
    """Inputs over the quantizer's whole range, and beyond it on both sides (saturation included)."""
    smallest, largest = input_scale(quantizer)
    return np.concatenate([np.linspace(-2 * largest, 2 * largest, 257),
                           np.linspace(-50 * smallest, 50 * smallest, 257)])


def _narrow_indices(quantizer: Quantizer, x: np.ndarray) -> None:
    """The declared index bounds are tight (both valid, the next integer beyond each invalid), quantize gives the
    narrowest signed integer dtype holding them, and the same indices as int64 dequantize to the same bits."""
    lo, hi = quantizer.index_bounds  # type: ignore[misc]
    beyond = np.array([lo, hi, lo - 1, hi + 1], np.int64)
    invalid = np.asarray(quantizer.invalid_indices(beyond), dtype=bool).tolist()
    assert invalid == [False, False, True, True], (
        f"index bounds [{lo}, {hi}] are not tight: invalid_indices({beyond.tolist()}) = {invalid}")
    q = quantizer.quantize(_spread_inputs(quantizer))
    assert q.dtype == narrowest_int_dtype(lo, hi), (
        f"indices are {q.dtype}; the narrowest dtype for [{lo}, {hi}] is {narrowest_int_dtype(lo, hi)}")
    for dtype, bits in ((np.float32, np.uint32), (np.float64, np.uint64)):
        narrow, wide = quantizer.dequantize(q, dtype=dtype), quantizer.dequantize(q.astype(np.int64), dtype=dtype)
        assert np.array_equal(narrow.view(bits), wide.view(bits)), (
            f"{q.dtype} and int64 indices dequantize to other {np.dtype(dtype)} values")


def _idempotent(quantizer: Quantizer, x: np.ndarray) -> None:
    """Q(D(Q(x))) = Q(x): a reconstruction quantizes to its own index."""
    q = quantizer.quantize(x)
    again = quantizer.quantize(quantizer.dequantize(q))
    assert np.array_equal(again, q), f"Q(D(Q(x))) = {again.reshape(-1)[:8]} ≠ Q(x) = {q.reshape(-1)[:8]}"


def _monotone(quantizer: Quantizer, x: np.ndarray) -> None:
    """Indices and reconstructions never decrease as the input grows."""
    xs = np.sort(x.reshape(-1).astype(np.float64))
    q = quantizer.quantize(xs)
    assert np.all(np.diff(q.astype(np.int64)) >= 0), "indices decrease as the input grows"  # int8 differences wrap
    assert np.all(np.diff(quantizer.dequantize(q)) >= 0), "reconstruction decreases as the input grows"


def _odd_symmetry(quantizer: Quantizer, x: np.ndarray) -> None:
    """D(Q(−x)) = −D(Q(x)) away from cell edges, for quantizers that declare symmetry."""
    x = x.astype(np.float64)
    keep = _interior(quantizer, x) & _interior(quantizer, -x) & (x != 0)
    if keep.any():
        r_pos = quantizer.dequantize(quantizer.quantize(x[keep]))
        r_neg = quantizer.dequantize(quantizer.quantize(-x[keep]))
        # designed codebooks are symmetric up to rounding of their centroids (≤ 1e-12)
        assert np.allclose(r_neg, -r_pos, rtol=1e-12, atol=1e-12), "D(Q(−x)) ≠ −D(Q(x))"


def _error_bound(quantizer: Quantizer, x: np.ndarray) -> None:
    """|x − D(Q(x))| stays within the bound the quantizer declares."""
    x64 = x.astype(np.float64)
    bound = quantizer.error_bound(x64)
    err = np.abs(x64 - quantizer.dequantize(quantizer.quantize(x)))
    finite = np.isfinite(bound)
    slack = 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(x64[finite]))
    over = err[finite] > bound[finite] + slack
    assert not over.any(), f"|x − D(Q(x))| = {err[finite][over][:4]} exceeds the bound {bound[finite][over][:4]}"


def _level_count(quantizer: Quantizer, x: np.ndarray) -> None:
    """No more distinct indices than the declared level count, each with its own value."""
    grid = np.concatenate([x.reshape(-1).astype(np.float64), np.linspace(-1e4, 1e4, 200_001),
                           np.geomspace(1e-12, 1e4, 20_000), -np.geomspace(1e-12, 1e4, 20_000)])
    indices = np.unique(quantizer.quantize(grid))
    assert indices.size <= quantizer.max_levels, f"{indices.size} distinct indices, declared {quantizer.max_levels}"
    values = np.unique(quantizer.dequantize(indices)).size
    assert values == indices.size, f"{indices.size} distinct indices give {values} distinct values"


def _valid_indices(quantizer: Quantizer, x: np.ndarray) -> None:
    """quantize gives only valid indices, each a fixed point; dequantize refuses invalid and float ones."""
    q = quantizer.quantize(x)
    assert not np.any(quantizer.invalid_indices(q)), "quantize gave indices the quantizer calls invalid"
    refused = invalid_candidates(quantizer)
    valid = CANDIDATE_INDICES[~refused]
    assert np.array_equal(quantizer.quantize(quantizer.dequantize(valid)), valid), "a valid index is no fixed point"
    invalid = CANDIDATE_INDICES[refused]
    if invalid.size:
        _must_refuse(quantizer.dequantize, invalid[:1], f"dequantize accepted the invalid index {invalid[0]}")
    _must_refuse(quantizer.dequantize, np.array([0.0, 1.0]), "dequantize accepted float indices")


def _must_refuse(call: Callable[[np.ndarray], Any], bad: np.ndarray, what: str) -> None:
    try:
        call(bad)
    except ValueError:
        return
    raise AssertionError(f"{what} instead of raising ValueError")


def _bad_input_rejected(quantizer: Quantizer, x: np.ndarray) -> None:
    """NaN, inf, empty and integer inputs raise ValueError."""
    bad_inputs = {"NaN": np.array([0.1, np.nan]), "inf": np.array([np.inf, 0.0], np.float32),
                  "empty": np.array([], np.float64), "integers": np.array([1, 2, 3])}
    for what, bad in bad_inputs.items():
        _must_refuse(quantizer.quantize, bad, f"quantize accepted {what} input {bad!r}")


REPEATS = 230  # a quantizer that differs on 2 % of calls is caught with 99 % probability: 0.98^229 < 0.01


def _deterministic(quantizer: Quantizer, x: np.ndarray) -> None:
    """The same input gives the same indices and values on every call (REPEATS calls)."""
    x = _spread_inputs(quantizer)
    q = quantizer.quantize(x)
    r = quantizer.dequantize(q)
    for call in range(1, REPEATS):
        again = quantizer.quantize(x)
        assert np.array_equal(again, q), f"call {call + 1} of quantize gave other indices for the same input"
        assert np.array_equal(quantizer.dequantize(q), r), f"call {call + 1} of dequantize gave other values"


def _coder_round_trip(quantizer: Quantizer, x: np.ndarray) -> None:
    """The entropy coder gives Q(x) back exactly."""
    q = quantizer.quantize(x)
    back = decode_indices(encode_indices(q).data)
    assert np.array_equal(back, q.reshape(-1).astype(np.int64)), "the entropy coder did not give back Q(x)"


def _container_round_trip(quantizer: Quantizer, x: np.ndarray) -> None:
    """The model container decodes to D(Q(weights)) exactly."""
    from onnx import TensorProto, helper, numpy_helper

    from greenbench.coding.container import decode_container, encode_container

    w = x.reshape(-1, 1).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "check",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
                              [numpy_helper.from_array(w, "W")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    restored = decode_container(encode_container(proto, quantizer).data, quantizer=quantizer)
    got = numpy_helper.to_array(restored.graph.initializer[0])
    want = quantizer.dequantize(quantizer.quantize(w), dtype=np.float32)
    assert np.array_equal(got, want), "the model container did not decode to D(Q(weights))"


def _declares_error_bound(quantizer: Quantizer) -> bool:
    return quantizer.error_bound(np.linspace(-1.0, 1.0, 5)) is not None


# name -> (check, applies to the quantizer?, generates inputs?)
CHECKS: dict[str, tuple[Callable[[Quantizer, np.ndarray], None], Callable[[Quantizer], bool], bool]] = {
    "deterministic": (_deterministic, lambda q: True, False),  # first: flakiness confuses the others
    "shape_and_dtype": (_shape_and_dtype, lambda q: True, True),
    "narrow_indices": (_narrow_indices, lambda q: q.index_bounds is not None, False),
    "idempotent": (_idempotent, lambda q: True, True),
    "monotone": (_monotone, lambda q: True, True),
    "odd_symmetry": (_odd_symmetry, lambda q: bool(q.symmetric), True),
    "error_bound": (_error_bound, _declares_error_bound, True),
    "level_count": (_level_count, lambda q: q.max_levels is not None, False),
    "valid_indices": (_valid_indices, lambda q: True, True),
    "bad_input_rejected": (_bad_input_rejected, lambda q: True, False),
    "coder_round_trip": (_coder_round_trip, lambda q: True, True),
    "container_round_trip": (_container_round_trip, lambda q: True, True),
}


def checks_for(quantizer: Quantizer) -> list[str]:
    """The names of the checks that apply to this quantizer."""
    return [name for name, (_, applies, _) in CHECKS.items() if applies(quantizer)]


def run_check(quantizer: Quantizer, name: str, deadline_s: float = CALL_DEADLINE_S,
              budget_s: float = CHECK_BUDGET_S) -> None:
    """Run one check; AssertionError naming the check, the quantizer and a minimal counterexample.

    Each call of the quantizer gets `deadline_s` and the check's calls together `budget_s`: a quantizer
    that blocks or crawls fails the check (CheckTimeout, naming the call and its input) instead of hanging.
    """
    try:
        check, _, generated = CHECKS[name]
    except KeyError:
        raise ValueError(f"unknown check {name!r}; checks: {', '.join(CHECKS)}") from None
    quantizer = DeadlinedQuantizer(quantizer, deadline_s, budget_s)
    seen: dict[str, np.ndarray] = {}

    @settings(parent=settings.default, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(x=quantizer_inputs(quantizer))
    def property_(x: np.ndarray) -> None:
        seen["x"] = x  # hypothesis replays the shrunk failing example last
        check(quantizer, x)

    try:
        if generated:
            property_()
        else:
            check(quantizer, np.linspace(-2.0, 2.0, 9))
    except Exception as exc:  # noqa: BLE001 - any failure is reported as this check's
        raise AssertionError(_message(quantizer, name, exc, seen.get("x"))) from exc


def _message(quantizer: Quantizer, name: str, exc: BaseException, x: np.ndarray | None) -> str:
    text = f"check {name} failed for {quantizer!r}: {type(exc).__name__}: {exc}"
    if x is not None:
        text += f"\nminimal counterexample: x = np.array({x.tolist()!r}, dtype=np.{x.dtype})"
    return text


def check_quantizer(quantizer: Quantizer, deadline_s: float = CALL_DEADLINE_S,
                    budget_s: float = CHECK_BUDGET_S) -> None:
    """Every check that applies to the quantizer; the first failure raises AssertionError naming it.
    `deadline_s` bounds each call of the quantizer, `budget_s` each check's calls together."""
    if not isinstance(quantizer, Quantizer):
        raise TypeError(f"check_quantizer takes a greenbench Quantizer (or a FunctionQuantizer), got "
                        f"{type(quantizer).__name__}")
    for name in checks_for(quantizer):
        run_check(quantizer, name, deadline_s, budget_s)


def parametrize_with_checks(quantizers: Sequence[Quantizer],
                            expected_failed_checks: Callable[[Quantizer], dict[str, str]] | None = None):
    """A pytest parametrize decorator: one case per (quantizer, check), like scikit-learn's. Ids are the
    quantizer's repr and the check's name; the test takes `quantizer` and `check` and calls `check(quantizer)`.

    `expected_failed_checks(quantizer)` returns {check name: reason} for the checks that quantizer is known
    to fail: those cases run as strict expected failures (an AssertionError from the check), so a fix
    shows up as a failure to update the list, and any other error still fails.
    """
    import pytest  # only here, like scikit-learn's: importing the checks never imports pytest

    params = []
    for quantizer, check, case_id in check_cases(quantizers):
        expected = (expected_failed_checks or (lambda q: {}))(quantizer)
        if not isinstance(expected, dict) or not all(isinstance(r, str) and r for r in expected.values()):
            raise TypeError(f"expected_failed_checks must return {{check name: reason}}, got {expected!r}")
        unknown = set(expected) - set(CHECKS)
        if unknown:
            raise ValueError(f"expected_failed_checks names unknown checks {sorted(unknown)}; "
                             f"checks: {', '.join(CHECKS)}")
        marks = ([pytest.mark.xfail(reason=expected[check.__name__], strict=True, raises=AssertionError)]
                 if check.__name__ in expected else [])
        params.append(pytest.param(quantizer, check, id=case_id, marks=marks))
    return pytest.mark.parametrize("quantizer, check", params)


def check_cases(quantizers: Sequence[Quantizer]) -> list[tuple[Quantizer, Callable[[Quantizer], None], str]]:
    """(quantizer, check callable, id `repr-check`) for every applicable pair: what parametrize_with_checks spreads."""
    cases = []
    for quantizer in quantizers:
        for name in checks_for(quantizer):
            cases.append((quantizer, _named_check(name), f"{_short_repr(quantizer)}-{name}"))
    return cases


def _short_repr(quantizer: Quantizer, limit: int = 80) -> str:
    text = repr(quantizer)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _named_check(name: str) -> Callable[[Quantizer], None]:
    def check(quantizer: Quantizer) -> None:
        run_check(quantizer, name)

    check.__name__ = name
    check.__qualname__ = f"check_{name}"
    check.__doc__ = f"{CHECKS[name][0].__doc__} Raises AssertionError naming a minimal counterexample."
    return check


# each check on its own, importable as scikit-learn's check_* are
check_shape_and_dtype = _named_check("shape_and_dtype")
check_narrow_indices = _named_check("narrow_indices")
check_idempotent = _named_check("idempotent")
check_monotone = _named_check("monotone")
check_odd_symmetry = _named_check("odd_symmetry")
check_error_bound = _named_check("error_bound")
check_level_count = _named_check("level_count")
check_valid_indices = _named_check("valid_indices")
check_bad_input_rejected = _named_check("bad_input_rejected")
check_deterministic = _named_check("deterministic")
check_coder_round_trip = _named_check("coder_round_trip")
check_container_round_trip = _named_check("container_round_trip")
