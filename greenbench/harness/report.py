"""The claims table, the Markdown report and its plots."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from greenbench.harness.claims import (
    CLAIMS,
    CONTROL_FAILED,
    CONTROL_INCONCLUSIVE,
    CONTROL_PASSED,
    ERROR,
    KNOWN,
    NOT_REPRODUCED,
    NOT_RUN,
    REGRESSED,
    REHEARSAL_VERDICT,
    REPRODUCED,
    ClaimRecord,
)

STATUSES = (REPRODUCED, NOT_REPRODUCED, KNOWN, REGRESSED, ERROR, NOT_RUN, CONTROL_PASSED, CONTROL_FAILED,
            CONTROL_INCONCLUSIVE, REHEARSAL_VERDICT)


@dataclass
class ClaimRow:
    """One claim test's line in the claims table."""

    claim_id: str
    source: str
    case: str
    verdict: str = NOT_RUN
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
                      _cell(measured, width), _cell(rec.baseline if rec and rec.baseline else "—", min(width, 40)),
                      _cell(verdict, width)])
    # the four every table shows; known, regressed, error and rehearsal rows are counted where there are any
    summary = {v: sum(r.verdict == v for r in rows) for v in STATUSES}
    summary = {v: n for v, n in summary.items() if n or v in (REPRODUCED, NOT_REPRODUCED, KNOWN, NOT_RUN)}
    footer = ", ".join(f"{n} {v}" for v, n in summary.items())
    headers = ["claim", "source", "check", "case", "claimed", "measured", "baseline", "verdict"]
    return tabulate(table, headers=headers, tablefmt=tablefmt) + f"\n\n{len(rows)} claim checks: {footer}"


