"""Entropy, CR/RE and real entropy coding of index arrays (thesis Eqs. 2.31, 3.1, 3.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.coding.entropy import (
    CorruptStreamError,
    compression_ratio,
    decode_indices,
    encode_indices,
    entropy_bits,
    general_purpose_sizes,
    index_counts,
    space_reduction,
)
from greenbench.quantization.uniform import Deadzone

index_arrays = hnp.arrays(st.sampled_from([np.int8, np.int16, np.int32, np.int64]), st.integers(1, 3000),
                          elements=st.integers(-100, 100))


@pytest.mark.property
@given(q=index_arrays)
def test_entropy_bounds(q):
    h = entropy_bits(q)
    assert 0.0 <= h <= math.log2(np.unique(q).size) + 1e-12


@pytest.mark.property
@given(k=st.integers(0, 12), repeats=st.integers(1, 5), offset=st.integers(-(2**40), 2**40))
def test_entropy_of_equiprobable_symbols_is_k(k, repeats, offset):
    q = np.repeat(np.arange(2**k, dtype=np.int64) * 7 + offset, repeats)
    assert entropy_bits(q) == pytest.approx(k, abs=1e-12)


def test_entropy_of_sparse_wide_indices_uses_no_huge_histogram():
    q = np.array([-(2**60), 0, 2**60, 2**60], dtype=np.int64)
    assert entropy_bits(q) == pytest.approx(1.5)
    assert index_counts(q).tolist() == [1, 1, 2]


def test_a_sparse_alphabet_is_coded_without_a_dense_table():
    """Two symbols 2^30 apart: a dense histogram would take 8 GiB; the stream round-trips and stays small."""
    q = np.array([0, 2**30, 0, 0, 2**30, -(2**35)], dtype=np.int64)
    coded = encode_indices(q)
    np.testing.assert_array_equal(decode_indices(coded.data), q)
    assert len(coded.data) < 64


def test_big_endian_indices_are_the_same_numbers():
    q = np.array([3, -1, 3, 0, 7], dtype=">i8")
    assert entropy_bits(q) == entropy_bits(q.astype("<i8"))
    np.testing.assert_array_equal(decode_indices(encode_indices(q).data), q.astype(np.int64))


def test_cr_and_re():
    assert compression_ratio(4.0) == 8.0 and space_reduction(4.0) == 0.875
    assert compression_ratio(0.0) == math.inf


@pytest.mark.property
@given(q=index_arrays)
def test_coding_round_trips_exactly(q):
    coded = encode_indices(q)
    np.testing.assert_array_equal(decode_indices(coded.data), q.reshape(-1).astype(np.int64))


def test_narrow_indices_code_as_their_int64_copies_and_decode_narrowest():
    q = np.random.default_rng(4).integers(-128, 128, 3000).astype(np.int8)
    q[:2] = (-128, 127)  # q − lo spans 255: it must not wrap in int8
    assert encode_indices(q).data == encode_indices(q.astype(np.int64)).data
    back = decode_indices(encode_indices(q).data)
    assert back.dtype == np.int8 and np.array_equal(back, q)
    assert decode_indices(encode_indices(np.full(9, 40_000)).data).dtype == np.int32  # one symbol: the header's


def test_coding_cost_is_close_to_entropy_for_large_arrays():
    x = np.random.default_rng(3).laplace(size=1_000_000)
    q = Deadzone(0.7, step=0.5).quantize(x)
    coded = encode_indices(q)
    assert coded.entropy == pytest.approx(entropy_bits(q))
    assert 0 <= coded.overhead < 0.002  # a range coder sits within 0.2 % of n·H here (table included)
    sizes = general_purpose_sizes(q)
    assert min(sizes.values()) > len(coded.data)  # an entropy coder beats general-purpose compressors


STREAM = encode_indices(np.arange(-50, 50).repeat(3)).data


@pytest.mark.parametrize("mangle, problem", [
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + b"\x01" + d[5:], "format 1 is not supported"),
    (lambda d: d[:10], "too short"),
    (lambda d: d[:-2], "damaged"),
    (lambda d: d + b"\x00\x00\x00\x00", "damaged"),
    (lambda d: d[:6] + bytes([d[6] ^ 1]) + d[7:], "damaged"),  # the header's lowest index
    (lambda d: d[:-9] + bytes([d[-9] ^ 0x80]) + d[-8:], "damaged"),  # one bit of the payload
])
def test_damaged_streams_raise(mangle, problem):
    with pytest.raises(CorruptStreamError, match=problem):
        decode_indices(mangle(STREAM))


def test_a_damaged_stream_never_decodes_to_other_values():
    """Every single-byte flip of a 5,000-value stream is caught (before format 2, one in two decoded wrongly)."""
    q = np.random.default_rng(0).laplace(scale=3, size=5000).round().astype(np.int64)
    data = encode_indices(q).data
    for at in range(len(data)):
        with pytest.raises(CorruptStreamError):
            decode_indices(data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:])


@pytest.mark.property
@given(data=st.data())
def test_fuzzed_streams_decode_exactly_or_raise_a_value_error(data):
    """Arbitrary bytes, and single-byte flips, insertions and truncations of valid streams."""
    q = data.draw(hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(-40, 40)))
    original = encode_indices(q).data
    kind = data.draw(st.sampled_from(["flip", "insert", "truncate", "arbitrary", "valid"]))
    at = data.draw(st.integers(0, len(original) - 1))
    mangled = {"flip": lambda: original[:at] + bytes([original[at] ^ data.draw(st.integers(1, 255))])
               + original[at + 1:],
               "insert": lambda: original[:at] + data.draw(st.binary(min_size=1, max_size=4)) + original[at:],
               "truncate": lambda: original[:at],
               "arbitrary": lambda: data.draw(st.binary(max_size=300)),
               "valid": lambda: original}[kind]()
    try:
        decoded = decode_indices(mangled)
    except ValueError:
        assert mangled != original
    else:
        np.testing.assert_array_equal(decoded, q)


@pytest.mark.parametrize("bad, problem", [(np.array([]), "empty|integers"), (np.array([0.5]), "integers")])
def test_entropy_rejects_non_indices(bad, problem):
    with pytest.raises(ValueError, match=problem):
        entropy_bits(bad)
