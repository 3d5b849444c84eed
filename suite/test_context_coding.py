"""The container's coder (greenbench.coding.context): bit-exact, below 32/H where per-tensor statistics
or context carry information, close to H where they do not, and every damaged stream a clear error."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenbench.coding.context import decode_tensors, encode_tensors, sign_lag
from greenbench.coding.entropy import CorruptStreamError, entropy_bits

tensor_lists = st.lists(hnp.arrays(st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
                                   hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                                   elements=st.integers(-(2**7), 2**7 - 1)), min_size=1, max_size=5)


@pytest.mark.property
@given(tensors=tensor_lists)
def test_round_trips_exactly(tensors):
    back = decode_tensors(encode_tensors(tensors))
    assert len(back) == len(tensors)
    for original, decoded in zip(tensors, back):
        np.testing.assert_array_equal(decoded, original.reshape(-1).astype(np.int64))


def test_extreme_magnitudes_round_trip():
    extremes = np.array([0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63 - 1)], np.int64)
    np.testing.assert_array_equal(decode_tensors(encode_tensors([extremes]))[0], extremes)


def test_narrow_indices_code_as_their_int64_copies_and_decode_narrowest():
    """An 8-bit quantizer's int8 indices (−128 included: its magnitude is no int8) give the int64 copy's stream;
    the decoder gives the narrowest dtype that holds every tensor."""
    rng = np.random.default_rng(3)
    small = rng.integers(-128, 128, 5000).astype(np.int8)
    small[:2] = (-128, 127)
    wide = rng.integers(-300, 300, 700).astype(np.int16)
    assert encode_tensors([small]) == encode_tensors([small.astype(np.int64)])
    (back,) = decode_tensors(encode_tensors([small]))
    assert back.dtype == np.int8 and np.array_equal(back, small)
    both = decode_tensors(encode_tensors([small, wide]))
    assert [t.dtype for t in both] == [np.int16, np.int16]
    assert np.array_equal(both[0], small) and np.array_equal(both[1], wide)
    unsigned = decode_tensors(encode_tensors([np.array([255, 0], np.uint8), small]))  # uint8 with int8: int16
    assert np.array_equal(unsigned[0], [255, 0]) and np.array_equal(unsigned[1], small)


def _bits(tensors) -> int:
    return 8 * len(encode_tensors(tensors))


def test_per_tensor_models_beat_one_distribution_for_all():
    # two layers with different spreads under one step: the pooled H overstates what each costs
    rng = np.random.default_rng(0)
    tensors = [np.rint(rng.laplace(scale=s, size=50_000)).astype(np.int64) for s in (0.4, 12.0)]
    pooled = sum(t.size for t in tensors) * entropy_bits(np.concatenate(tensors))
    assert _bits(tensors) < 0.93 * pooled


def test_context_beats_the_zeroth_order_entropy_of_a_correlated_tensor():
    # runs of zeros and of large values, as in pruned or channel-scaled weights
    rng = np.random.default_rng(1)
    scales = np.repeat(rng.choice([0.05, 6.0], size=2_000), 50)
    t = np.rint(rng.laplace(scale=scales)).astype(np.int64)
    assert _bits([t]) < 0.8 * t.size * entropy_bits(t)


def test_signs_that_repeat_at_a_lag_are_found_and_cost_less():
    # a kernel's sign pattern repeated every 6 weights (one feature-map row of a flattened layer), 10 % flipped
    rng = np.random.default_rng(4)
    magnitudes = np.rint(np.abs(rng.laplace(scale=3.0, size=60_000))).astype(np.int64)
    pattern = np.tile(rng.choice([-1, 1], size=6), 10_000) * np.where(rng.random(60_000) < 0.1, -1, 1)
    random_signs = rng.choice([-1, 1], size=60_000)
    assert sign_lag(magnitudes * pattern) == 6 and sign_lag(magnitudes * random_signs) == 0
    nonzero = int(np.count_nonzero(magnitudes))
    saved = _bits([magnitudes * random_signs]) - _bits([magnitudes * pattern])
    # both signs flipped independently: they agree with p = 0.82, H(0.18) = 0.68 bit, at most 0.32 bit saved a sign
    assert saved > 0.2 * nonzero


def test_format_1_streams_still_decode():
    # written by greenbench's format 1 coder (two previous lengths, no lag), before format 2
    old = bytes.fromhex("4742434301030000001e000000000000000600000000000000040000000000000000e37099b0215c6fc4"
                        "0ec8ce632951812a2ec3022f0a6bb800cb9a4ccd")
    first, second, third = decode_tensors(old)
    assert first[:10].tolist() == [-4, -1, 2, 0, -3, 0, 0, -2, 1, -3] and first.size == 30
    assert second.tolist() == [0, 0, 5, -3, 100000, -7] and third.tolist() == [0, 0, 0, 0]


def test_costs_little_over_h_when_there_is_nothing_to_learn():
    t = np.rint(np.random.default_rng(2).laplace(scale=3.0, size=200_000)).astype(np.int64)
    assert _bits([t]) < 1.02 * t.size * entropy_bits(t)


@pytest.mark.parametrize("tensors, problem", [
    ([], "no tensors"),
    ([np.array([-(2**63)], np.int64)], "2\\^63"),
    ([np.array([2**63], np.uint64)], "int64"),
    ([np.array([0.5])], "integers"),
    ([np.array([], np.int64)], "empty"),
])
def test_refuses_what_it_cannot_code(tensors, problem):
    with pytest.raises(ValueError, match=problem):
        encode_tensors(tensors)


def _rechecked(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


@pytest.fixture(scope="module")
def stream() -> bytes:
    rng = np.random.default_rng(3)
    return encode_tensors([rng.integers(-20, 21, 5_000), rng.integers(-3, 4, (30, 30))])


@pytest.mark.parametrize("mangle, problem", [
    (lambda d: b"NOPE" + d[4:], "bad magic"),
    (lambda d: d[:4] + b"\x09" + d[5:], "format 9"),
    (lambda d: d[:-1], "damaged"),
    (lambda d: d[:60] + bytes([d[60] ^ 4]) + d[61:], "damaged"),
    (lambda d: _rechecked(d[:-4][:-200]), "truncated"),  # payload cut short, checksum made to match
    # the first tensor's length (5,000: a 2-byte varint after the count) made 2^60 (a 9-byte varint)
    (lambda d: _rechecked(d[:9] + bytes([0x80] * 8 + [0x10]) + d[11:-4]), "more symbols"),
    (lambda d: _rechecked(d[:5] + (0).to_bytes(4, "little") + d[9:-4]), "0 tensors"),
])
def test_damaged_stream_is_a_clear_error(stream, mangle, problem):
    with pytest.raises(CorruptStreamError, match=problem):
        decode_tensors(mangle(stream))


@pytest.mark.property
@settings(max_examples=40)
@given(data=st.data())
def test_fuzzed_stream_decodes_or_raises(stream, data):
    at = data.draw(st.integers(0, len(stream) - 1))
    mangled = stream[:at] + bytes([stream[at] ^ data.draw(st.integers(1, 255))]) + stream[at + 1:]
    with pytest.raises(CorruptStreamError):
        decode_tensors(mangled)
