"""Context-adaptive coding of quantization indices, one model set per tensor (after NNCodec's DeepCABAC).

The thesis's CR = 32/H assumes one ideal coder with one distribution for all of a model's weights.
Under one global step each tensor has its own spread, and neighbouring weights are not independent,
so a coder that adapts per tensor and to context writes below the zeroth-order entropy H. Each index
k is binarized in the manner of DeepCABAC: the bit length L of |k| in unary (L = 0 for k = 0), the
bits of |k| below its leading one, then the sign. Every binary decision is range-coded under an
adaptive probability (two estimators, fast and slow, averaged, as in VVC's CABAC) chosen by its
context. Every tensor starts from fresh models; decoding replays the same models: bit-exact.

Contexts (format 2; what each bought on LeNet-5 / GoogLeNet at their budget settings, bytes against
NNCodec's DeepCABAC 76,141 / 112,786 on the same indices, format 1 coding 76,662 / 115,897):
- unary flags: the flag's position, the previous index's bit length (0, 1, ≥ 2), the mean bit length
  of the two before it (−0.3 %), and with a lag the bit length of the index `lag` places back;
- signs: the sign of the previous non-zero index (weights of one kernel row share signs: −2.6 % on
  GoogLeNet) and of the index `lag` places back (−1.7 %);
- the lag, per tensor: the distance (among LAGS) at which the tensor's signs correlate most, found on
  its first 2^20 indices and sent in the header (0: none) — a weight's neighbour one feature-map row,
  one kernel row or one kernel earlier, which a 1-D scan of the previous indices cannot see;
- bits below the leading one: L and the bits above them (the first three), or their position;
- estimators that learn fast at a tensor's start: a model's first n decisions adapt at rate
  1/2^⌈log2(n + 1)⌉ until its window is reached (−0.2 %): 32 and 256 decisions, 16 and 256 in a
  tensor under 32,768 indices (the students' −0.1 %).
Format 1 (two previous lengths, one sign model per context, windows 16 and 128 from the start, no lag)
is still decoded.

The range coder is LZMA's (carry propagation through a byte cache), with 15-bit probabilities.
Stream "GBCC": magic, version, tensor count, per tensor its length (and in format 2 its lag), the
coded bytes, then a CRC-32 of everything before it.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numba as nb
import numpy as np

from greenbench.coding.entropy import (
    CorruptStreamError,
    checked_body,
    in_narrowest_dtype,
    read_varints,
    varints,
    with_checksum,
)
from greenbench.core.validation import as_index_array

MAGIC = b"GBCC"
MAX_SYMBOLS = 1 << 31  # the most indices a stream may claim: 2^31 int64 values are 16 GiB
VERSION = 2
READABLE = (1, 2)
_HEADER = struct.Struct("<I")
_LENGTH_V1 = struct.Struct("<Q")  # format 1: each tensor's length; format 2: length and lag as LEB128 varints

PROB_BITS = 15
PROB_ONE = 1 << PROB_BITS
WARM_UP = 1 << 8  # decisions after which the slow window (256) is reached: the warm-up ends
WARM_SHIFTS = np.array([(n + 1).bit_length() for n in range(WARM_UP)], np.int64)  # after n decisions
SMALL_TENSOR = 1 << 15  # format 2: a smaller tensor's fast estimator adapts over 16 decisions, a larger's over 32
LENGTH_CLASSES = 3  # a neighbour's bit length counts as 0, 1, or 2 and more
CONTEXTS = LENGTH_CLASSES ** 3  # previous, the two before it, the lag's
SIGN_STATES = 9  # (none, +, −) of the previous non-zero index × (0, +, −) of the lag's
LAGS = (2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 25, 36)
LAG_SAMPLE = 1 << 20
TOP = 1 << 24
PREFIX_BITS = 3  # bits below the leading one that are modelled with the bits above them
# model layout: unary flags [context, position], signs [context, sign state], prefix bits [L, node],
# other bits [L, position]
UNARY, SIGNS = 0, CONTEXTS * 64
PREFIX = SIGNS + CONTEXTS * SIGN_STATES
TAIL = PREFIX + 64 * (1 << PREFIX_BITS)
MODELS = TAIL + 64 * 64


@nb.njit(inline="always")
def _context(lengths, i, start, lag, fmt):
    """The unary flags' and signs' context of index i of the tensor starting at `start`."""
    length1 = lengths[i - 1] if i - 1 >= start else 0
    length2 = lengths[i - 2] if i - 2 >= start else 0
    if fmt == 1:
        return min(length1, LENGTH_CLASSES - 1) * LENGTH_CLASSES + min(length2, LENGTH_CLASSES - 1)
    length3 = lengths[i - 3] if i - 3 >= start else 0
    above = lengths[i - lag] if lag and i - lag >= start else 0
    return ((min(length1, LENGTH_CLASSES - 1) * LENGTH_CLASSES + min((length2 + length3 + 1) // 2, LENGTH_CLASSES - 1))
            * LENGTH_CLASSES + min(above, LENGTH_CLASSES - 1))


@nb.njit(inline="always")
def _sign_model(ctx, symbols, i, start, lag, last_sign, fmt):
    if fmt == 1:
        return SIGNS + ctx
    above = symbols[i - lag] if lag and i - lag >= start else 0
    return SIGNS + ctx * SIGN_STATES + last_sign * 3 + (0 if above == 0 else 1 if above > 0 else 2)


@nb.njit(inline="always")
def _bit_length(a):
    n = 0
    while a >> n:
        n += 1
    return n


@nb.njit(inline="always")
def _bit_model(length, b, node):
    """The model of bit b (counted from 0, below the leading one) of a magnitude of bit length `length`."""
    if length - 2 - b < PREFIX_BITS:
        return PREFIX + length * (1 << PREFIX_BITS) + node
    return TAIL + length * 64 + b


@nb.njit(inline="always")
def _probability(models, i):
    """P(bit = 0) in 1/2^15, kept away from 0 and 1 so that no decision is impossible."""
    return min(max((models[0, i] + models[1, i]) >> 1, 32), PROB_ONE - 32)


@nb.njit(inline="always")
def _adapt(models, i, bit):
    """models: fast and slow estimates, their shifts, and each model's decisions so far (its warm-up)."""
    fast, slow = models[2, 0], models[2, 1]
    seen = models[3, i]
    if seen < WARM_UP:  # format 2's first decisions of a model: shifts 1, 2, 2, 3, 3, 3, 3, 4, … up to the window
        models[3, i] = seen + 1
        shift = WARM_SHIFTS[seen]
        fast, slow = min(fast, shift), min(slow, shift)
    if bit:
        models[0, i] -= models[0, i] >> fast
        models[1, i] -= models[1, i] >> slow
    else:
        models[0, i] += (PROB_ONE - models[0, i]) >> fast
        models[1, i] += (PROB_ONE - models[1, i]) >> slow


