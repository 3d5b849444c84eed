"""Run history: one immutable file per run, and the windowed gate over it (`greenbench compare --history`).

`pytest --history DIR` (and `greenbench run --history DIR`) writes `DIR/<profile>/<date>-<commit>-
<host>-<random>.json`: the run's claim rows (metrics with spreads and directions, status) and its
provenance (hardware profile and fingerprint, library versions, git commit and branch, date). One
file per run, named so that runs from many machines merge in git without conflicts (asv's way);
each is schema-checked, versioned and checksummed like a baseline, and is never rewritten.

The gate (`gate_history`) judges each metric of a new run against the last N runs of the same
profile, claim and case (`greenbench.analysis.regression`: a prediction-interval window test and a
trend test, Holm-corrected across the run's metrics), reports where the series stepped, and says so when the
history is too short, leaving the decision to the stored baseline.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from greenbench.analysis.regression import MIN_HISTORY, change_points, holm, judge_window
from greenbench.core.provenance import atomic_write_json

SCHEMA_ID = "greenbench-history/1"
RUN_SCHEMA = {
    "type": "object",
    "required": ["schema", "sha256", "run"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "run": {"type": "object", "required": ["provenance", "rows"], "properties": {
            "provenance": {"type": "object", "required": ["date", "profile", "hardware", "versions"]},
            "rows": {"type": "array", "items": {"type": "object", "required": ["claim", "case", "verdict"]}}}},
    },
}


class HistoryError(ValueError):
    """A history file that is unreadable, fails its schema or its checksum."""


def _digest(run: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(run, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def git_state(root: Path) -> dict[str, str | None]:
    """The checkout's commit and branch (None outside git)."""
    import subprocess

    def ask(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() or None if done.returncode == 0 else None

    return {"commit": ask("rev-parse", "HEAD"), "branch": ask("rev-parse", "--abbrev-ref", "HEAD")}


def record_run(directory: Path, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Write this run as a new file under `directory/<profile>/`; never overwrites one."""
    run = {"provenance": provenance, "rows": rows}
    payload = {"schema": SCHEMA_ID, "sha256": _digest(run), "run": run}
    jsonschema.validate(payload, RUN_SCHEMA)
    commit = (provenance.get("git") or {}).get("commit") or "nogit"
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
    stamp = provenance["date"].replace("-", "").replace(":", "").replace("+0000", "Z")
    folder = Path(directory) / provenance["profile"]
    path = folder / f"{stamp}-{commit[:8]}-{host}-{secrets.token_hex(3)}.json"
    if path.exists():  # 24 random bits on top of the second, host and commit: never in practice
        raise HistoryError(f"{path} exists: a history file is never rewritten")
    atomic_write_json(path, payload)
    return path


def read_run(path: Path) -> dict[str, Any]:
    """One history file's run, or a HistoryError naming the file and what is wrong with it."""
    try:
        payload = json.loads(Path(path).read_text())
        jsonschema.validate(payload, RUN_SCHEMA)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HistoryError(f"{path}: not a readable history file ({exc})") from None
    except jsonschema.ValidationError as exc:
        raise HistoryError(f"{path}: fails the history schema: {exc.message}") from None
    if _digest(payload["run"]) != payload["sha256"]:
        raise HistoryError(f"{path}: checksum mismatch: the file was changed after it was written")
    return payload["run"]


def load_runs(directory: Path, profile: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(run name, run) of every run under `directory` (or its `profile`), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HistoryError(f"history folder {directory} does not exist")
    paths = sorted((directory / profile).glob("*.json") if profile else directory.glob("*/*.json"))
    runs = [(p.stem, read_run(p)) for p in paths]
    return sorted(runs, key=lambda r: (r[1]["provenance"]["date"], r[0]))


@dataclass(frozen=True)
class Point:
    run: str
    date: str
    commit: str | None
    value: float
    spread: float
    better: str | None
    status: str  # the row's verdict in that run
    acknowledged: bool = False  # the metric regressed against its baseline there, as a known regression


def metric_series(runs: list[tuple[str, dict[str, Any]]], claim: str | None = None, metric: str | None = None
                  ) -> dict[tuple[str, str, str], list[Point]]:
    """(claim, case, metric) -> its points over the runs, oldest first."""
    series: dict[tuple[str, str, str], list[Point]] = {}
    for name, run in runs:
        prov = run["provenance"]
        for row in run["rows"]:
            record = row.get("record") or {}
            if claim and row["claim"] != claim:
                continue
            for key, m in (record.get("metrics") or {}).items():
                if metric and key != metric:
                    continue
                series.setdefault((row["claim"], row["case"], key), []).append(Point(
                    name, prov["date"], (prov.get("git") or {}).get("commit"), float(m["value"]),
                    float(m.get("spread", 0.0)), m.get("better"), row["verdict"],
                    f"{key} acknowledged" in (record.get("baseline") or "")))
    return series


@dataclass(frozen=True)
class HistoryVerdict:
    claim: str
    case: str
    metric: str
    value: float
    runs: int
    mean: float | None
    change: float | None  # relative to the window's mean
    p_value: float | None
    verdict: str  # ok, regressed, drifting, acknowledged: …, too little history (N runs): baseline decides
    steps: str  # where the series stepped: "run <name>: a → b", or ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("regressed", "drifting")

    def cells(self) -> list[str]:
        return [self.claim, self.case, self.metric, "—" if self.mean is None else f"{self.mean:.6g}",
                f"{self.value:.6g}", "—" if self.change is None else f"{100 * self.change:+.2f} %",
                "—" if self.p_value is None else f"{self.p_value:.2g}", self.verdict, self.steps]


HEADERS = ["claim", "case", "metric", "window mean", "this run", "change", "p", "verdict", "steps"]


def gate_history(records: list[Any], runs: list[tuple[str, dict[str, Any]]], window: int = 20,
                 min_change: float = 0.0, alpha: float = 0.05, acknowledged=None) -> list[HistoryVerdict]:
    """Each metric of `records` (ClaimRecord) against its series in `runs`; Holm across the run's metrics.

    A metric fails when its Holm-corrected test rejects and it moved by at least `min_change` (relative)
    in its worse direction: `regressed` when the window test is the smaller p, `drifting` when the trend
    is. `acknowledged(claim, case, metric)` returns the reason a known regression is accepted, or None.
    """
    if window < MIN_HISTORY:
        raise ValueError(f"window must be at least {MIN_HISTORY} runs, got {window}")
    series = metric_series(runs)
    judged = []
    for record in records:
        for name, m in record.metrics.items():
            points = series.get((record.claim_id, record.case, name), [])
            judgement = judge_window([p.value for p in points], m.value, m.better or next(
                (p.better for p in points if p.better), None), window, [p.spread for p in points] or None)
            judged.append((record, name, m, points, judgement))
    p_values = [judgement.p_value for *_, judgement in judged if judgement is not None]
    rejections = iter(holm(p_values, alpha) if p_values else [])  # in the order of the tested metrics
    verdicts = []
    for record, name, m, points, judgement in judged:
        steps = "; ".join(f"run {points[s.index].run if s.index < len(points) else 'this'}: {s.before:.4g} → "
                          f"{s.after:.4g}" for s in change_points([p.value for p in points] + [m.value]))
        if judgement is None:
            verdicts.append(HistoryVerdict(record.claim_id, record.case, name, m.value, len(points), None, None,
                                           None, f"too little history ({len(points)} runs): baseline decides", steps))
            continue
        change = judgement.relative_change(m.value)
        worse = judgement.z > 0 if judgement.p_window <= judgement.p_trend else judgement.tau > 0
        verdict = "ok"
        if next(rejections) and worse and abs(change) >= min_change:
            verdict = "regressed" if judgement.p_window <= judgement.p_trend else "drifting"
            reason = acknowledged(record.claim_id, record.case, name) if acknowledged else None
            if reason:
                verdict = f"acknowledged: {reason}"
        verdicts.append(HistoryVerdict(record.claim_id, record.case, name, m.value, judgement.runs,
                                       judgement.mean, change, judgement.p_value, verdict, steps))
    return verdicts


def series_text(series: dict[tuple[str, str, str], list[Point]]) -> str:
    """`greenbench history`'s output: each metric's runs (run, date, commit, value ± spread, status)."""
    from tabulate import tabulate

    parts = []
    for (claim, case, metric), points in sorted(series.items()):
        parts.append(f"\n{claim} / {case} / {metric} ({len(points)} runs)")
        parts.append(tabulate([[p.run, p.date, (p.commit or "—")[:10], f"{p.value:.6g} ± {p.spread:.3g}",
                                p.status + (" (acknowledged)" if p.acknowledged else "")] for p in points],
                              headers=["run", "date", "commit", "value", "status"]))
    return "\n".join(parts) if parts else "no metrics in this history"


def plot_series(series: dict[tuple[str, str, str], list[Point]], out: Path, baseline=None) -> list[Path]:
    """One trend chart per metric in `out`: the runs with their spread, the stored baseline's band (the gate's
    3 spreads; `baseline(claim, case, metric)` gives (value, spread) or None), the steps change-point detection
    finds, and acknowledged runs marked."""
    from greenbench.harness.baselines import GATE_SIGMAS
    from greenbench.harness.report import pyplot, save_figure

    paths = []
    for (claim, case, metric), points in sorted(series.items()):
        fig, ax = pyplot().subplots(figsize=(8, 3.2))
        x = list(range(len(points)))
        ax.errorbar(x, [p.value for p in points], yerr=[p.spread for p in points], fmt="o-", ms=3, capsize=2,
                    label=metric)
        stored = baseline(claim, case, metric) if baseline else None
        if stored:
            value, spread = stored
            ax.axhspan(value - GATE_SIGMAS * spread, value + GATE_SIGMAS * spread, alpha=0.15, color="green",
                       label=f"baseline ± {GATE_SIGMAS:g} spreads")
            ax.axhline(value, color="green", lw=0.8)
        for step in change_points([p.value for p in points]):
            ax.axvline(step.index - 0.5, color="red", ls="--", lw=1)
            ax.annotate(f"step {step.before:.4g} → {step.after:.4g}", (step.index - 0.5, step.after), fontsize=7,
                        color="red")
        acked = [i for i, p in enumerate(points) if p.acknowledged]
        if acked:
            ax.scatter(acked, [points[i].value for i in acked], marker="s", s=40, facecolors="none",
                       edgecolors="orange", label="acknowledged")
        ax.set_xticks(x, [p.date[5:16] for p in points], rotation=60, fontsize=6)
        ax.set_title(f"{claim} / {case}", fontsize=8)
        ax.legend(fontsize=7)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{claim}-{case}-{metric}")[:150]
        paths.append(save_figure(fig, Path(out) / f"trend-{safe}.png"))
    return paths
