"""Fuzzing of the decoders with files made to be hostile: structurally valid, checksums valid, every header
field drawn from its whole integer range. Each decode gives the exact result or a ValueError, within a
deadline. Run in a subprocess by test_hostile_inputs (a crash there is a failed test, not a dead run):

    python suite/fuzz_decoders.py EXAMPLES [index-stream] [context-stream] [container]   (default: all three)
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenbench.coding.container import CONTAINER_VERSION, decode_container, encode_container
from greenbench.coding.container import MAGIC as CONTAINER_MAGIC
from greenbench.coding.context import LAGS, MAGIC, VERSION, decode_tensors, encode_tensors
from greenbench.coding.entropy import decode_indices, encode_indices, with_checksum
from greenbench.quantization.uniform import Midtread

U32, U64, I64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1)
EDGES_U64 = st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1])
SIZES = st.one_of(U64, EDGES_U64, st.integers(0, 64))
INDICES = st.lists(st.integers(-40, 40), min_size=1, max_size=60).map(lambda v: np.array(v, np.int64))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value >> 7 else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _decodes_exactly_or_refuses(decode, data: bytes, expected=None) -> None:
    try:
        result = decode(data)
    except ValueError:
        return
    if expected is not None:
        expected(result)


@given(q=INDICES, lo=I64, count=st.one_of(I64, st.integers(0, 100)), symbols=st.one_of(U32, st.integers(0, 100)),
       table=st.lists(st.one_of(st.integers(0, 2**63 - 1), st.integers(0, 100)), max_size=12),
       payload=st.binary(max_size=64).map(lambda b: b[:len(b) - len(b) % 4]), keep=st.sampled_from([0, 1, 2, 3]))
def fuzz_index_stream(q, lo, count, symbols, table, payload, keep):
    """A valid stream with its fixed header, table or payload replaced (keep says which survive)."""
    real = encode_indices(q).data[:-4]
    fields = struct.unpack_from("<qqI", real, 5)
    header = struct.pack("<qqI", *(fields if keep & 1 else (lo, count, symbols)))
    rest = real[5 + 20:] if keep & 2 else b"".join(_varint(v) for v in table) + payload
    data = with_checksum(real[:5] + header + rest)
    _decodes_exactly_or_refuses(decode_indices, data,
                                (lambda r: np.testing.assert_array_equal(r, q)) if keep == 3 else None)


@given(tensors=st.lists(INDICES, min_size=1, max_size=4), sizes=st.lists(SIZES, min_size=1, max_size=5),
       lags=st.lists(st.one_of(st.sampled_from((0, *LAGS)), U32), min_size=5, max_size=5),
       count=st.one_of(U32, st.integers(0, 6)), payload=st.binary(max_size=96), keep_payload=st.booleans())
def fuzz_context_stream(tensors, sizes, lags, count, payload, keep_payload):
    """The tensor count, lengths and lags from their whole range, over a real payload or arbitrary bytes."""
    real = encode_tensors(tensors)[:-4]
    fixed = len(MAGIC) + 1 + 4
    real_payload = real[fixed + 2 * len(tensors):]  # roughly: each varint pair is 2+ bytes; any cut is a fuzz case
    data = with_checksum(MAGIC + bytes([VERSION]) + struct.pack("<I", count)
                         + b"".join(_varint(n) + _varint(lag) for n, lag in zip(sizes, lags))
                         + (real_payload if keep_payload else payload))
    _decodes_exactly_or_refuses(decode_tensors, data)


_JSON = st.recursive(st.one_of(st.none(), st.booleans(), I64, st.floats(allow_nan=False), st.text(max_size=8)),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


def _container() -> bytes:
    import torch

    from greenbench.nn.onnx_eval import export_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    return encode_container(export_onnx(model.eval(), (3, 2, 2)), Midtread(levels=16)).data


CONTAINER = None


@given(field=st.sampled_from(["quantizer", "params", "tensors", "reconstruction_sha256", "name", "shape"]),
       value=_JSON, graph_length=st.one_of(U64, EDGES_U64), forge_graph_length=st.booleans())
def fuzz_container(field, value, graph_length, forge_graph_length):
    """A real container with one header field replaced by arbitrary JSON, or its graph length forged."""
    body = CONTAINER[:-4]
    pos = len(CONTAINER_MAGIC) + 1
    (length,) = struct.unpack_from("<I", body, pos)
    header = json.loads(body[pos + 4:pos + 4 + length])
    if field in ("name", "shape"):
        header["tensors"][0][field] = value
    else:
        header[field] = value
    forged = json.dumps(header).encode()
    rest = body[pos + 4 + length:]
    if forge_graph_length:
        rest = struct.pack("<Q", graph_length) + rest[8:]
    data = with_checksum(CONTAINER_MAGIC + bytes([CONTAINER_VERSION]) + struct.pack("<I", len(forged)) + forged + rest)
    _decodes_exactly_or_refuses(decode_container, data)


TARGETS = {"index-stream": fuzz_index_stream, "context-stream": fuzz_context_stream, "container": fuzz_container}

if __name__ == "__main__":
    examples, targets = int(sys.argv[1]), sys.argv[2:] or list(TARGETS)  # one process: torch is imported once
    CONTAINER = _container()
    # compile the kernels before the deadlines start (a fresh clone has no numba cache): the decoders', and the
    # encoders' for the int64 indices the cases code
    decode_container(CONTAINER)
    decode_indices(encode_indices(np.arange(-3, 4)).data)
    decode_tensors(encode_tensors([np.arange(-3, 4)]))
    for target in targets:
        settings(max_examples=examples, deadline=2000, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))(TARGETS[target])()
        print(f"{target}: {examples} examples, every one exact or refused")
