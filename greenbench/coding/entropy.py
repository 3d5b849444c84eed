"""Rate of quantization indices: entropy (thesis Eq. 2.31), CR and RE (Eqs. 3.1–3.2), and real coding.

`entropy_bits` is O(n): one histogram pass, no sort. `encode_indices` entropy-codes an index array
with constriction's range coder under its own empirical model, and `decode_indices` inverts it
bit-exactly; the model (the symbol counts) travels in the stream's header, so the real size
includes it.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from greenbench.core.validation import as_index_array, check_scalar, narrowest_int_dtype
from greenbench.quantization import kernels as _kernels

FP32_BITS = 32


def index_counts(indices: Any) -> np.ndarray:
    """Counts of each index value that occurs (zero counts dropped)."""
    q = as_index_array(indices).reshape(-1)
    if q.dtype.itemsize <= 2 and q.size >= 1 << (8 * q.dtype.itemsize):  # int8/int16: over the dtype, no range pass
        lo, bins = int(np.iinfo(q.dtype).min), 1 << (8 * q.dtype.itemsize)
    else:
        lo, hi = _kernels.index_range(q)
        bins = int(hi) - int(lo) + 1
    if not _sparse(bins, q.size):  # a histogram no larger than the data: O(n), no sort
        counts = _kernels.index_histogram(q, np.int64(lo), bins)
    else:  # indices spread so thinly that a histogram would dwarf the data
        counts = np.unique(q, return_counts=True)[1]
    return counts[counts > 0]


def in_narrowest_dtype(q: np.ndarray) -> np.ndarray:
    """Integer indices in the narrowest signed integer dtype that holds them (one pass for the range)."""
    if q.size == 0:
        return q
    return q.astype(narrowest_int_dtype(*(int(v) for v in _kernels.index_range(q.reshape(-1)))), copy=False)


def _sparse(span: int, size: int) -> bool:
    """Whether `size` indices spread over `span` values so thinly that a dense table would dwarf the data."""
    return span > max(4 * size, 1 << 20)


def entropy_from_counts(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("symbol counts must be finite and ≥ 0")
    counts = counts[counts > 0]
    if counts.size == 0:
        raise ValueError("no symbols to take the entropy of")
    p = counts / counts.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def entropy_bits(indices: Any) -> float:
    """Zeroth-order entropy H = −Σ p log2 p of the index values, in bits per symbol (Eq. 2.31)."""
    return entropy_from_counts(index_counts(indices))


def _check_rate(entropy: float, original_bits: int) -> None:
    check_scalar(entropy, "entropy (bits)", float, low=0)
    check_scalar(original_bits, "original_bits", int, low=1)


def compression_ratio(entropy: float, original_bits: int = FP32_BITS) -> float:
    """CR = 32/H (Eq. 3.1), assuming an ideal entropy coder (inf for H = 0: one symbol costs nothing)."""
    _check_rate(entropy, original_bits)
    if entropy == 0:
        return float("inf")
    return original_bits / entropy


def space_reduction(entropy: float, original_bits: int = FP32_BITS) -> float:
    """RE = (32 − H)/32 (Eq. 3.2)."""
    _check_rate(entropy, original_bits)
    return (original_bits - entropy) / original_bits


# --------------------------------------------------------------------------- real entropy coding

# Stream layout (format 2): MAGIC, version byte, <q lo><q count><I symbols>, the symbol table (varint
# gaps, then varint counts), the range coder's payload, and a CRC-32 of all that before it. zlib's
# CRC-32 is in the standard library, is fast, and detects every error burst up to 32 bits (so every
# flipped or edited byte) and all but 2^-32 of the rest: integrity against damage, which is what a
# stored stream needs (a cryptographic hash would add nothing against accidents, and an editor can
# recompute either).
_MAGIC = b"GBRC"
_VERSION = 2
_FIXED = struct.Struct("<qqI")
_CRC = struct.Struct("<I")
MAX_INDICES = 1 << 31  # a stream header claiming more is refused, not a request for over 16 GiB
MAX_SPAN = 1 << 40  # the widest range of index values one stream codes


class CorruptStreamError(ValueError):
    """A coded index stream that is damaged, truncated or not one at all."""


def varints(values: np.ndarray) -> bytes:
    """LEB128: 7 bits a byte, low first, the top bit set on all but each number's last."""
    out = bytearray()
    for v in values.tolist():
        while True:
            byte = v & 0x7F
            v >>= 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def read_varints(data: bytes, count: int, pos: int, what: str = "coded index stream's symbol table"
                 ) -> tuple[np.ndarray, int]:
    """`count` varints from `pos` (each under 2^63), and the position after them; CorruptStreamError naming `what`."""
    values = np.empty(count, dtype=np.int64)
    for i in range(count):
        value = shift = 0
        while True:
            if pos >= len(data):
                raise CorruptStreamError(f"{what} is truncated")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 63:
                raise CorruptStreamError(f"{what} holds an over-long number")
            if not byte & 0x80:
                break
        values[i] = value
    return values, pos


def with_checksum(body: bytes) -> bytes:
    """`body` followed by its CRC-32."""
    return body + _CRC.pack(zlib.crc32(body))


