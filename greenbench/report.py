"""The claims table, the Markdown report and its plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from .claims import ClaimRecord


@dataclass
class ClaimRow:
    """One claim test's line in the claims table."""

    claim_id: str
    source: str
    case: str
    verdict: str = "not run"
    reason: str = ""
    record: ClaimRecord | None = None

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim_id, "source": self.source, "case": self.case, "verdict": self.verdict,
                "reason": self.reason, "record": self.record.to_json() if self.record else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClaimRow:
        record = ClaimRecord.from_json(data["record"]) if data.get("record") else None
        return cls(data["claim"], data["source"], data["case"], data["verdict"], data["reason"], record)


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def split_case(case: str) -> tuple[str, str]:
    """'test_some_check[param]' -> ('some check', 'param')."""
    name, _, param = case.partition("[")
    return name.removeprefix("test_").replace("_", " "), param.rstrip("]")


def render_claims_table(rows: Sequence[ClaimRow], tablefmt: str = "simple", width: int = 48) -> str:
    table = []
    for row in rows:
        rec = row.record
        check, param = split_case(row.case)
        claimed = f"{rec.claimed} ({rec.tolerance})" if rec else "—"
        measured = rec.measured_text() if rec else "—"
        verdict = row.verdict + (f": {row.reason}" if row.reason else "")
        table.append([row.claim_id, row.source, _cell(check, 36), _cell(param, 16), _cell(claimed, width),
                      _cell(measured, width), _cell(rec.baseline if rec and rec.baseline else "—", 24),
                      _cell(verdict, width)])
    summary = {v: sum(r.verdict == v for r in rows) for v in ("reproduced", "not reproduced", "not run")}
    footer = ", ".join(f"{n} {v}" for v, n in summary.items())
    headers = ["claim", "source", "check", "case", "claimed", "measured", "baseline", "verdict"]
    return tabulate(table, headers=headers, tablefmt=tablefmt) + f"\n{len(rows)} claim checks: {footer}"


def write_markdown_report(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """A Markdown file of titled sections (text, tables and image links)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.rstrip(), ""]
    path.write_text("\n".join(body))
    return path
