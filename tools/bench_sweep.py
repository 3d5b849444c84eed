"""The thesis grid sweep on a trained network, against the budget search, in one run.

Reports the full grid's evaluations and image evaluations, the search's, their ratios (target: the
search reads at most a tenth of the full grid's images) and whether both pick the same setting per
family; and the one scan that finds only the lowest rate (`lowest_rate_within_budget`) against the
full grid's best. A full GoogLeNet grid takes about an hour on 2 cores: `--full-grid FILE` keeps its results
(keyed by checkpoint, data and grid; written after every setting) so that a rerun, or an interrupted
run, does not redo them.

    python tools/bench_sweep.py [--network lenet5] [--budget 0.8] [--full-grid grid.json] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tabulate import tabulate

from greenbench.core.provenance import provenance
from greenbench.nn.budget import (
    Evaluation,
    NetworkEvaluator,
    best_overall,
    best_within_budget,
    budget_search,
    lowest_rate_within_budget,
    thesis_grid,
)
from greenbench.nn.data import load_dataset, to_network_input
from greenbench.nn.models import network_spec
from greenbench.nn.onnx_eval import export_onnx
from greenbench.nn.training import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
GRID_FORMAT, GRID_VERSION = "greenbench-full-grid", 1
IMAGE_RATIO_TARGET = 0.10


def full_grid(evaluator: NetworkEvaluator, grid: dict, cache: Path | None, key: dict) -> tuple[list[Evaluation], float]:
    """Every setting of the grid on the whole test set, reusing `cache` where its key matches ours."""
    done: dict[str, dict] = {}
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("format") != GRID_FORMAT or stored.get("version") != GRID_VERSION:
            raise SystemExit(f"{cache}: not a version-{GRID_VERSION} {GRID_FORMAT} file")
        if stored["key"] != key:
            raise SystemExit(f"{cache} holds another sweep ({stored['key']}), not {key}: give another file")
        done = stored["rows"]
    settings = [s for family in grid.values() for s in family]
    for setting in settings:
        if setting.label in done:
            continue
        started = time.perf_counter()
        e = evaluator.evaluate(setting)
        done[setting.label] = {"entropy": e.entropy, "top1": e.top1, "top5": e.top5,
                               "seconds": time.perf_counter() - started}
        if cache is not None:
            partial = cache.with_suffix(".partial")
            partial.write_text(json.dumps({"format": GRID_FORMAT, "version": GRID_VERSION, "key": key,
                                           "rows": done}, indent=1))
            os.replace(partial, cache)
    rows = [done[s.label] for s in settings]
    evaluations = [Evaluation(s, r["entropy"], r["top1"], r["top5"], 100 * (evaluator.top1 - r["top1"]),
                              100 * (evaluator.top5 - r["top5"]), len(evaluator.labels))
                   for s, r in zip(settings, rows)]
    return evaluations, sum(r["seconds"] for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="lenet5")
    parser.add_argument("--budget", type=float, default=0.8)
    parser.add_argument("--full-grid", type=Path, help="JSON file that keeps the full grid's results")
    parser.add_argument("--only-full-grid", action="store_true", help="compute the full grid and stop")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    model, meta = load_checkpoint(ROOT / "fixtures" / f"{args.network}-fashion-mnist.safetensors")
    proto = export_onnx(model, network_spec(args.network).input_shape)
    data = load_dataset("fashion-mnist")
    x, y = to_network_input(data.test_images, network_spec(args.network).input_shape).numpy(), data.test_labels
    full_eval = NetworkEvaluator(proto, x, y)
    grid = thesis_grid(full_eval.interval)
    key = {"checkpoint_sha256": meta["weights_sha256"], "data": data.checksum, "images": len(y),
           "settings": sum(len(s) for s in grid.values())}
    swept_points, full_s = full_grid(full_eval, grid, args.full_grid, key)
    if args.only_full_grid:
        return 0
    swept = best_within_budget(swept_points, args.budget)

    search_eval = NetworkEvaluator(proto, x, y)
    started = time.perf_counter()
    searched = budget_search(search_eval, grid, args.budget)
    search_s = time.perf_counter() - started
    scan_eval = NetworkEvaluator(proto, x, y)
    started = time.perf_counter()
    lowest = lowest_rate_within_budget(scan_eval, args.budget, grid)
    scan_s = time.perf_counter() - started
    grid_best = best_overall(swept)
    same_lowest = (lowest.setting.label if lowest else None) == (grid_best.setting.label if grid_best else None)

    rows = []
    for family in grid:
        s, f = searched.get(family), swept.get(family)
        rows.append([family, s.setting.label if s else "—", f.setting.label if f else "—",
                     f"{f.entropy:.3f}" if f else "—", f"{f.compression_ratio:.2f}" if f else "—",
                     "same" if (s and f and s.setting.label == f.setting.label) or (s is f is None) else "DIFFERENT"])
    full_evaluations = len(swept_points)
    full_images = full_evaluations * len(y)
    evaluations_ratio = search_eval.evaluations / full_evaluations
    image_ratio = search_eval.image_evaluations / full_images
    same = all(r[-1] == "same" for r in rows)
    print(f"{args.network} on {len(y):,} Fashion-MNIST test images, budget {args.budget} pp, "
          f"top-1 {full_eval.top1:.4f}")
    print(tabulate(rows, headers=["family", "search picks", "full grid picks", "H", "CR", "agreement"]))
    print(f"full grid: {full_evaluations} evaluations, {full_images:,} image evaluations, {full_s:.1f} s; "
          f"search: {search_eval.evaluations} evaluations, {search_eval.image_evaluations:,} image evaluations, "
          f"{search_s:.1f} s")
    print(f"image evaluation ratio {image_ratio:.4f} (target ≤ {IMAGE_RATIO_TARGET}), evaluation ratio "
          f"{evaluations_ratio:.3f}, time ratio {search_s / full_s:.3f}, same picks: {same}")
    print(f"lowest rate alone (one scan of all families): {lowest.setting.label if lowest else '—'}, "
          f"{scan_eval.evaluations} evaluations, {scan_eval.image_evaluations:,} image evaluations "
          f"(ratio {scan_eval.image_evaluations / full_images:.4f}), {scan_s:.1f} s; the full grid's: {same_lowest}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "provenance": provenance(network=args.network, checkpoint_sha256=meta["weights_sha256"],
                                     data_checksum=data.checksum, budget_pp=args.budget),
            "full": {"evaluations": full_evaluations, "image_evaluations": full_images, "seconds": full_s},
            "search": {"evaluations": search_eval.evaluations, "image_evaluations": search_eval.image_evaluations,
                       "seconds": search_s},
            "lowest_rate": {"setting": lowest.setting.label if lowest else None, "evaluations": scan_eval.evaluations,
                            "image_evaluations": scan_eval.image_evaluations, "seconds": scan_s,
                            "image_evaluations_ratio": scan_eval.image_evaluations / full_images,
                            "same_as_full_grid": bool(same_lowest)},
            "image_evaluations_ratio": image_ratio, "evaluations_ratio": evaluations_ratio, "same_picks": same,
            "agreement": {r[0]: r[-1] for r in rows}}, indent=2))
    return 0 if image_ratio <= IMAGE_RATIO_TARGET and same and same_lowest else 1


if __name__ == "__main__":
    sys.exit(main())
