"""Speed of quantize + dequantize + entropy per quantizer, as a ratio to a plain copy of the same array.

Ratios against a reference measured in the same run carry across machines; absolute times do not.
Target (issue 2): the uniform quantizers (midtread, midrise, deadzone, affine) within 6× of the copy;
entropy is O(n) (one histogram pass, no sort).

    python tools/bench_quantizers.py [--n 50000000] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from tabulate import tabulate

from greenbench.provenance import provenance
from greenbench.quantizers import Affine, Deadzone, Midrise, Midtread, Minifloat, MuLaw
from greenbench.rate import entropy_bits

UNIFORM_TARGET = 6.0


def _median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    x = np.random.default_rng(0).laplace(scale=0.05, size=args.n).astype(np.float32)
    quantizers = {
        "midtread": Midtread(levels=2**8, xmax=1.0),
        "midrise": Midrise(levels=2**8, xmax=1.0),
        "deadzone": Deadzone(0.7, levels=2**8, xmax=1.0),
        "affine": Affine.calibrate(x, 8),
        "mulaw": MuLaw(2**8),
        "minifloat": Minifloat(4, 3),
    }
    rows, results = [], {}
    for name, q in quantizers.items():
        def work(q=q):
            idx = q.quantize(x)
            q.dequantize(idx, dtype=np.float32)
            entropy_bits(idx)

        work()  # compile / warm caches
        # the copy is re-measured beside each quantizer so that drift on a shared machine cancels
        copy = _median_seconds(lambda: x.copy(), args.repeats)
        seconds = _median_seconds(work, args.repeats)
        ratio = seconds / copy
        uniform = name in ("midtread", "midrise", "deadzone", "affine")
        verdict = ("ok" if ratio <= UNIFORM_TARGET else "over target") if uniform else "(no target)"
        rows.append([name, f"{seconds * 1e3:.1f}", f"{copy * 1e3:.1f}", f"{ratio:.2f}", verdict])
        results[name] = {"seconds": seconds, "copy_seconds": copy, "ratio": ratio, "uniform": uniform}
    # entropy is one histogram pass: its time should scale linearly with n (no n·log n sort)
    idx = quantizers["deadzone"].quantize(x)
    full = _median_seconds(lambda: entropy_bits(idx), args.repeats)
    eighth = _median_seconds(lambda: entropy_bits(idx[: args.n // 8]), args.repeats)
    print(f"{args.n:,} float32 values; median of {args.repeats} runs")
    print(tabulate(rows, headers=["quantizer", "q+dq+H ms", "copy ms", "ratio", f"target ≤ {UNIFORM_TARGET}×"]))
    print(f"entropy alone: {full * 1e3:.1f} ms for n, {eighth * 1e3:.1f} ms for n/8 (ratio {full / eighth:.1f}, "
          "8 means linear)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"provenance": provenance(n=args.n, repeats=args.repeats), "results": results,
                       "entropy_seconds": {"n": full, "n/8": eighth}}, handle, indent=2)
    return 0 if all(r["ratio"] <= UNIFORM_TARGET for r in results.values() if r["uniform"]) else 1


if __name__ == "__main__":
    sys.exit(main())
