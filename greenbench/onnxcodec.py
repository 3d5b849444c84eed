"""ONNX weight codec (thesis §3.5 and beyond): quantize every weight and bias of an ONNX graph,
evaluate it with onnxruntime, and store it as a compressed container.

Container layout (all integers little-endian):
    magic "GBNNC" | version byte | u32 header length | header JSON | u64 graph length | graph |
    coded indices | CRC-32
The header names the quantizer and its parameters and lists the quantized initializers (name,
shape) in order; the graph is the ONNX model with those initializers emptied; the coded indices are
one context-coded stream (greenbench.contextcoding: per-tensor adaptive models with context) of
every quantized tensor. Decoding rebuilds exactly the model that quantize-then-dequantize produces.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .contextcoding import decode_tensors, encode_tensors
from .quantizers import Quantizer, make_quantizer
from .rate import checked_body, entropy_bits, with_checksum

MAGIC = b"GBNNC"
CONTAINER_VERSION = 3  # 3: weights context-coded per tensor (2: one static range-coded stream)
OPSET = 17
# Inputs of these operators that hold learned weights and biases (BatchNormalization's scale and bias
# are learned; its running mean and variance are statistics and are kept in fp32).
# Which inputs of which operators are a layer's weights (taken only when they are float initializers):
# convolutions and dense layers, BatchNorm's scale and shift, LayerNorm's, and embedding tables (Gather).
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
                 "BatchNormalization": (1, 2), "LayerNormalization": (1, 2), "Gather": (0,)}


class OnnxCodecError(ValueError):
    """A model or container that cannot be used: corrupt, truncated or inconsistent."""


def export_onnx(model: Any, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """Export a torch module in eval mode (BatchNorm folded into convolutions), batch axis dynamic."""
    import torch

    buffer = io.BytesIO()
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no extra packages
        torch.onnx.export(model, torch.zeros(1, *input_shape), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return load_onnx(buffer.getvalue())


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


def _no_weights_reason(proto: onnx.ModelProto) -> str:
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
    return _flatten(weights(proto))


def _flatten(tensors: dict[str, np.ndarray]) -> np.ndarray:
    if not tensors:
        raise OnnxCodecError("the model has no weight or bias initializers to quantize")
    return np.concatenate([w.reshape(-1) for w in tensors.values()])


def _split(values: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The inverse of `_flatten`: consecutive slices of `values` reshaped to each tensor's shape."""
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
        raise OnnxCodecError(_no_weights_reason(proto))
    flat = _flatten(tensors)
    indices = quantizer.quantize(flat)
    replacements = _split(quantizer.dequantize(indices, dtype=flat.dtype), {n: w.shape for n, w in tensors.items()})
    return QuantizedModel(with_weights(proto, replacements), quantizer, indices, entropy_bits(indices), flat.size)


# --------------------------------------------------------------------------- inference

def session(proto: onnx.ModelProto, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else int(os.environ.get("GREENBENCH_THREADS", "0"))
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_onnx(proto_or_session: Any, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits of the model on `inputs` (float32, N × C × H × W)."""
    sess = session(proto_or_session) if isinstance(proto_or_session, onnx.ModelProto) else proto_or_session
    first = sess.get_inputs()[0]
    name = first.name
    x = np.ascontiguousarray(inputs, dtype=np.int64 if first.type == "tensor(int64)" else np.float32)
    return np.concatenate([sess.run(None, {name: x[i:i + batch_size]})[0] for i in range(0, len(x), batch_size)])


# --------------------------------------------------------------------------- container

@dataclass(frozen=True)
class Container:
    data: bytes
    weight_count: int
    coded_weight_bytes: int  # the coded index stream, its header and checksum included
    entropy: float  # zeroth-order entropy of all the indices together, bits per weight

    @property
    def fp32_weight_bytes(self) -> int:
        return 4 * self.weight_count

    @property
    def real_cr(self) -> float:
        """fp32 weight bytes over coded weight bytes."""
        return self.fp32_weight_bytes / self.coded_weight_bytes


def encode_container(proto: onnx.ModelProto, quantizer: Quantizer) -> Container:
    tensors = weights(proto)  # in initializer order, the order of the coded stream
    if not tensors:
        raise OnnxCodecError(_no_weights_reason(proto))
    flat = _flatten(tensors)
    indices = quantizer.quantize(flat)
    coded = encode_tensors(list(_split(indices, {n: w.shape for n, w in tensors.items()}).values()))
    header = json.dumps({"quantizer": quantizer.name, "params": quantizer.params,
                         "tensors": [{"name": n, "shape": list(w.shape)} for n, w in tensors.items()]}).encode()
    stripped = with_weights(proto, {})
    for init in stripped.graph.initializer:
        if init.name in tensors:
            init.ClearField("raw_data")
            init.ClearField("float_data")
    graph = stripped.SerializeToString()
    data = with_checksum(MAGIC + bytes([CONTAINER_VERSION]) + struct.pack("<I", len(header)) + header
                         + struct.pack("<Q", len(graph)) + graph + coded)
    return Container(data, flat.size, len(coded), entropy_bits(indices))


def decode_container(data: bytes, quantizer: Quantizer | None = None) -> onnx.ModelProto:
    """The quantize-dequantize model stored in a container; OnnxCodecError if it is damaged.

    The container names its quantizer, which is rebuilt from the registry; a quantizer that is not
    registered (a user's) is passed as `quantizer` and must carry the stored name and parameters.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a model container is bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 1 + 4:
        raise OnnxCodecError("not a greenbench model container (bad magic or too short)")
    if data[len(MAGIC)] != CONTAINER_VERSION:
        raise OnnxCodecError(f"model container format {data[len(MAGIC)]} is not supported "
                             f"(this greenbench reads format {CONTAINER_VERSION})")
    data = checked_body(data, "model container", OnnxCodecError)
    pos = len(MAGIC) + 1
    (header_len,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if len(data) < pos + header_len:
        raise OnnxCodecError("model container is truncated (header)")
    try:
        header = json.loads(data[pos:pos + header_len])
        shapes = {t["name"]: tuple(t["shape"]) for t in header["tensors"]}
        if quantizer is None:
            quantizer = make_quantizer(header["quantizer"], **header["params"])
        elif (quantizer.name, json.loads(json.dumps(quantizer.params))) != (header["quantizer"], header["params"]):
            raise OnnxCodecError(f"the container was coded with {header['quantizer']} {header['params']}, "
                                 f"not with the given {quantizer!r}")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise OnnxCodecError(f"model container header is corrupt ({exc})") from exc
    pos += header_len
    if len(data) < pos + 8:
        raise OnnxCodecError("model container is truncated (no graph)")
    (graph_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    if len(data) < pos + graph_len:
        raise OnnxCodecError("model container is truncated (graph)")
    try:
        proto = onnx.load_from_string(data[pos:pos + graph_len])
    except Exception as exc:
        raise OnnxCodecError(f"model container graph is corrupt ({exc})") from exc
    try:
        coded = decode_tensors(data[pos + graph_len:])
    except ValueError as exc:
        raise OnnxCodecError(f"model container weights are corrupt ({exc})") from exc
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    if [t.size for t in coded] != sizes:
        raise OnnxCodecError(f"model container holds tensors of {[t.size for t in coded]} weights, its header "
                             f"lists {sizes}")
    indices = np.concatenate(coded)
    restored = with_weights(proto, _split(quantizer.dequantize(indices), shapes))
    onnx.checker.check_model(restored)
    return restored