def write_markdown_report(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """A Markdown file of titled sections (text, tables and image links)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.rstrip(), ""]
    path.write_text("\n".join(body))
    return path


# --------------------------------------------------------------------------- plots

def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def plot_rate_curves(points: Sequence[dict[str, Any]], y: Callable[[dict[str, Any]], float], ylabel: str,
                     title: str, path: Path, reference: tuple[float, str] | None = None,
                     threshold: tuple[float, str] | None = None, ylim: tuple[float, float] | None = None) -> Path:
    """A figure per quantizer family against entropy (bits/weight), with optional reference and threshold lines."""
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for family in sorted({p["family"] for p in points}):
        pts = sorted((p for p in points if p["family"] == family), key=lambda p: p["entropy"])
        ax.plot([p["entropy"] for p in pts], [y(p) for p in pts], marker="o", ms=3, label=family)
    if reference:
        ax.axhline(reference[0], ls=":", color="k", label=reference[1])
    if threshold:
        ax.axhline(threshold[0], ls="--", color="grey", lw=0.8, label=threshold[1])
    ax.set_xlabel("entropy (bits/weight)")
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def plot_rate_accuracy(points: Sequence[dict[str, Any]], original_top1: float, budget_pp: float, title: str,
                       path: Path) -> Path:
    """Top-1 accuracy against entropy (bits/weight) per quantizer family, like thesis Figs. 3.6–3.11."""
    top = 100 * original_top1
    return plot_rate_curves(points, lambda p: 100 * p["top1"], "top-1 accuracy (%)", title, path,
                            reference=(top, "original"), threshold=(top - budget_pp, f"−{budget_pp:g} pp budget"),
                            ylim=(max(0, top - 10), top + 2))


def plot_fp16_bars(benchmarks: dict[str, dict[str, Any]], path: Path) -> Path:
    """Energy and time per pass, FP32 vs FP16 per network, mean ± SD of the runs."""
    import numpy as np

    networks = list(benchmarks)
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    for ax, (key, unit) in zip(axes, (("energy_j", "energy per pass (J)"), ("duration_s", "time per pass (s)"))):
        first = benchmarks[networks[0]]
        series = [s for s in first.get("series_order", first["runs"]) if all(benchmarks[n]["runs"].get(s)
                                                                             for n in networks)]
        width = 0.8 / max(len(series), 1)
        for i, name in enumerate(series):
            values = [[r[key] / r["repeats"] for r in benchmarks[n]["runs"][name]] for n in networks]
            ax.bar(np.arange(len(networks)) + (i - (len(series) - 1) / 2) * width, [np.mean(v) for v in values],
                   width, yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in values], capsize=2, label=name)
        ax.set_xticks(range(len(networks)), networks, rotation=20)
        ax.set_ylabel(unit)
        ax.legend()
    source = {r["source"] for b in benchmarks.values() for runs in b["runs"].values() for r in runs}
    fig.suptitle(f"FP32 vs AMP FP16 inference, kernel and paper loops (energy source: {', '.join(sorted(source))})")
    return save_figure(fig, path)


# --------------------------------------------------------------------------- the report of a run

def _md_table(rows: list[list[Any]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github")


def compression_table(rows: Sequence[ClaimRow]) -> list[list[Any]]:
    """Per model: setting, top-1 loss, H, CR = 32/H and the container's real CR from the compression-8x records."""
    by_case = {r.case: r.record for r in rows if r.claim_id == "compression-8x" and r.record}
    table = []
    for case, rec in sorted(by_case.items()):
        if not case.startswith("test_model_quantized_within_budget_in_the_theses_cr_range["):
            continue
        network = case.split("[", 1)[1].rstrip("]")
        real = by_case.get(f"test_real_cr_at_least_entropy_cr[{network}]")
        m = rec.measured
        table.append([network, m.get("setting"), f"{m.get('top-1', float('nan')):.4f}",
                      f"{m.get('top-1 loss pp', float('nan')):.2f}", f"{m.get('H bits', float('nan')):.3f}",
                      f"{m.get('CR', float('nan')):.2f}",
                      f"{real.measured.get('real CR'):.2f}" if real else "—"])
    return table


DISAGREEMENT_WARNING = 0.05  # polled power's energy more than 5 % off the counter's in some window


def fp16_rows(networks: dict[str, dict[str, Any]], paper: dict[str, Any]) -> list[list[Any]]:
    """Seed 000 Table 2's layout with this run's figures: per network and precision."""
    rows = []
    for network, bench in networks.items():
        for name in bench.get("series_order", bench["runs"]):
            summary = bench.get("summary", {}).get(name)
            if not summary:
                continue
            runs = bench["runs"][name]
            worst = [abs(r["disagreement"]) for r in runs if r.get("disagreement") is not None]
            zeus = [r["peers"]["zeus"]["energy_j"] / r["repeats"] for r in runs if "energy_j" in
                    r.get("peers", {}).get("zeus", {})]
            # the paper's FP32 ran PyTorch's default math: its Table 2 sits beside the paper loop's rows
            ref = paper.get(network, {}).get(bench.get("paper_table_rows", {}).get(name), {})
            per_pass = bench.get("series_per_pass_j")
            rows.append([network, name, f"{summary['J per pass']:.3f}", f"{summary['J per pass net']:.3f}",
                         f"{summary['mJ per image']:.4f}", f"{summary['images per J']:.1f}",
                         f"{summary['s per pass']:.4f}",
                         f"{per_pass:.3f}" if per_pass is not None else bench.get("series_error") or "—",
                         f"{sum(zeus) / len(zeus):.3f}" if zeus else "—",
                         f"{100 * max(worst):.2f}" if worst else "—",
                         bench.get("warmup_passes", {}).get(name, "—"),
                         ref.get("energy_wh", "—"), ref.get("time_s", "—")])
    return rows


def gpu_spread_rows(runs: dict[str, dict[str, Any]]) -> tuple[list[list[Any]], list[str]]:
    """Per network and series: each GPU's mean J per pass and their spread, (rows, headers)."""
    gpus = list(runs)
    rows = []
    for network, bench in runs[gpus[0]].items():
        for name in bench.get("series_order", bench["runs"]):
            means = [runs[g].get(network, {}).get("summary", {}).get(name, {}).get("J per pass") for g in gpus]
            if None in means:
                continue
            spread = (max(means) - min(means)) / (sum(means) / len(means))
            rows.append([network, name, *(f"{m:.3f}" for m in means), f"{100 * spread:.2f} %"])
    return rows, ["network", "series", *gpus, "spread"]


def disagreement_warnings(networks: dict[str, dict[str, Any]]) -> list[str]:
    """Windows whose polled-power energy is far from the counter's: shown, never silently averaged."""
    out = []
    for network, bench in networks.items():
        for precision, runs in bench["runs"].items():
            bad = [r["disagreement"] for r in runs if r.get("disagreement") is not None
                   and abs(r["disagreement"]) > DISAGREEMENT_WARNING]
            if bad:
                out.append(f"{network} {precision}: {len(bad)} of {len(runs)} windows off by up to "
                           f"{100 * max(bad, key=abs):+.1f} %")
    return out


def failure_line(longrepr: Any, when: str) -> str:
    """The failure's exception and message, one line, its class without the module path."""
    crash = getattr(longrepr, "reprcrash", None)
    text = (crash.message if crash is not None else str(longrepr or "")).strip()
    if not text:
        return f"failed during {when}"
    name, sep, rest = text.splitlines()[0].partition(": ")
    return (name.rpartition(".")[2] + sep + rest)[:200] if " " not in name else text.splitlines()[0][:200]


class ClaimsFileError(ValueError):
    """A claims JSON (what a run writes with --claims-json) that is missing, unreadable or malformed."""


def read_claims_file(path: Path) -> dict[str, Any]:
    """A run's claims JSON with its rows parsed (`rows` as ClaimRow), or a ClaimsFileError naming the file."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ClaimsFileError(f"claims file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClaimsFileError(f"claims file {path} is not readable JSON ({exc})") from None
    except RecursionError:
        raise ClaimsFileError(f"claims file {path} is nested too deeply to be a claims file") from None
    try:
        if not isinstance(data["provenance"], dict):
            raise TypeError("provenance is not an object")
        rows = [ClaimRow.from_json(r) for r in data["rows"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ClaimsFileError(f"claims file {path} is not a greenbench claims file "
                              f"({type(exc).__name__}: {exc})") from None
    return {"provenance": data["provenance"], "rows": rows}


def merge_claims_files(paths: Sequence[Path], out: Path) -> Path:
    """One claims JSON from several runs' (the GPU script's stages): the rows of all, the first provenance."""
    from greenbench.core.provenance import atomic_write_json

    merged: dict[str, Any] = {"provenance": None, "rows": []}
    for path in paths:
        data = read_claims_file(path)
        merged["provenance"] = merged["provenance"] or data["provenance"]
        merged["rows"] += [row.to_json() for row in data["rows"]]
    if merged["provenance"] is None:
        raise ValueError("no claims files to merge")
    atomic_write_json(Path(out), merged, sort_keys=False)
    return Path(out)


def build_report(report_dir: Path, paper_root: Path) -> Path:
    """reports/report.md from a run's claims.json and artifacts, with its PNG plots."""
    report_dir = Path(report_dir)
    claims = read_claims_file(report_dir / "claims.json")
    rows, prov = claims["rows"], claims["provenance"]
    sections = _claims_sections(rows, prov)
    sections.append(_compression_section(rows, report_dir, paper_root))
    fp16_section, sample = _fp16_section(report_dir, paper_root)
    sections.append(fp16_section)
    if sample:
        sections.append(_carbon_section(sample))
    return write_markdown_report(report_dir / "report.md", f"greenbench report — {prov['profile']}", sections)


