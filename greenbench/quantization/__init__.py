"""Scalar quantizers: one protocol, a registry, and every family the claims use.

- `base`: the `Quantizer` protocol, the registry (`register_quantizer`, `make_quantizer`) and the
  helpers the compiled kernels share.
- `uniform`: midtread, midrise, deadzone (thesis Eqs. 2.21–2.26); `tabled`: μ-law through exact
  threshold tables and minifloat on float64 bit patterns (Eqs. 2.27–2.30); `affine`: seed 003's Q(r) = Int(r/S) − Z;
  `codebook`: edges and points; `designed`: ECSQ and the centroid deadzone, designed on a source;
  `function`: `FunctionQuantizer`, a user's two plain functions as a quantizer (not registered).
- `kernels`: the numba loops behind them.

Importing this package registers every family, so the registry is whole whichever module a user
imports first. The common checks that every quantizer is held to live in `greenbench.harness.checks`:
they exercise the coders and the container, which sit above this layer.
"""

# isort: off (the registration order is the order the checks, the grid and the report list the families in)
from greenbench.quantization.affine import Affine
from greenbench.quantization.base import REGISTRY, Quantizer, make_quantizer, quantizer_examples, register_quantizer
from greenbench.quantization.codebook import Codebook
from greenbench.quantization.designed import ECSQ, CentroidDeadzone
from greenbench.quantization.tabled import MINIFLOAT_FORMATS, Minifloat, MuLaw
from greenbench.quantization.uniform import Deadzone, Midrise, Midtread

# isort: on

__all__ = ["REGISTRY", "MINIFLOAT_FORMATS", "Quantizer", "register_quantizer", "make_quantizer", "quantizer_examples",
           "Midtread", "Midrise", "Deadzone", "MuLaw", "Minifloat", "Affine", "Codebook", "CentroidDeadzone", "ECSQ"]
