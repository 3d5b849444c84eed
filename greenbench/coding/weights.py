"""The weights of an ONNX graph: which initializers are a layer's weights, reading and replacing them,
and quantizing them all with one quantizer (thesis §3.5: weights and biases quantized, then dequantized).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from greenbench.coding.entropy import entropy_bits
from greenbench.quantization.base import Quantizer

OPSET = 17


# Inputs of these operators that hold learned weights and biases (BatchNormalization's scale and bias
# are learned; its running mean and variance are statistics and are kept in fp32).
# Which inputs of which operators are a layer's weights (taken only when they are float initializers):
# convolutions and dense layers, BatchNorm's scale and shift, LayerNorm's, and embedding tables (Gather).
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
                 "BatchNormalization": (1, 2), "LayerNormalization": (1, 2), "Gather": (0,)}


class OnnxCodecError(ValueError):
    """A model or container that cannot be used: corrupt, truncated or inconsistent."""


def load_onnx(source: bytes | str | Path) -> onnx.ModelProto:
    """Parse and check an ONNX model; a corrupt file raises OnnxCodecError saying so."""
    try:
        data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, OSError, ValueError, RuntimeError) as exc:
        raise OnnxCodecError(f"corrupt or invalid ONNX model: {exc}") from exc
    except Exception as exc:  # protobuf's DecodeError does not derive from ValueError
        raise OnnxCodecError(f"corrupt or invalid ONNX model: {type(exc).__name__}: {exc}") from exc
    if not proto.graph.node:
        raise OnnxCodecError("corrupt or invalid ONNX model: the graph has no nodes")
    return proto


# The initializer types greenbench quantizes; each weight is written back in its own type.
FLOAT_TYPES = {onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.FLOAT: np.float32,
               onnx.TensorProto.DOUBLE: np.float64}


def _layer_inputs(proto: onnx.ModelProto) -> set[str]:
    return {node.input[k] for node in proto.graph.node for k in WEIGHT_INPUTS.get(node.op_type, ())
            if k < len(node.input)}


def weight_names(proto: onnx.ModelProto) -> list[str]:
    """Float (16, 32 or 64-bit) initializers that are weights or biases of a layer, in initializer order."""
    used = _layer_inputs(proto)
    return [i.name for i in proto.graph.initializer if i.name in used and i.data_type in FLOAT_TYPES]


def no_weights_reason(proto: onnx.ModelProto) -> str:
    used = _layer_inputs(proto)
    others = sorted({onnx.TensorProto.DataType.Name(i.data_type) for i in proto.graph.initializer if i.name in used})
    if others:
        return (f"the model's weights are {', '.join(others)}; greenbench quantizes FLOAT16, FLOAT and DOUBLE "
                "weights (dequantize a quantized model first)")
    return "the model has no weight or bias initializers to quantize"


def weights(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    names = set(weight_names(proto))
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.name in names}


def flat_weights(proto: onnx.ModelProto) -> np.ndarray:
    """All weights and biases as one float32 vector (what a whole-model quantizer sees)."""
    return flatten_weights(weights(proto))


def flatten_weights(tensors: dict[str, np.ndarray]) -> np.ndarray:
    if not tensors:
        raise OnnxCodecError("the model has no weight or bias initializers to quantize")
    return np.concatenate([w.reshape(-1) for w in tensors.values()])


def split_weights(values: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The inverse of `flatten_weights`: consecutive slices of `values` reshaped to each tensor's shape."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = values[start:start + size].reshape(shape)
        start += size
    return out


def with_weights(proto: onnx.ModelProto, replacements: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of the model with some initializers replaced (same names and shapes, each in its own float type)."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for init in out.graph.initializer:
        if init.name in replacements:
            if init.data_type not in FLOAT_TYPES:
                raise OnnxCodecError(f"initializer {init.name} is {onnx.TensorProto.DataType.Name(init.data_type)}, "
                                     "not a float type greenbench writes")
            array = np.asarray(replacements[init.name], dtype=FLOAT_TYPES[init.data_type])
            if tuple(array.shape) != tuple(init.dims):
                raise OnnxCodecError(f"initializer {init.name}: shape {array.shape} differs from {tuple(init.dims)}")
            init.CopyFrom(numpy_helper.from_array(array, init.name))
    return out


@dataclass(frozen=True)
class QuantizedModel:
    """A model whose weights went through a quantizer, with its indices and their entropy."""

    proto: onnx.ModelProto
    quantizer: Quantizer
    indices: np.ndarray  # all weights' indices, in weight order
    entropy: float  # bits per weight
    weight_count: int


def quantize_model(proto: onnx.ModelProto, quantizer: Quantizer) -> QuantizedModel:
    """Quantize then dequantize every weight and bias with one quantizer for the whole model."""
    tensors = weights(proto)
    if not tensors:
        raise OnnxCodecError(no_weights_reason(proto))
    flat = flatten_weights(tensors)
    indices = quantizer.quantize(flat)
    shapes = {n: w.shape for n, w in tensors.items()}
    replacements = split_weights(quantizer.dequantize(indices, dtype=flat.dtype), shapes)
    return QuantizedModel(with_weights(proto, replacements), quantizer, indices, entropy_bits(indices), flat.size)
