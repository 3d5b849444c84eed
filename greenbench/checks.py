"""Public face: hold any quantizer — a user's included — to the suite's common checks.

The implementation is `greenbench.harness.checks`."""

from greenbench.harness.checks import FunctionQuantizer, check_quantizer, parametrize_with_checks

__all__ = ["FunctionQuantizer", "check_quantizer", "parametrize_with_checks"]
