"""Time limits for the common checks: a user's quantizer that blocks, or takes a second a call, must
give a failed check naming it and the input, not a run that never ends."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from greenbench.core.validation import check_seconds
from greenbench.quantization.base import Quantizer

CALL_DEADLINE_S = 10.0  # one quantize/dequantize call; the suite's own take milliseconds
CHECK_BUDGET_S = 120.0  # all calls of one check (hypothesis makes a hundred examples or so)


class CheckTimeout(AssertionError):
    """A call past its deadline, or a check past its budget."""


def _describe(value: Any) -> str:
    arr = np.asarray(value)
    head = arr.reshape(-1)[:6].tolist() if arr.size else []
    return f"{arr.dtype} array of shape {arr.shape} starting {head}"


class _Worker:
    """One long-lived daemon thread that runs the calls: a new thread per call would make numba's
    parallel kernels build a thread pool per call (2× the checks' time)."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, daemon=True, name="greenbench-check-worker").start()

    def _serve(self) -> None:
        while True:
            call, outcome, done = self.tasks.get()
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc
            done.set()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _run_in_worker(call: Callable[[], Any], timeout_s: float) -> dict[str, Any] | None:
    """{"value": …} or {"error": …} of `call()`, or None if it did not return within `timeout_s`; a call
    that overran keeps its thread (Python threads cannot be killed), and the next call gets a new one."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
        worker = _worker
    outcome: dict[str, Any] = {}
    done = threading.Event()
    worker.tasks.put((call, outcome, done))
    if done.wait(timeout_s):
        return outcome
    with _worker_lock:
        if _worker is worker:
            _worker = None
    return None


class DeadlinedQuantizer(Quantizer):
    """The quantizer under test, each call run in a worker thread and given `deadline_s`; the calls of one
    check together get `budget_s`. A call that overruns cannot be stopped: it is left behind in its daemon
    thread and the check fails at once."""

    def __init__(self, quantizer: Quantizer, deadline_s: float = CALL_DEADLINE_S, budget_s: float = CHECK_BUDGET_S):
        self.inner = quantizer
        self.deadline_s = check_seconds(deadline_s, "the per-call deadline")
        self.budget_s = check_seconds(budget_s, "the check's time budget")
        self.name = quantizer.name  # type: ignore[misc]
        self.symmetric = quantizer.symmetric  # type: ignore[misc]
        self.spent = 0.0
        self.expired = ""  # once a call overran, every later one fails at once with its message

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        left = self.budget_s - self.spent
        if not self.expired and left <= 0:
            self.expired = f"{self.inner!r}: the check's calls took over their {self.budget_s:g} s budget"
        if self.expired:
            raise CheckTimeout(self.expired)
        started = time.perf_counter()
        outcome = _run_in_worker(lambda: getattr(self.inner, method)(*args, **kwargs), min(self.deadline_s, left))
        self.spent += time.perf_counter() - started
        if outcome is None:
            limit = "deadline" if self.deadline_s <= left else "check's remaining budget"
            self.expired = (f"{self.inner!r}.{method} did not return within its {limit} of "
                            f"{min(self.deadline_s, left):.3g} s, on {_describe(args[0])}")
            raise CheckTimeout(self.expired)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def quantize(self, x: Any) -> np.ndarray:
        return self._call("quantize", x)

    def dequantize(self, q: Any, dtype: Any = np.float64) -> np.ndarray:
        return self._call("dequantize", q, dtype=dtype)

    def invalid_indices(self, q: np.ndarray) -> np.ndarray:
        return self._call("invalid_indices", q)

    def error_bound(self, x: np.ndarray) -> np.ndarray | None:
        return self._call("error_bound", x)

    @property
    def params(self) -> dict[str, Any]:
        return self.inner.params

    @property
    def max_levels(self) -> int | None:
        return self.inner.max_levels

    @property
    def index_bounds(self) -> tuple[int, int] | None:
        return self.inner.index_bounds

    def __repr__(self) -> str:
        return repr(self.inner)
