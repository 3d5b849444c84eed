"""What CI dashboards read: Bencher Metric Format, github-action-benchmark's JSON, GitHub's step summary.

- BMF (`bencher run --file … --adapter json`): {benchmark: {measure: {value, lower_value, upper_value}}},
  one benchmark per claim case ("<claim>/<case>"), one measure per metric, the bounds value ± spread.
- github-action-benchmark's `customSmallerIsBetter` and `customBiggerIsBetter`: a list of
  {name, unit, value, range, extra} per direction, one file each as that action expects; a metric
  without a direction belongs to neither and is left out (counted, so the caller can say so).
- `GITHUB_STEP_SUMMARY`: the claims table and the gate's findings appended as Markdown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema

from greenbench.core.provenance import atomic_write_json

BMF_SCHEMA = {  # https://bencher.dev/bmf.json
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {".+": {"type": "object", "patternProperties": {".+": {
        "type": "object", "required": ["value"],
        "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                       "upper_value": {"type": "number"}}}}}},
}
MEASURE_MAX = 64  # Bencher's longest measure name


def to_bmf(records: list[Any]) -> dict[str, dict[str, dict[str, float]]]:
    """The records' metrics (ClaimRecord) as BMF, checked against Bencher's schema."""
    bmf: dict[str, dict[str, dict[str, float]]] = {}
    for record in records:
        for name, m in record.metrics.items():
            if len(name) > MEASURE_MAX:
                raise ValueError(f"metric name {name!r} is longer than Bencher's {MEASURE_MAX} characters")
            bmf.setdefault(f"{record.claim_id}/{record.case}", {})[name] = {
                "value": m.value, "lower_value": m.value - m.spread, "upper_value": m.value + m.spread}
    jsonschema.validate(bmf, BMF_SCHEMA)
    return bmf


def to_benchmark_action(records: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(smaller-is-better entries, bigger-is-better entries, metrics with no direction left out)."""
    smaller, bigger, undirected = [], [], 0
    for record in records:
        for name, m in record.metrics.items():
            entry = {"name": f"{record.claim_id}/{record.case}/{name}", "unit": m.unit or "1", "value": m.value,
                     "range": f"± {m.spread:.6g}", "extra": f"claim {record.claim_id}: {record.claimed}"}
            if m.better == "lower":
                smaller.append(entry)
            elif m.better == "higher":
                bigger.append(entry)
            else:
                undirected += 1
    return smaller, bigger, undirected


def write_exports(records: list[Any], bmf: Path | None = None, benchmark_action: Path | None = None) -> list[str]:
    """Write what was asked for; returns one line per file written (the action's gets a -bigger twin)."""
    lines = []
    if bmf:
        atomic_write_json(bmf, to_bmf(records))
        lines.append(f"BMF: {bmf}")
    if benchmark_action:
        smaller, bigger, undirected = to_benchmark_action(records)
        bigger_path = benchmark_action.with_name(f"{benchmark_action.stem}-bigger{benchmark_action.suffix}")
        atomic_write_json(benchmark_action, smaller, sort_keys=False)
        atomic_write_json(bigger_path, bigger, sort_keys=False)
        lines.append(f"github-action-benchmark: {benchmark_action} (customSmallerIsBetter, {len(smaller)}), "
                     f"{bigger_path} (customBiggerIsBetter, {len(bigger)}); {undirected} metrics without a "
                     "direction left out")
    return lines


def append_step_summary(markdown: str, environ: dict[str, str] | None = None) -> bool:
    """Append to $GITHUB_STEP_SUMMARY when it is set (a GitHub Actions step); whether it was."""
    path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n\n")
    return True


def publish_run(rows: list[Any], provenance, claims_json: str | None, history: str | None, root: Path,
                final: bool) -> Path | None:
    """A run's rows into --claims-json (as each ends: a stopped run keeps them); at the end, the run into
    --history (a new file; returned) and the claims table into GitHub's step summary."""
    from greenbench.harness.history import git_state, record_run
    from greenbench.harness.report import render_claims_table

    if not rows:
        return None
    payload = [r.to_json() for r in rows]
    if claims_json:
        atomic_write_json(Path(claims_json), {"provenance": provenance(), "rows": payload}, sort_keys=False)
    if not final:
        return None
    append_step_summary("### greenbench claims\n\n" + render_claims_table(rows, tablefmt="github", width=400))
    return record_run(Path(history), payload, {**provenance(), "git": git_state(root)}) if history else None