def _claims_sections(rows: list[dict], prov: dict) -> list[tuple[str, str]]:
    statements = _md_table([[c.id, c.source, c.statement] for c in CLAIMS.values()], ["claim", "source", "statement"])
    return [("The claims", statements),
            ("Verdicts on this hardware", render_claims_table(rows, tablefmt="github", width=400)),
            ("Provenance", _md_table([[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in prov.items()],
                                     ["field", "value"]))]


def _compression_section(rows: list[dict], report_dir: Path, paper_root: Path) -> tuple[str, str]:
    from greenbench.harness.baselines import load_paper_table

    thesis = load_paper_table("thesis-table3.10", paper_root)["data"]["models"]
    text = _md_table(compression_table(rows),
                     ["network", "setting", "top-1", "top-1 loss pp", "H bits/weight", "CR = 32/H", "real CR"])
    text += "\n\nThesis Table 3.10 (ImageNet models, ≤ 0.8 pp):\n\n" + _md_table(
        [[m, v["method"] + (f" δ={v['delta']}" if v["delta"] else ""), v["log2_levels"], v["top1_loss_pp"],
          v["entropy"], v["cr"]] for m, v in thesis.items()], ["model", "method", "i", "top-1 loss pp", "H", "CR"])
    for artifact in sorted(report_dir.glob("rate_accuracy_*.json")):
        study = json.loads(artifact.read_text())
        png = plot_rate_accuracy(study["points"], study["original_top1"], study["budget_pp"],
                                 f"{study['network']}: rate vs accuracy ({study['evaluations']} evaluations)",
                                 report_dir / f"rate_accuracy_{study['network']}.png")
        text += f"\n\n![{study['network']}]({png.name})"
    return "Compression without retraining (thesis Table 3.10)", text


def _fp16_section(report_dir: Path, paper_root: Path) -> tuple[tuple[str, str], dict | None]:
    """The FP16 section and the energy sample the carbon section converts (None without one)."""
    from greenbench.harness.baselines import load_paper_table

    per_gpu = sorted(report_dir.glob("fp16_benchmark-cuda*.json"))  # pytest -m gpu -n <gpus> --dist each
    fp16_path = report_dir / "fp16_benchmark.json" if not per_gpu else per_gpu[0]
    if not fp16_path.is_file():
        sample_path = report_dir / "energy_sample.json"
        return (("FP32 vs FP16 inference", "Not run here: the FP16 energy claims need a CUDA GPU (`pytest -m gpu`)."),
                json.loads(sample_path.read_text()) if sample_path.is_file() else None)
    fp16 = json.loads(fp16_path.read_text())
    png = plot_fp16_bars(fp16["networks"], report_dir / "fp16_energy_time.png")
    network = "resnet34" if "resnet34" in fp16["networks"] else next(iter(fp16["networks"]))  # a stage cut short
    fp32_runs = fp16["networks"][network]["runs"]["fp32"]
    energy = [r["energy_j"] / r["repeats"] for r in fp32_runs]
    source = fp32_runs[0]["source"]
    paper = load_paper_table("seed000-table2", paper_root)["data"]["networks"]
    rehearsal = " (CPU rehearsal: simulated NVML, not a measurement)" if fp16.get("rehearsal") else ""
    text = (f"Data: {fp16['data']}{rehearsal}"
            f"; NVML counter update period {1000 * fp16.get('update_period_s', float('nan')):.1f} ms.\n\n"
            + _md_table(fp16_rows(fp16["networks"], paper),
                        ["network", "series", "J/pass", "J/pass net", "mJ/image", "images/J", "s/pass",
                         "CodeCarbon J/pass (series)", "Zeus J/pass", "polled vs counter max %", "warm-up passes",
                         "paper Wh", "paper s"])
            + f"\n\n![fp16]({png.name})")
    if len(per_gpu) > 1:
        text += "\n\nIdentical GPUs of one node, J per pass (spread: (max − min) / mean):\n\n" + _md_table(
            *gpu_spread_rows({p.stem.rpartition("-")[2]: json.loads(p.read_text())["networks"] for p in per_gpu}))
    warnings = disagreement_warnings(fp16["networks"])
    if warnings:
        text += "\n\n**Warning — counter and polled power disagree:**\n\n" + "\n".join(f"- {w}" for w in warnings)
    sample = {"label": f"one {network} FP32 pass", "energy_j": sum(energy) / len(energy), "source": source}
    return ("FP32 vs FP16 inference (seed 000 Table 2)", text), sample


def _carbon_section(sample: dict) -> tuple[str, str]:
    from greenbench.energy.carbon import regional_emissions

    try:
        regions = regional_emissions(sample["energy_j"])
    except Exception as exc:  # CodeCarbon's intensity data missing or unreadable: the section says so
        return "Carbon", f"Not computed: CodeCarbon's regional intensities could not be read ({exc})."
    return "Carbon", (f"Energy of {sample['label']}: {sample['energy_j']:.3f} J, **{sample['source']}** "
                      f"({sample.get('meter', 'nvml')}); the same energy in several regions "
                      "(CodeCarbon's intensities):\n\n" + _md_table(
                          [[r["country"], r["region"], f"{r['intensity_kg_per_kwh']:.3f}", f"{r['emissions_g']:.3g}"]
                           for r in regions], ["country", "region", "kg CO2/kWh", "g CO2"]))
