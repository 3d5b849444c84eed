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


def render_claims_table(rows: Sequence[ClaimRow], tablefmt: str = "simple", width: int = 60) -> str:
    table = []
    for row in rows:
        rec = row.record
        claimed = f"{rec.claimed} ({rec.tolerance})" if rec else "—"
        measured = rec.measured_text() if rec else "—"
        verdict = row.verdict + (f": {row.reason}" if row.reason else "")
        table.append([row.claim_id, row.source, _cell(row.case, 40), _cell(claimed, width), _cell(measured, width),
                      (rec.baseline if rec and rec.baseline else "—"), _cell(verdict, width)])
    summary = {v: sum(r.verdict == v for r in rows) for v in ("reproduced", "not reproduced", "not run")}
    footer = ", ".join(f"{n} {v}" for v, n in summary.items())
    return tabulate(table, headers=["claim", "source", "case", "claimed", "measured", "baseline", "verdict"],
                    tablefmt=tablefmt) + f"\n{len(rows)} claim checks: {footer}"


def write_markdown_report(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """A Markdown file of titled sections (text, tables and image links)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.rstrip(), ""]
    path.write_text("\n".join(body))
    return path
