"""The thesis grid sweep on a trained network, against the budget search, in one run.

Reports the full grid's time and evaluation count, the search's, their ratio (target: the search needs
at most a quarter of the evaluations) and whether both pick the same best setting per family.

    python tools/bench_sweep.py [--network lenet5] [--budget 0.8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tabulate import tabulate

from greenbench.compression import NetworkEvaluator, best_within_budget, budget_search, full_sweep, thesis_grid
from greenbench.data import load_dataset, to_network_input
from greenbench.models import network_spec
from greenbench.onnxcodec import export_onnx
from greenbench.provenance import provenance
from greenbench.training import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="lenet5")
    parser.add_argument("--budget", type=float, default=0.8)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    model, meta = load_checkpoint(ROOT / "fixtures" / f"{args.network}-fashion-mnist.safetensors")
    proto = export_onnx(model, network_spec(args.network).input_shape)
    data = load_dataset("fashion-mnist")
    x, y = to_network_input(data.test_images, network_spec(args.network).input_shape).numpy(), data.test_labels
    search_eval = NetworkEvaluator(proto, x, y)
    grid = thesis_grid(search_eval.interval)
    started = time.perf_counter()
    searched = budget_search(search_eval, grid, args.budget)
    search_s = time.perf_counter() - started

    full_eval = NetworkEvaluator(proto, x, y)
    started = time.perf_counter()
    swept = best_within_budget(full_sweep(full_eval, grid), args.budget)
    full_s = time.perf_counter() - started

    rows = []
    for family in grid:
        s, f = searched.get(family), swept.get(family)
        rows.append([family, s.setting.label if s else "—", f.setting.label if f else "—",
                     f"{f.entropy:.3f}" if f else "—", f"{f.compression_ratio:.2f}" if f else "—",
                     "same" if (s and f and s.setting.label == f.setting.label) or (s is f is None) else "DIFFERENT"])
    print(f"{args.network} on {len(y):,} Fashion-MNIST test images, budget {args.budget} pp, "
          f"top-1 {full_eval.top1:.4f}")
    print(tabulate(rows, headers=["family", "search picks", "full grid picks", "H", "CR", "agreement"]))
    ratio = search_eval.evaluations / full_eval.evaluations
    print(f"full grid: {full_eval.evaluations} evaluations, {full_s:.1f} s; search: {search_eval.evaluations} "
          f"evaluations, {search_s:.1f} s; evaluation ratio {ratio:.3f} (target ≤ 0.25), time ratio "
          f"{search_s / full_s:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "provenance": provenance(network=args.network, checkpoint_sha256=meta["weights_sha256"]),
            "full": {"evaluations": full_eval.evaluations, "seconds": full_s},
            "search": {"evaluations": search_eval.evaluations, "seconds": search_s},
            "agreement": {r[0]: r[-1] for r in rows}}, indent=2))
    return 0 if ratio <= 0.25 and all(r[-1] == "same" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