# These three are inlined into the coding loops (encoding 1.3×, decoding 2.6× faster than calls). The encoder's
# state travels as a tuple of scalars, which LLVM keeps in registers; in an array its elements were reloaded
# after every store to the output or the models (encoding 1.4× faster). The decoder's gained nothing so: an array.

@nb.njit(inline="always")
def _shift_low(coder, out):
    """LZMA's byte output: a byte is held back while a carry could still change it. coder: low, range, cache,
    cache size, bytes written."""
    low, rng, cache, pending, written = coder
    if low < 0xFF000000 or low >= (1 << 32):
        carry = low >> 32
        temp = cache
        while True:
            out[written] = (temp + carry) & 0xFF
            written += 1
            temp = 0xFF
            pending -= 1
            if pending == 0:
                break
        cache = (low >> 24) & 0xFF
    return (low & 0x00FFFFFF) << 8, rng, cache, pending + 1, written


@nb.njit(inline="always")
def _encode_bit(coder, out, models, i, bit):
    low, rng, cache, pending, written = coder
    bound = (rng >> PROB_BITS) * _probability(models, i)
    if bit:
        low += bound
        rng -= bound
    else:
        rng = bound
    _adapt(models, i, bit)
    while rng < TOP:
        low, rng, cache, pending, written = _shift_low((low, rng << 8, cache, pending, written), out)
    return low, rng, cache, pending, written


@nb.njit(inline="always")
def _decode_bit(state, data, models, i):
    """state: code, range, read position."""
    bound = (state[1] >> PROB_BITS) * _probability(models, i)
    if state[0] < bound:
        state[1] = bound
        bit = 0
    else:
        state[0] -= bound
        state[1] -= bound
        bit = 1
    _adapt(models, i, bit)
    while state[1] < TOP:
        state[1] <<= 8
        byte = data[state[2]] if state[2] < data.size else 0
        state[0] = ((state[0] << 8) | byte) & 0xFFFFFFFF
        state[2] += 1
    return bit


@nb.njit(cache=True)
def _fresh_models(fmt, size):
    """Every model at ½ (rows: fast, slow; then the two shifts; then the decisions seen, up to WARM_UP):
    a tensor's start, alike in encoder and decoder."""
    models = np.zeros((4, MODELS), np.int64)
    models[0, :] = PROB_ONE // 2
    models[1, :] = PROB_ONE // 2
    models[2, 0], models[2, 1] = (4, 7) if fmt == 1 else (4, 8) if size < SMALL_TENSOR else (5, 8)
    if fmt == 1:
        models[3, :] = WARM_UP  # no warm-up
    return models


