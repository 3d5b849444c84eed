"""What the common checks feed a quantizer: arrays over the whole range where its inputs matter."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.quantization.base import Quantizer

DTYPES = (np.float16, np.float32, np.float64)


CANDIDATE_INDICES = np.arange(-4096, 4097, dtype=np.int64)  # the indices the checks probe


def invalid_candidates(quantizer: Quantizer) -> np.ndarray:
    """Which of CANDIDATE_INDICES the quantizer calls invalid."""
    return np.asarray(quantizer.invalid_indices(CANDIDATE_INDICES), dtype=bool)


def input_scale(quantizer: Quantizer) -> tuple[float, float]:
    """(smallest, largest) non-zero reconstruction magnitude among the valid CANDIDATE_INDICES: where the
    quantizer's inputs matter. (1, 1) for a quantizer that cannot say."""
    try:
        valid = CANDIDATE_INDICES[~invalid_candidates(quantizer)]
        values = np.abs(quantizer.dequantize(valid))
    except ValueError:
        return 1.0, 1.0
    values = values[np.isfinite(values) & (values > 0)]
    return (float(values.min()), float(values.max())) if values.size else (1.0, 1.0)


def quantizer_inputs(quantizer: Quantizer, max_side: int = 12):
    """Arrays of float16/32/64 of 1–3 dimensions over where this quantizer's inputs matter: values within
    ±50, and the same arrays scaled by a factor log-uniform from a millionth of its finest step to a
    million of them, by the largest of those (an index that wraps in a narrow integer type shows there),
    or to its declared range (up to twice it). One scale per array: drawing each element's magnitude
    costs hypothesis 4× the time."""
    smallest, largest = input_scale(quantizer)
    exponent = st.floats(np.log10(smallest * 1e-6), np.log10(smallest * 1e6))
    scale = st.one_of(st.just(1.0), st.just(smallest * 1e6), exponent.map(lambda e: 10.0**e),
                      st.floats(largest / 50, largest / 25))

    def scaled(arr: np.ndarray, factor: float) -> np.ndarray:
        top = float(np.finfo(arr.dtype).max)
        with np.errstate(over="ignore", under="ignore"):
            return np.clip(arr.astype(np.float64) * factor, -top, top).astype(arr.dtype)

    dtype = st.sampled_from(DTYPES)
    arrays = dtype.flatmap(lambda d: hnp.arrays(
        d, hnp.array_shapes(min_dims=1, max_dims=3, max_side=max_side),
        elements=st.floats(-50, 50, width=np.finfo(d).bits, allow_nan=False, allow_infinity=False)))
    return st.tuples(arrays, scale).map(lambda t: scaled(*t))
