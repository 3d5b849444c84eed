"""The quantizer protocol and the registry (SPEC §2, thesis Eqs. 2.21–2.30, seed 003).

Every quantizer maps float arrays to integer indices (`quantize`) and indices to values
(`dequantize`), keeps the input's shape, accepts float16/32/64 and rejects bad input with a
ValueError that names the problem. `make_quantizer(name, **params)` builds a registered one by
name; `examples()` of each registered class lists the configurations the common checks run over.

Index conventions: indices are signed and contiguous, 0 is the zero level where there is one
(where there is none, midrise leaves 0 unused as thesis Eq. 2.23 does, and minifloat numbers its
negative levels from −1), and reconstruction is monotone non-decreasing in the index. A quantizer
that declares its `index_bounds` gives its indices in the narrowest signed integer dtype that holds
them (int8 for an 8-bit midtread: a quarter of int32's memory traffic), and dequantizes indices of
any integer dtype to the same values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from greenbench.core.validation import as_float_array, as_index_array, check_scalar, float_dtype, narrowest_int_dtype

REGISTRY: dict[str, type[Quantizer]] = {}  # name -> class, filled by register_quantizer
UNBOUNDED = np.int64(2**62)  # the largest |index| a step-only quantizer may give; larger values are refused
MAX_LEVELS = 2**62  # level counts beyond this would overflow int64 index arithmetic


def kernel_output(size: int, dtype: Any) -> np.ndarray:
    # the kernels write float32/float64; other dtypes (float16) are cast afterwards
    dtype = float_dtype(dtype)
    return np.empty(size, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)


def cast_output(values: np.ndarray, dtype: Any, quantizer: Any) -> np.ndarray:
    """Reconstructed values in the dtype asked for; a ValueError, not inf, where that dtype cannot hold them."""
    dtype = float_dtype(dtype)
    if values.dtype == dtype:
        return values
    with np.errstate(over="raise"):
        try:
            return values.astype(dtype)
        except FloatingPointError:
            raise ValueError(f"{quantizer!r} reconstructs values up to {float(np.max(np.abs(values))):.6g}, beyond "
                             f"{dtype}'s largest finite {float(np.finfo(dtype).max):.6g}: ask for a wider dtype") \
                from None


def raise_if_bad(bad: int, message: str) -> None:
    if bad:
        raise ValueError(message.format(bad=bad))


def kernel_input(arr: np.ndarray) -> np.ndarray:
    # the kernels read float32/float64; float16 is widened (exactly) first
    flat = arr.reshape(-1)
    return flat.astype(np.float32) if arr.dtype == np.float16 else flat


class Quantizer(ABC):
    """A scalar quantizer: `quantize` to integer indices, `dequantize` back to values."""

    name: ClassVar[str]
    symmetric: ClassVar[bool] = True  # D(Q(−x)) = −D(Q(x)) away from cell edges

    @abstractmethod
    def quantize(self, x: Any) -> np.ndarray:
        """Indices (same shape as x)."""

    @abstractmethod
    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        """Reconstructed values (same shape as q)."""

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters that define this quantizer (what a container stores)."""

    @property
    def max_levels(self) -> int | None:
        """Most distinct outputs it can produce; None when unbounded."""
        return None

    @property
    def index_bounds(self) -> tuple[int, int] | None:
        """The least and the greatest index it can give (None: not declared)."""
        return None

    @property
    def index_dtype(self) -> np.dtype:
        """The dtype `quantize` gives: the narrowest signed integer one within `index_bounds` (int64 if undeclared)."""
        bounds = self.index_bounds
        return np.dtype(np.int64) if bounds is None else narrowest_int_dtype(*bounds)

    @abstractmethod
    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        """Mask of the indices this quantizer never produces (dequantize rejects them)."""

    def _quantize_with(self, kernel: Any, x: Any, *args: Any) -> np.ndarray:
        """Indices of x by a compiled index kernel (`kernels._indices_loop` for a rule) taking `args`."""
        arr = as_float_array(x)
        out = np.empty(arr.size, dtype=self.index_dtype)
        raise_if_bad(kernel(kernel_input(arr), out, *args), "input holds {bad} non-finite value(s) (NaN or inf)")
        return out.reshape(arr.shape)

    def _dequantize_with(self, kernel: Any, q: Any, dtype: Any, *args: Any) -> np.ndarray:
        """Values of indices q by a compiled value kernel (`kernels._values_loop` for a rule) taking `args`."""
        idx = as_index_array(q)
        out = kernel_output(idx.size, dtype)
        raise_if_bad(kernel(idx.reshape(-1), out, *args), f"{{bad}} index(es) are not valid for {self!r}")
        return cast_output(out.reshape(idx.shape), dtype, self)

    def _check_indices(self, q: Any) -> np.ndarray:
        idx = as_index_array(q)
        raise_if_bad(int(np.count_nonzero(self.invalid_indices(idx))), f"{{bad}} index(es) are not valid for {self!r}")
        return idx

    def error_bound(self, x: np.ndarray) -> np.ndarray | None:
        """Largest |x − D(Q(x))| allowed at each x (inf outside the granular region); None if no bound."""
        return None

    def reconstruct(self, x: Any) -> np.ndarray:
        """D(Q(x)) in x's dtype."""
        arr = as_float_array(x)
        return self.dequantize(self.quantize(arr), dtype=arr.dtype)

    @classmethod
    def examples(cls) -> list[Quantizer]:
        """Configurations the common checks run over."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


# --------------------------------------------------------------------------- uniform family


def check_levels(levels: Any) -> int:
    return check_scalar(levels, "levels", int, low=2, high=MAX_LEVELS)


# --------------------------------------------------------------------------- registry

def register_quantizer(cls: type[Quantizer]) -> type[Quantizer]:
    """Register a quantizer class under its `name` (a class decorator): `make_quantizer` builds it by name,
    model containers name it, and the common checks run over its `examples()`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"quantizer name {name!r} is taken by {REGISTRY[name].__name__}")
    REGISTRY[name] = cls
    return cls


def make_quantizer(name: str, **params: Any) -> Quantizer:
    """Build a registered quantizer by name; unknown names and bad parameters raise ValueError."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown quantizer {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for quantizer {name!r}: {exc}") from None


def quantizer_examples() -> list[Quantizer]:
    """Every registered quantizer's example configurations (what the common checks run over)."""
    return [q for cls in REGISTRY.values() for q in cls.examples()]