@nb.njit(cache=True)
def _encode(symbols, lengths, lags, capacity):
    out = np.empty(capacity, np.uint8)
    coder = (np.int64(0), np.int64(0xFFFFFFFF), np.int64(0), np.int64(1), np.int64(0))  # low, range, cache, …
    bit_lengths = np.empty(symbols.size, np.int64)
    start = 0
    for t in range(lengths.size):
        models = _fresh_models(2, lengths[t])
        lag, last_sign = lags[t], 0
        for i in range(start, start + lengths[t]):
            k = np.int64(symbols[i])  # widened: the magnitude of an int8 −128 is no int8
            a = abs(k)
            length = _bit_length(a)
            bit_lengths[i] = length
            ctx = _context(bit_lengths, i, start, lag, 2)
            for j in range(length):
                coder = _encode_bit(coder, out, models, UNARY + ctx * 64 + j, 1)
            if length < 63:
                coder = _encode_bit(coder, out, models, UNARY + ctx * 64 + length, 0)
            node = 1
            for b in range(length - 2, -1, -1):
                bit = (a >> b) & 1
                coder = _encode_bit(coder, out, models, _bit_model(length, b, node), bit)
                if node < (1 << PREFIX_BITS):
                    node = 2 * node + bit
            if a:
                coder = _encode_bit(coder, out, models, _sign_model(ctx, symbols, i, start, lag, last_sign, 2),
                                    k < 0)
                last_sign = 1 if k > 0 else 2
        start += lengths[t]
    # flush the value in [low, low + range) with the most trailing zero bits, and leave its zero bytes out: the
    # decoder reads zeros past the end
    low, rng, cache, pending, written = coder
    for bits in range(32, -1, -1):
        mask = (np.int64(1) << bits) - 1
        value = (low + mask) & ~mask
        if value - low < rng:
            low = value
            break
    coder = (low, rng, cache, pending, written)
    for _ in range(5):
        coder = _shift_low(coder, out)
    written = coder[4]
    end = written
    while end > max(1, written - 5) and out[end - 1] == 0:  # the flush's own bytes only
        end -= 1
    return out[1:end]  # the range coder's first byte is always 0: not written


@nb.njit(cache=True)
def _decode(data, lengths, lags, fmt):
    symbols = np.empty(lengths.sum(), np.int64)
    bit_lengths = np.empty(symbols.size, np.int64)
    skip = 1 if fmt == 1 else 0  # format 1 wrote the range coder's first byte, always 0
    state = np.array([0, 0xFFFFFFFF, skip], np.int64)
    for j in range(skip, skip + 4):
        state[0] = (state[0] << 8) | (data[j] if j < data.size else 0)
    state[2] = skip + 4
    start = 0
    for t in range(lengths.size):
        models = _fresh_models(fmt, lengths[t])
        lag, last_sign = lags[t], 0
        for i in range(start, start + lengths[t]):
            ctx = _context(bit_lengths, i, start, lag, fmt)
            length = 0
            while length < 63 and _decode_bit(state, data, models, UNARY + ctx * 64 + length):
                length += 1
            a = np.int64(1) << (length - 1) if length else np.int64(0)
            node = 1
            for b in range(length - 2, -1, -1):
                bit = _decode_bit(state, data, models, _bit_model(length, b, node))
                a |= np.int64(bit) << b
                if node < (1 << PREFIX_BITS):
                    node = 2 * node + bit
            if a:
                if _decode_bit(state, data, models, _sign_model(ctx, symbols, i, start, lag, last_sign, fmt)):
                    a = -a
                last_sign = 1 if a > 0 else 2
            symbols[i] = a
            bit_lengths[i] = length
        start += lengths[t]
    return symbols, state[2]


@nb.njit(cache=True)
def _sign_correlations(signs, lags):
    """The correlation of signs[i] and signs[i − lag] (int8: −1, 0, 1) for each lag (NaN where either side does
    not vary), from exact integer sums: one pass a lag, no float32 rounding."""
    found = np.full(lags.size, np.nan)
    for j in range(lags.size):
        lag = lags[j]
        n = signs.size - lag
        ab = a = b = aa = bb = 0
        for i in range(n):
            x, y = np.int64(signs[i + lag]), np.int64(signs[i])
            ab += x * y
            a += x
            b += y
            aa += x * x
            bb += y * y
        spread = math.sqrt(aa / n - (a / n) ** 2) * math.sqrt(bb / n - (b / n) ** 2)
        if spread > 0:
            found[j] = (ab / n - (a / n) * (b / n)) / spread
    return found


