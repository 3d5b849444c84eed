"""The model container (thesis §3.5 and beyond): an ONNX graph stored with its weights quantized and coded.

Container layout (all integers little-endian):
    magic "GBNNC" | version byte | u32 header length | header JSON | u64 graph length | graph |
    coded indices | CRC-32
The header names the quantizer and its parameters and lists the quantized initializers (name,
shape) in order; the graph is the ONNX model with those initializers emptied; the coded indices are
one context-coded stream (greenbench.coding.context: per-tensor adaptive models with context) of
every quantized tensor. Decoding rebuilds exactly the model that quantize-then-dequantize produces.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass

import numpy as np
import onnx

from greenbench.coding.context import decode_tensors, encode_tensors
from greenbench.coding.entropy import checked_body, entropy_bits, with_checksum
from greenbench.coding.weights import (
    OnnxCodecError,
    flatten_weights,
    no_weights_reason,
    split_weights,
    weights,
    with_weights,
)
from greenbench.quantization.base import Quantizer, make_quantizer

MAGIC = b"GBNNC"
# 5: a zero-less minifloat's negative levels are numbered from −1 (4: its levels were ±1 … ±2^n, read and
# renumbered; 4 also started identifying the reconstruction; 3: without it; 2: one static range-coded stream)
CONTAINER_VERSION = 5
READABLE_VERSIONS = (4, 5)


def reconstruction_sha256(quantizer: Quantizer, indices: np.ndarray, stored: np.ndarray | None = None) -> str:
    """sha256 of the distinct indices and their float32 reconstructions: two quantizers of one name and
    parameters that reconstruct differently (a user's, say) cannot decode each other's containers.

    `stored` are the indices as an older format wrote them, which its hash was taken of."""
    if stored is None:
        distinct = named = np.unique(indices)
    else:
        distinct, first = np.unique(indices, return_index=True)
        named = stored[first]
    values = quantizer.dequantize(distinct, dtype=np.float32).astype("<f4")
    return hashlib.sha256(named.astype("<i8").tobytes() + values.tobytes()).hexdigest()


def _renumbered_from_version_4(quantizer: Quantizer, indices: np.ndarray) -> np.ndarray:
    """Format 4 numbered a zero-less minifloat's positive levels from +1; 5 numbers them from 0 (so that a
    16-bit format fits int16). Every other quantizer's indices are unchanged."""
    if quantizer.name == "minifloat" and not quantizer.params.get("zero", True):
        return np.where(indices > 0, indices - 1, indices)
    return indices

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
        raise OnnxCodecError(no_weights_reason(proto))
    flat = flatten_weights(tensors)
    indices = quantizer.quantize(flat)
    coded = encode_tensors(list(split_weights(indices, {n: w.shape for n, w in tensors.items()}).values()))
    header = json.dumps({"quantizer": quantizer.name, "params": quantizer.params,
                         "reconstruction_sha256": reconstruction_sha256(quantizer, indices),
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
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise OnnxCodecError(f"model container format {version} is not supported "
                             f"(this greenbench reads formats {', '.join(map(str, READABLE_VERSIONS))})")
    data = checked_body(data, "model container", OnnxCodecError)
    pos = len(MAGIC) + 1
    (header_len,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if len(data) < pos + header_len:
        raise OnnxCodecError("model container is truncated (header)")
    try:
        header = json.loads(data[pos:pos + header_len])
        shapes = _header_shapes(header["tensors"])
        expected_reconstruction = header["reconstruction_sha256"]
        if quantizer is None:
            quantizer = make_quantizer(header["quantizer"], **header["params"])
        elif (quantizer.name, json.loads(json.dumps(quantizer.params))) != (header["quantizer"], header["params"]):
            raise OnnxCodecError(f"the container was coded with {header['quantizer']} {header['params']}, "
                                 f"not with the given {quantizer!r}")
    except OnnxCodecError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
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
    unknown = sorted(set(shapes) - {init.name for init in proto.graph.initializer})
    if unknown:
        raise OnnxCodecError(f"model container header lists tensors its graph does not have: {unknown[:3]}")
    try:
        coded = decode_tensors(data[pos + graph_len:])
    except ValueError as exc:
        raise OnnxCodecError(f"model container weights are corrupt ({exc})") from exc
    sizes = [math.prod(shape) for shape in shapes.values()]
    if [t.size for t in coded] != sizes:
        raise OnnxCodecError(f"model container holds tensors of {[t.size for t in coded]} weights, its header "
                             f"lists {sizes}")
    indices = np.concatenate(coded)
    stored = None
    if version < CONTAINER_VERSION:
        stored, indices = indices, _renumbered_from_version_4(quantizer, indices)
    try:
        if reconstruction_sha256(quantizer, indices, stored) != expected_reconstruction:
            raise OnnxCodecError(f"{quantizer!r} reconstructs this container's indices to other values than the "
                                 "quantizer it was coded with (same name and parameters, another reconstruction)")
        restored = with_weights(proto, split_weights(quantizer.dequantize(indices), shapes))
        onnx.checker.check_model(restored)
    except OnnxCodecError:
        raise
    except (ValueError, KeyError, onnx.checker.ValidationError) as exc:  # indices or names the graph cannot take
        raise OnnxCodecError(f"model container does not rebuild a valid model ({exc})") from exc
    return restored


def _header_shapes(tensors: object) -> dict[str, tuple[int, ...]]:
    """The header's tensor list, checked: unique names, shapes of non-negative integers."""
    if not isinstance(tensors, list) or not tensors:
        raise ValueError("its tensor list is not a non-empty list")
    shapes: dict[str, tuple[int, ...]] = {}
    for t in tensors:
        name, shape = t["name"], t["shape"]
        if not isinstance(name, str) or name in shapes:
            raise ValueError(f"tensor name {name!r} is not a unique string")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40
                                                  for d in shape):
            raise ValueError(f"tensor {name!r} has shape {shape!r}, not a list of sizes")
        shapes[name] = tuple(shape)
    return shapes
