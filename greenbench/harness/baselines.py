"""Stored, machine-tagged baselines and the regression gate.

Layout (like pytest-benchmark's storage): `baselines/<profile>/<claim>.json` holds one hardware
profile's measured figures per test case, with the provenance of the run that recorded them and
the outcome the claim had there; `baselines/paper/*.json` holds the papers' reference tables.
Files are validated against a JSON schema on read, written atomically, and changed only when the
user asks (`--update-baselines`).

The gate compares ratios and statistics, not raw times: a metric regresses when it moves in its
worse direction by more than 3 combined spreads (the baseline's and this run's).
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from greenbench.core.provenance import atomic_write_json, provenance
from greenbench.harness.claims import ClaimRecord, Metric

SCHEMA_ID = "greenbench.baseline/1"
PAPER_SCHEMA_ID = "greenbench.paper/1"
GATE_SIGMAS = 3.0
# Deterministic figures carry no spread; a change below this relative size is float noise.
RELATIVE_FLOOR = 1e-6

_METRIC = {
    "type": "object",
    "required": ["value", "spread"],
    "properties": {
        "value": {"type": "number"},
        "spread": {"type": "number", "minimum": 0},
        "better": {"enum": ["higher", "lower", None]},
        "unit": {"type": "string"},
    },
    "additionalProperties": False,
}

BASELINE_SCHEMA = {
    "type": "object",
    "required": ["schema", "claim", "profile", "provenance", "cases"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "claim": {"type": "string", "minLength": 1},
        "profile": {"type": "string", "minLength": 1},
        "provenance": {"type": "object", "required": ["date", "hardware", "versions"]},
        "cases": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["outcome", "metrics", "measured", "date"],
                "properties": {
                    "outcome": {"enum": ["reproduced", "not reproduced", "control passed",
                                         "control failed: the claim's test is weak", "control inconclusive"]},
                    "metrics": {"type": "object", "additionalProperties": _METRIC},
                    "measured": {"type": "object"},
                    "date": {"type": "string"},
                    "note": {"type": "string"},
                    "inputs": {"type": "object"},
                },
            },
        },
    },
}

PAPER_SCHEMA = {
    "type": "object",
    "required": ["schema", "source", "description", "data"],
    "properties": {
        "schema": {"const": PAPER_SCHEMA_ID},
        "source": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "data": {"type": "object", "minProperties": 1},
    },
}


class BaselineError(ValueError):
    """A baseline file is unreadable or fails its schema."""


class _NonFinite(Exception):
    pass


def _reject_constant(name: str):
    raise _NonFinite(f"a non-finite number ({name})")


def _load_validated(path: Path, schema: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(), parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise BaselineError(f"{path}: nested too deeply to be a baseline (over Python's recursion limit)") from None
    except _NonFinite as exc:
        raise BaselineError(f"{path}: holds {exc}, which no baseline may (it would turn every comparison into a "
                            "pass or a fail)") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not UTF-8 text ({exc})") from exc
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise BaselineError(f"{path}: fails the baseline schema at {where}: {exc.message}") from exc
    return data


def load_paper_table(name: str, root: Path) -> dict[str, Any]:
    """A transcribed reference table from `<root>/paper/<name>.json`, schema-checked."""
    path = Path(root) / "paper" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"paper baseline {path} is missing")
    return _load_validated(path, PAPER_SCHEMA)


FAILING_STATUSES = ("regressed", "changed")  # what fails the gate

# baselines/<profile>/acknowledged.json: known regressions, a warning until a date or a commit, never a silent pass
ACKNOWLEDGED = "acknowledged.json"
ACKNOWLEDGED_SCHEMA = {
    "type": "object",
    "required": ["schema", "entries"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "greenbench-acknowledged/1"},
        "entries": {"type": "array", "items": {
            "type": "object", "required": ["claim", "case", "metric", "reason"], "additionalProperties": False,
            "properties": {"claim": {"type": "string", "minLength": 1}, "case": {"type": "string", "minLength": 1},
                           "metric": {"type": "string", "minLength": 1}, "reason": {"type": "string", "minLength": 1},
                           "until_date": {"type": "string", "format": "date",
                                          "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                           "until_commit": {"type": "string", "pattern": "^[0-9a-f]{7,40}$"}},
            "anyOf": [{"required": ["until_date"]}, {"required": ["until_commit"]}]}},
    },
}


def load_acknowledgements(path: Path) -> list[dict[str, Any]]:
    """The entries of an acknowledgement file (none when it is absent), schema-checked."""
    return _load_validated(path, ACKNOWLEDGED_SCHEMA)["entries"] if Path(path).is_file() else []


def acknowledgement_active(entry: dict[str, Any], root: Path, today: datetime.date | None = None) -> bool:
    """Before its until-date, or while its until-commit is not yet in the checkout's history."""
    if "until_date" in entry:
        return (today or datetime.date.today()) <= datetime.date.fromisoformat(entry["until_date"])
    import subprocess

    try:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", entry["until_commit"], "HEAD"], cwd=root,
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return True  # no git to tell: the warning stays, which is the safe side
    return done.returncode != 0


