"""Public face: hold any quantizer — a user's included — to the suite's common checks, all at once
(`check_quantizer`, `parametrize_with_checks`) or one by one (`check_idempotent`, `check_monotone`, …).

The implementation is `greenbench.harness.checks`."""

from greenbench.harness.checks import (
    CHECKS,
    check_bad_input_rejected,
    check_coder_round_trip,
    check_container_round_trip,
    check_deterministic,
    check_error_bound,
    check_idempotent,
    check_level_count,
    check_monotone,
    check_narrow_indices,
    check_odd_symmetry,
    check_quantizer,
    check_shape_and_dtype,
    check_valid_indices,
    checks_for,
    parametrize_with_checks,
)
from greenbench.harness.deadline import CheckTimeout
from greenbench.quantization.function import FunctionQuantizer

__all__ = ["CHECKS", "CheckTimeout", "FunctionQuantizer", "check_quantizer", "parametrize_with_checks", "checks_for",
           "check_shape_and_dtype", "check_narrow_indices", "check_idempotent", "check_monotone", "check_odd_symmetry",
           "check_error_bound", "check_level_count", "check_valid_indices", "check_bad_input_rejected",
           "check_deterministic", "check_coder_round_trip", "check_container_round_trip"]
