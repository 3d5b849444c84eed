"""ONNX export, whole-model weight quantization and the compressed container."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from greenbench.coding.container import CONTAINER_VERSION, decode_container, encode_container
from greenbench.coding.weights import OnnxCodecError, flat_weights, load_onnx, quantize_model, weight_names, weights
from greenbench.nn.models import CIFAR_NETWORKS, build_network, network_spec
from greenbench.nn.onnx_eval import export_onnx, run_onnx
from greenbench.quantization.base import quantizer_examples
from greenbench.quantization.tabled import Minifloat, MuLaw
from greenbench.quantization.uniform import Deadzone, Midrise, Midtread


@pytest.fixture(scope="module")
def lenet():
    model = build_network("lenet5", seed=1).eval()
    return model, export_onnx(model, (3, 32, 32))


@pytest.mark.parametrize("network", CIFAR_NETWORKS)
def test_onnxruntime_matches_pytorch(network):
    model = build_network(network, seed=0).eval()
    proto = export_onnx(model, network_spec(network).input_shape)
    x = torch.randn(4, *network_spec(network).input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.max(np.abs(run_onnx(proto, x.numpy()) - expected)) <= 1e-4
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)  # folded into the convolutions


def test_every_weight_and_bias_is_found(lenet):
    model, proto = lenet
    assert len(weight_names(proto)) == 10  # 2 convs + 3 linears, weight and bias each
    assert flat_weights(proto).size == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("quantizer", [Midtread(levels=2**6), Deadzone(0.7, levels=2**5), MuLaw(2**8),
                                       Minifloat(4, 3)], ids=repr)
def test_quantize_model_replaces_every_weight(lenet, quantizer):
    _, proto = lenet
    q = quantize_model(proto, quantizer)
    for name, w in weights(q.proto).items():
        np.testing.assert_array_equal(w, quantizer.reconstruct(weights(proto)[name]).astype(np.float32))
    assert q.weight_count == flat_weights(proto).size and 0 < q.entropy <= np.log2(quantizer.max_levels)
    run_onnx(q.proto, np.zeros((2, 3, 32, 32), np.float32))  # still a runnable graph


@pytest.mark.parametrize("quantizer", [q for q in quantizer_examples() if q.name != "affine"][::4], ids=repr)
def test_container_decodes_to_the_quantized_model_exactly(lenet, quantizer):
    _, proto = lenet
    container = encode_container(proto, quantizer)
    restored = decode_container(container.data)
    x = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(restored, x), run_onnx(quantize_model(proto, quantizer).proto, x))
    assert container.fp32_weight_bytes == 4 * flat_weights(proto).size


def test_real_compression_ratio_is_at_least_32_over_h(lenet):
    _, proto = lenet
    quantizer = Deadzone(0.7, levels=2**6)
    container = encode_container(proto, quantizer)
    ideal = 32 / quantize_model(proto, quantizer).entropy
    assert container.entropy == pytest.approx(32 / ideal)
    assert container.real_cr >= ideal
    assert len(container.data) < container.fp32_weight_bytes / 4


@pytest.mark.parametrize("mangle, problem", [
    (lambda d: b"NOTNN" + d[5:], "bad magic"),
    (lambda d: d[:5] + b"\x01" + d[6:], "format 1 is not supported"),
    (lambda d: d[:7] + b"\xff" + d[8:], "damaged"),  # header length edited
    (lambda d: d[:40] + bytes([d[40] ^ 0x20]) + d[41:], "damaged"),  # a byte of the header's JSON
    (lambda d: d[:200], "damaged|truncated"),
    (lambda d: d[:-7], "damaged"),
    (lambda d: d + b"\x00", "damaged"),
    (lambda d: d[:-100] + bytes([d[-100] ^ 1]) + d[-99:], "damaged"),  # one bit of the coded weights
])
def test_damaged_container_raises_clear_error(container, mangle, problem):
    with pytest.raises(OnnxCodecError, match=problem):
        decode_container(mangle(container.data))


FORMAT_4 = Path(__file__).parents[1] / "fixtures" / "container-format-4"  # by greenbench 1e9ad6d, of model.onnx


@pytest.mark.parametrize("name, quantizer", [
    ("minifloat-1-4-3", Minifloat(4, 3)),  # zero-less: its positive indices are renumbered from 0 in format 5
    ("minifloat-1-4-3-zero", Minifloat(4, 3, zero=True)),
    ("midrise-64", Midrise(levels=64, xmax=1.0)),
])
def test_format_4_containers_decode_to_the_same_model(name, quantizer):
    proto = load_onnx((FORMAT_4 / "model.onnx").read_bytes())
    data = (FORMAT_4 / f"{name}.v4.gbnnc").read_bytes()
    assert data[5] == 4 and CONTAINER_VERSION == 5
    restored = weights(decode_container(data))
    for tensor, expected in weights(quantize_model(proto, quantizer).proto).items():
        np.testing.assert_array_equal(restored[tensor], expected)
    with pytest.raises(OnnxCodecError, match="format 3 is not supported"):
        decode_container(data[:5] + b"\x03" + data[6:])


@pytest.fixture(scope="module")
def container(lenet):
    return encode_container(lenet[1], Midtread(levels=2**6))


def _with_forged_header(data: bytes, edit) -> bytes:
    """The container with its header JSON edited and every checksum valid again: a file made to be hostile."""
    import json
    import struct

    from greenbench.coding.entropy import with_checksum

    body, pos = data[:-4], 6
    (length,) = struct.unpack_from("<I", body, pos)
    header = json.loads(body[pos + 4:pos + 4 + length])
    forged = json.dumps(edit(header)).encode()
    return with_checksum(body[:pos] + struct.pack("<I", len(forged)) + forged + body[pos + 4 + length:])


def _first_tensor(header, **fields):
    return {**header, "tensors": [{**header["tensors"][0], **fields}] + header["tensors"][1:]}


@pytest.mark.parametrize("edit, problem", [
    (lambda h: _first_tensor(h, shape=[-1, 5]), "not a list of sizes"),
    (lambda h: _first_tensor(h, shape=["6", 1]), "not a list of sizes"),
    (lambda h: _first_tensor(h, shape=6), "not a list of sizes"),
    (lambda h: _first_tensor(h, name=7), "not a unique string"),
    (lambda h: _first_tensor(h, name=h["tensors"][1]["name"]), "not a unique string"),
    (lambda h: _first_tensor(h, name="no-such-initializer"), "graph does not have"),
    (lambda h: _first_tensor(h, shape=[2, 2]), "header lists"),
    (lambda h: {**h, "tensors": []}, "not a non-empty list"),
    (lambda h: {**h, "params": {"levels": "many"}}, "header is corrupt"),
    (lambda h: {**h, "quantizer": "nope"}, "unknown quantizer"),
    (lambda h: {k: v for k, v in h.items() if k != "reconstruction_sha256"}, "header is corrupt"),
    (lambda h: {**h, "params": {"levels": 2**5}}, "other values"),
    (lambda h: [h], "header is corrupt"),
], ids=["negative-dim", "text-dim", "shape-int", "name-int", "name-twice", "name-unknown", "size", "no-tensors",
        "params", "quantizer", "no-reconstruction", "other-levels", "not-object"])
def test_forged_container_headers_are_refused_by_the_codec(container, edit, problem):
    with pytest.raises(OnnxCodecError, match=problem):
        decode_container(_with_forged_header(container.data, edit))


def test_a_container_refuses_a_quantizer_that_reconstructs_differently(lenet):
    from greenbench.checks import FunctionQuantizer

    def quantizer(step):
        return FunctionQuantizer(lambda x: np.round(x / step).astype(np.int64), lambda q: q * step, "user-round")

    data = encode_container(lenet[1], quantizer(0.01)).data
    decode_container(data, quantizer(0.01))  # the same reconstruction decodes
    with pytest.raises(OnnxCodecError, match="reconstructs this container's indices to other values"):
        decode_container(data, quantizer(0.05))  # same name and parameters: the values tell them apart


@pytest.mark.property
@settings(max_examples=60)
@given(data=st.data())
def test_fuzzed_container_decodes_exactly_or_raises_a_value_error(container, data):
    """Single-byte flips, insertions and truncations of a valid container, and arbitrary bytes."""
    original = container.data
    kind = data.draw(st.sampled_from(["flip", "insert", "truncate", "arbitrary"]))
    if kind == "arbitrary":
        mangled = data.draw(st.binary(max_size=512))
    else:
        at = data.draw(st.integers(0, len(original) - 1))
        if kind == "flip":
            mangled = original[:at] + bytes([original[at] ^ data.draw(st.integers(1, 255))]) + original[at + 1:]
        elif kind == "insert":
            mangled = original[:at] + data.draw(st.binary(min_size=1, max_size=4)) + original[at:]
        else:
            mangled = original[:at]
    with pytest.raises(ValueError):
        decode_container(mangled)


def test_corrupt_onnx_raises_clear_error(lenet, tmp_path):
    _, proto = lenet
    data = proto.SerializeToString()
    with pytest.raises(OnnxCodecError, match="corrupt or invalid ONNX"):
        load_onnx(data[: len(data) // 2])
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(OnnxCodecError, match="corrupt or invalid ONNX"):
        load_onnx(path)
    assert isinstance(load_onnx(data), onnx.ModelProto)


def test_non_finite_weights_are_refused(lenet):
    _, proto = lenet
    bad = onnx.ModelProto()
    bad.CopyFrom(proto)
    init = next(i for i in bad.graph.initializer if i.name in weight_names(proto))
    array = onnx.numpy_helper.to_array(init).copy()
    array.flat[0] = np.nan
    init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
    with pytest.raises(ValueError, match="non-finite"):
        quantize_model(bad, Midtread(levels=2**8))


def _matmul_model(data_type, np_dtype):
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array((np.random.default_rng(0).normal(size=(4, 3)) * 3).astype(np_dtype), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", data_type, [1, 4])],
                              [helper.make_tensor_value_info("y", data_type, [1, 3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("np_dtype", [np.float16, np.float64], ids=["float16", "float64"])
def test_float16_and_float64_weights_are_quantized_in_their_own_type(np_dtype):
    from onnx import helper, numpy_helper

    proto = _matmul_model(helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype)), np_dtype)
    quantizer = Midtread(levels=16, xmax=8.0)
    quantized = quantize_model(proto, quantizer)
    assert quantized.weight_count == 12
    stored = numpy_helper.to_array(quantized.proto.graph.initializer[0])
    assert stored.dtype == np_dtype
    np.testing.assert_array_equal(stored, quantizer.reconstruct(numpy_helper.to_array(proto.graph.initializer[0])))
    restored = decode_container(encode_container(proto, quantizer).data)
    np.testing.assert_array_equal(numpy_helper.to_array(restored.graph.initializer[0]), stored)


def test_integer_weights_are_refused_with_their_type():
    from onnx import TensorProto

    with pytest.raises(OnnxCodecError, match="weights are INT8; greenbench quantizes FLOAT16, FLOAT and DOUBLE"):
        quantize_model(_matmul_model(TensorProto.INT8, np.int8), Midtread(levels=16))