def checked_body(data: bytes, what: str, error: type[ValueError] = CorruptStreamError) -> bytes:
    """The body of `with_checksum` data after verifying its CRC-32; `error` names `what` is damaged."""
    if len(data) < _CRC.size:
        raise error(f"{what} is truncated ({len(data)} bytes)")
    body, (stored,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(body) != stored:
        raise error(f"{what} is damaged: its CRC-32 does not match (truncated, extended or edited)")
    return body


@dataclass(frozen=True)
class CodedIndices:
    """An entropy-coded index array and what it cost."""

    data: bytes
    count: int
    entropy: float  # bits per symbol of the empirical distribution

    @property
    def overhead(self) -> float:
        """Relative excess of the real size over the ideal n·H bits (inf when H = 0)."""
        ideal = self.count * self.entropy
        return (8 * len(self.data) - ideal) / ideal if ideal > 0 else float("inf")


def _symbols(q: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values, each index's rank among them (int32) and their counts."""
    span = hi - lo + 1
    if _sparse(span, q.size):
        values, symbols, counts = np.unique(q, return_inverse=True, return_counts=True)
        return values, symbols.astype(np.int32).reshape(-1), counts
    counts = np.bincount(q - lo, minlength=span)
    used = np.flatnonzero(counts)
    rank = np.full(span, -1, dtype=np.int32)
    rank[used] = np.arange(used.size, dtype=np.int32)
    return used + lo, rank[q - lo], counts[used]


def encode_indices(indices: Any) -> CodedIndices:
    """Range-code a flat index array under its empirical distribution; the header holds the model."""
    import constriction

    q = as_index_array(indices).reshape(-1).astype(np.int64, copy=False)  # int64: q − lo must not wrap
    lo, hi = int(q.min()), int(q.max())
    if hi - lo >= MAX_SPAN:
        raise ValueError(f"indices span {hi - lo + 1} values (from {lo} to {hi}); at most {MAX_SPAN} can be coded")
    values, symbols, counts = _symbols(q, lo, hi)
    header = _MAGIC + bytes([_VERSION]) + _FIXED.pack(lo, q.size, values.size)
    table = varints(np.diff(values - lo, prepend=-1) - 1) + varints(counts)  # gaps, then counts
    payload = b""
    if values.size > 1:  # one symbol needs no payload: the header says it all
        model = constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, model)
        payload = encoder.get_compressed().tobytes()
    return CodedIndices(with_checksum(header + table + payload), q.size, entropy_from_counts(counts))


def decode_indices(data: bytes) -> np.ndarray:
    """The index array that `encode_indices` coded into `data`, in the narrowest signed integer dtype that holds
    it; CorruptStreamError if it is damaged."""
    import constriction

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a coded index stream is bytes, got {type(data).__name__}")
    data = bytes(data)
    fixed = len(_MAGIC) + 1 + _FIXED.size
    if len(data) < fixed + _CRC.size or not data.startswith(_MAGIC):
        raise CorruptStreamError("not a greenbench coded index stream (bad magic or too short)")
    if data[len(_MAGIC)] != _VERSION:
        raise CorruptStreamError(f"coded index stream format {data[len(_MAGIC)]} is not supported "
                                 f"(this greenbench reads format {_VERSION})")
    body = checked_body(data, "coded index stream")
    lo, count, nsym = _FIXED.unpack_from(body, len(_MAGIC) + 1)
    if not (0 < count <= MAX_INDICES and 0 < nsym <= count and 2 * nsym <= len(body) - fixed):
        raise CorruptStreamError(f"corrupt coded index stream header (count {count}, symbols {nsym})")
    gaps, pos = read_varints(body, nsym, fixed)
    counts, pos = read_varints(body, nsym, pos)
    if sum(int(c) for c in counts) != count or (counts <= 0).any():
        raise CorruptStreamError("corrupt coded index stream: symbol counts do not add up")
    span = int(gaps.sum()) + nsym - 1
    if span >= MAX_SPAN or lo + span > np.iinfo(np.int64).max:
        raise CorruptStreamError("corrupt coded index stream: symbol values out of range")
    values = lo + np.cumsum(gaps + 1) - 1
    values = values.astype(narrowest_int_dtype(lo, int(values[-1])))
    payload = body[pos:]
    if nsym == 1:
        if payload:
            raise CorruptStreamError("corrupt coded index stream: payload after a one-symbol table")
        return np.full(count, values[0], dtype=values.dtype)
    if len(payload) % 4 or not payload:
        raise CorruptStreamError("coded index stream is truncated (payload not whole 32-bit words)")
    model = constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype=np.uint32).copy())
    try:
        symbols = decoder.decode(model, count)
    except Exception as exc:  # noqa: BLE001 - constriction's errors are not ValueErrors
        raise CorruptStreamError(f"coded index stream payload does not decode ({exc})") from exc
    return values[symbols]


def general_purpose_sizes(indices: Any) -> dict[str, int]:
    """Bytes taken by zstd (level 19) and xz of the indices stored in their smallest integer type."""
    import zstandard

    raw = in_narrowest_dtype(as_index_array(indices).reshape(-1)).tobytes()
    return {"zstd-19": len(zstandard.ZstdCompressor(level=19).compress(raw)),
            "xz": len(lzma.compress(raw, preset=9))}
