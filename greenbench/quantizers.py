"""Public face: the quantizers, their protocol and their registry.

The implementation is the `greenbench.quantization` package."""

from greenbench.quantization import (
    ECSQ,
    MINIFLOAT_FORMATS,
    REGISTRY,
    Affine,
    CentroidDeadzone,
    Codebook,
    Deadzone,
    Midrise,
    Midtread,
    Minifloat,
    MuLaw,
    Quantizer,
    make_quantizer,
    quantizer_examples,
    register_quantizer,
)

__all__ = ["REGISTRY", "MINIFLOAT_FORMATS", "Quantizer", "register_quantizer", "make_quantizer", "quantizer_examples",
           "Midtread", "Midrise", "Deadzone", "MuLaw", "Minifloat", "Affine", "Codebook", "CentroidDeadzone", "ECSQ"]