@dataclass(frozen=True)
class Comparison:
    """One metric of this run against its baseline."""

    name: str
    baseline: float | None
    measured: float
    spread: float  # combined spread used by the gate
    status: str  # "ok", "improved", "regressed", "changed", "missing", "acknowledged"
    note: str = ""  # an acknowledgement's reason

    @property
    def failed(self) -> bool:
        return self.status in FAILING_STATUSES


def compare_metric(name: str, measured: Metric, baseline: dict[str, Any] | None) -> Comparison:
    if baseline is None:
        return Comparison(name, None, measured.value, measured.spread, "missing")
    old = float(baseline["value"])
    spread = math.hypot(float(baseline["spread"]), measured.spread)
    allowed = GATE_SIGMAS * spread + RELATIVE_FLOOR * max(abs(old), 1e-12)
    delta = measured.value - old
    better = measured.better or baseline.get("better")
    if abs(delta) <= allowed:
        status = "ok"
    elif better is None:
        status = "changed"
    elif (delta > 0) == (better == "higher"):
        status = "improved"
    else:
        status = "regressed"
    return Comparison(name, old, measured.value, spread, status)


class BaselineStore:
    """The baselines of one hardware profile under a root folder."""

    def __init__(self, root: Path, profile: str):
        self.root = Path(root)
        self.profile = profile
        self._acknowledgements: list[dict[str, Any]] | None = None  # read on the first failing comparison

    def path(self, claim_id: str) -> Path:
        return self.root / self.profile / f"{claim_id}.json"

    def load(self, claim_id: str) -> dict[str, Any] | None:
        path = self.path(claim_id)
        if not path.is_file():
            return None
        data = _load_validated(path, BASELINE_SCHEMA)
        if data["claim"] != claim_id or data["profile"] != self.profile:
            raise BaselineError(f"{path}: holds claim {data['claim']!r} of profile {data['profile']!r}, "
                                f"expected {claim_id!r} of {self.profile!r}")
        return data

    def case(self, claim_id: str, case: str) -> dict[str, Any] | None:
        data = self.load(claim_id)
        return None if data is None else data["cases"].get(case)

    def compare(self, record: ClaimRecord) -> list[Comparison]:
        """Each metric against its baseline; a failing one acknowledged in `acknowledged.json` is a warning."""
        stored = self.case(record.claim_id, record.case)
        metrics = stored["metrics"] if stored else {}
        out = []
        for name, m in record.metrics.items():
            c = compare_metric(name, m, metrics.get(name))
            reason = self.acknowledged(record.claim_id, record.case, name) if c.failed else None
            out.append(dataclasses.replace(c, status="acknowledged", note=reason) if reason else c)
        return out

    def acknowledged(self, claim_id: str, case: str, metric: str) -> str | None:
        """Why a regression of this metric is known and accepted (with until when), or None."""
        if self._acknowledgements is None:
            self._acknowledgements = load_acknowledgements(self.root / self.profile / ACKNOWLEDGED)
        for entry in self._acknowledgements:
            if (entry["claim"], entry["case"], entry["metric"]) == (claim_id, case, metric) and \
                    acknowledgement_active(entry, self.root):
                until = entry.get("until_date") or f"commit {entry.get('until_commit')}"
                return f"{entry['reason']} (until {until})"
        return None

    def update(self, record: ClaimRecord, outcome: str, run_provenance: dict[str, Any] | None = None) -> Path:
        """Store this record as the profile's baseline for its case; other cases are kept.

        Read-modify-write under an exclusive lock: xdist workers update one claim's file concurrently.
        """
        path = self.path(record.claim_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for stale in path.parent.glob(f".{path.name}.*.tmp"):  # a writer killed mid-write; none runs now
                stale.unlink(missing_ok=True)
            data = self.load(record.claim_id) or {
                "schema": SCHEMA_ID, "claim": record.claim_id, "profile": self.profile, "cases": {}}
            data["provenance"] = run_provenance or provenance()
            data["cases"][record.case] = {
                "outcome": outcome,
                "metrics": {k: {"value": v.value, "spread": v.spread, "better": v.better, "unit": v.unit}
                            for k, v in record.metrics.items()},
                "measured": {k: v if not isinstance(v, float) or math.isfinite(v) else str(v)
                             for k, v in record.measured.items() if isinstance(v, (int, float, str, bool))},
                "date": data["provenance"]["date"],
                **({"note": record.note} if record.note else {}),
                **({"inputs": record.inputs} if record.inputs else {}),
            }
            jsonschema.validate(data, BASELINE_SCHEMA)  # never write what we could not read back
            atomic_write_json(path, data)
        return path

    def claim_ids(self) -> list[str]:
        """The claims stored for this profile (users' claims too)."""
        return sorted(p.stem for p in (self.root / self.profile).glob("*.json") if p.name != ACKNOWLEDGED)

    def profiles(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != "paper") \
            if self.root.is_dir() else []


# --------------------------------------------------------------------------- comparisons (greenbench compare)

@dataclass(frozen=True)
class CompareRow:
    claim: str
    case: str
    metric: str
    baseline: float | None
    measured: float
    verdict: str  # the gate's status, or for a paper row the table it comes from

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING_STATUSES

    @property
    def change_text(self) -> str:
        if self.baseline is None or self.baseline == 0 or not math.isfinite(self.baseline):
            return "—"
        return f"{100 * (self.measured - self.baseline) / abs(self.baseline):+.2f} %"

    def cells(self) -> list[str]:
        """claim, case, metric, baseline, this run, change, verdict: a row of `greenbench compare`."""
        baseline = "—" if self.baseline is None else f"{self.baseline:.6g}"
        return [self.claim, self.case, self.metric, baseline, f"{self.measured:.6g}", self.change_text, self.verdict]


def compare_records(records: list[ClaimRecord], store: BaselineStore) -> list[CompareRow]:
    """Every metric of the records against the store's baselines, with the gate's verdict."""
    rows = []
    for record in records:
        for c in store.compare(record):
            rows.append(CompareRow(record.claim_id, record.case, c.name, c.baseline, c.measured,
                                   f"{c.status}: {c.note}" if c.note else c.status))
    return rows


def records_from_profile(store: BaselineStore) -> list[ClaimRecord]:
    """A stored profile's cases as records (to compare one stored profile with another)."""
    if not (store.root / store.profile).is_dir():
        have = ", ".join(store.profiles())
        raise BaselineError(f"no stored profile {store.profile!r} under {store.root}; have: {have}")
    records = []
    for claim_id in store.claim_ids():
        data = store.load(claim_id)
        for case, stored in (data or {}).get("cases", {}).items():
            metrics = {k: Metric(v["value"], v["spread"], v.get("better"), v.get("unit", ""))
                       for k, v in stored["metrics"].items()}
            records.append(ClaimRecord(claim_id, case, "", "", stored["measured"],
                                       stored["outcome"] != "not reproduced", metrics))
    return records


def _paper_reference(record: ClaimRecord, metric: str, root: Path) -> tuple[float, str] | None:
    """The papers' counterpart of a metric, where one exists."""
    param = record.case.partition("[")[2].rstrip("]")
    if record.claim_id == "table1-counts" and metric in ("parameters", "flops"):
        return float(load_paper_table("seed000-table1", root)["data"][param][metric]), "seed 000 Table 1"
    if record.claim_id == "fp16-energy" and metric in ("energy_ratio", "time_ratio"):
        net = load_paper_table("seed000-table2", root)["data"]["networks"].get(param)
        key = "energy_wh" if metric == "energy_ratio" else "time_s"
        return (net["fp16"][key] / net["fp32"][key], "seed 000 Table 2") if net else None
    if record.claim_id == "fp16-accuracy" and metric == "delta_pp":
        net = load_paper_table("seed000-table3", root)["data"].get(param)
        return (100 * (net["fp16"]["accuracy"] - net["fp32"]["accuracy"]), "seed 000 Table 3") if net else None
    if record.claim_id == "compression-8x":
        models = load_paper_table("thesis-table3.10", root)["data"]["models"].values()
        if metric == "mean_cr":
            return sum(m["cr"] for m in models) / len(models), "thesis Table 3.10, mean of 8"
        if metric == "entropy_bits":
            return sum(m["entropy"] for m in models) / len(models), "thesis Table 3.10, mean H"
    if record.claim_id == "mnist-energy" and metric == "alexnet_over_lenet":
        return 1 + load_paper_table("seed001-results", root)["data"]["stated"]["alexnet_extra_energy_pct"] / 100, \
            "seed 001"
    return None


def paper_comparisons(records: list[ClaimRecord], root: Path) -> list[CompareRow]:
    rows = []
    for record in records:
        for name, metric in record.metrics.items():
            ref = _paper_reference(record, name, root)
            if ref is not None:
                rows.append(CompareRow(record.claim_id, record.case, name, ref[0], metric.value, ref[1]))
    return rows


# --------------------------------------------------------------------------- what changed around a jump

def stored_provenances(store: BaselineStore, records: list[ClaimRecord]) -> list[tuple[dict, str]]:
    """(provenance, "the baselines of <its claims>") of each run that recorded these records' claims in `store`."""
    found: dict[str, tuple[dict, list[str]]] = {}
    for claim_id in sorted({r.claim_id for r in records}):
        data = store.load(claim_id)
        if data:
            key = json.dumps(data["provenance"], sort_keys=True)
            found.setdefault(key, (data["provenance"], []))[1].append(claim_id)
    return [(prov, f"the baselines of {', '.join(claims)}") for prov, claims in found.values()]


def environment_report(references: list[tuple[dict, str]], run: dict, this: str) -> str:
    """What differs between each (provenance, what it is) reference and this run: a jump's likely cause."""
    from tabulate import tabulate

    from greenbench.core.provenance import environment_diff

    parts = []
    for reference, what in references:
        diff = environment_diff(reference, run)
        parts.append(f"\nenvironment of {what} (recorded {reference.get('date', '?')}) against {this}: "
                     + (f"{len(diff)} differences" if diff else "the same"))
        if diff:
            parts.append(tabulate([[k, "—" if a is None else a, "—" if b is None else b] for k, a, b in diff],
                                  headers=["field", "baseline", "this run"]))
    return "\n".join(parts)