def sign_lag(indices: np.ndarray) -> int:
    """The distance among LAGS at which the tensor's signs correlate (0: none above 0.05), on its first LAG_SAMPLE
    indices: the neighbour its sign and unary contexts look at. The shortest of those within 10 % of the
    strongest: a pattern that repeats every 6 repeats every 12 too, and the nearer neighbour is the one meant."""
    signs = np.sign(indices[:LAG_SAMPLE]).astype(np.int8)  # one dtype: one compilation of the loop
    lags = np.array([lag for lag in LAGS if lag < signs.size // 4], np.int64)
    found = {int(lag): float(c) for lag, c in zip(lags, _sign_correlations(signs, lags)) if not math.isnan(c)}
    strongest = max(found.values(), default=0.0)
    if strongest <= 0.05:
        return 0
    return min(lag for lag, corr in found.items() if corr >= 0.9 * strongest)


def encode_tensors(tensors: list[Any]) -> bytes:
    """Code index tensors (any shapes and integer dtypes, flattened) into one checked stream."""
    if not tensors:
        raise ValueError("no tensors to code")
    flat = [as_index_array(t).reshape(-1) for t in tensors]
    for i, f in enumerate(flat):  # (as_index_array refused values beyond int64)
        if f.dtype == np.int64 and int(f.min()) == -2**63:
            raise ValueError(f"tensor {i} holds the index −2^63, whose magnitude is no int64")
    common = np.result_type(*flat)  # the indices' own dtype, not a copy 8 bytes an index, where they share one
    symbols = np.concatenate(flat).astype(common if common.kind == "i" else np.int64, copy=False)
    lengths = np.array([f.size for f in flat], np.int64)
    lags = np.array([sign_lag(f) for f in flat], np.int64)
    # each decision costs at most 10 bits (probabilities stay ≥ 2^-10); a symbol takes at most 2·63 + 1 decisions
    lengths_bits = np.frexp(np.abs(symbols.astype(np.float64)))[1].astype(np.int64)
    capacity = int((10 * (2 * lengths_bits.sum() + 2 * symbols.size)) // 8) + 64
    coded = _encode(symbols, lengths, lags, capacity)
    header = MAGIC + bytes([VERSION]) + _HEADER.pack(len(flat)) + (
        varints(np.column_stack([lengths, lags]).reshape(-1)))
    return with_checksum(header + coded.tobytes())


def decode_tensors(data: bytes) -> list[np.ndarray]:
    """The flat index tensors that `encode_tensors` coded, in the narrowest signed integer dtype that holds them
    all; CorruptStreamError if the stream is damaged."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a context-coded stream is bytes, got {type(data).__name__}")
    data = bytes(data)
    fixed = len(MAGIC) + 1 + _HEADER.size
    if len(data) < fixed or not data.startswith(MAGIC):
        raise CorruptStreamError("not a greenbench context-coded stream (bad magic or too short)")
    fmt = data[len(MAGIC)]
    if fmt not in READABLE:
        raise CorruptStreamError(f"context-coded stream format {fmt} is not supported "
                                 f"(this greenbench reads formats {', '.join(map(str, READABLE))})")
    body = checked_body(data, "context-coded stream")
    (count,) = _HEADER.unpack_from(body, len(MAGIC) + 1)
    if count == 0 or fixed + count > len(body):
        raise CorruptStreamError(f"corrupt context-coded stream header ({count} tensors)")
    if fmt == 1:
        if fixed + count * _LENGTH_V1.size > len(body):
            raise CorruptStreamError(f"corrupt context-coded stream header ({count} tensors)")
        sizes = [int(n) for n in np.frombuffer(body, "<u8", count, fixed)]  # Python integers: a sum cannot wrap
        lag_list, pos = [0] * count, fixed + count * _LENGTH_V1.size
    else:
        entries, pos = read_varints(body, 2 * count, fixed, "context-coded stream header")
        sizes, lag_list = entries[0::2].tolist(), entries[1::2].tolist()  # Python integers: a sum cannot wrap
    if any(lag not in (0, *LAGS) for lag in lag_list):
        raise CorruptStreamError(f"corrupt context-coded stream header: a lag not in {LAGS}")
    payload = np.frombuffer(body, np.uint8, offset=pos)
    if sum(sizes) > 710 * 8 * (payload.size + 8):  # format 2 leaves out up to 8 trailing zero bytes
        raise CorruptStreamError("corrupt context-coded stream header: more symbols than its bytes can hold")
    if sum(sizes) > MAX_SYMBOLS:
        raise CorruptStreamError(f"context-coded stream claims {sum(sizes):,} indices, over the {MAX_SYMBOLS:,} "
                                 "this decoder allocates (16 GiB)")
    lengths = np.array(sizes, np.int64)
    symbols, read = _decode(payload, lengths, np.array(lag_list, np.int64), fmt)
    if read > payload.size + (8 if fmt == 2 else 0):  # format 2 leaves out the flush's trailing zero bytes
        raise CorruptStreamError("context-coded stream is truncated: its payload ran out before the last symbol")
    return np.split(in_narrowest_dtype(symbols), np.cumsum(lengths)[:-1])
