"""`greenbench compare` (the baseline gate, and with --history the windowed gate) and `greenbench history`."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenbench.cli.common import CliError, repo_root


def cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from greenbench.core.provenance import hardware_profile
    from greenbench.harness.baselines import (
        BaselineStore,
        compare_records,
        environment_report,
        paper_comparisons,
        records_from_profile,
        stored_provenances,
    )
    from greenbench.harness.exports import append_step_summary, write_exports
    from greenbench.harness.history import HEADERS as HISTORY_HEADERS

    root = Path(args.baseline_dir or repo_root() / "baselines")
    stored = BaselineStore(root, "").profiles()
    against = args.against or hardware_profile()
    for profile in filter(None, (args.profile, args.against)):
        if profile not in stored:
            raise CliError(f"no stored profile {profile!r} under {root}; stored: {', '.join(stored) or 'none'}")
    baselines = BaselineStore(root, against)
    if args.run:
        records, run_provenance = _run_records(Path(args.run))
        this = f"run {args.run}"
    else:
        compared = BaselineStore(root, args.profile)
        records = records_from_profile(compared)
        recorded_by = stored_provenances(compared, records)
        run_provenance = recorded_by[0][0] if len(recorded_by) == 1 else None  # one recording run: its environment
        this = f"profile {args.profile}"
    rows = compare_records(records, baselines)
    print(f"{this} against baselines of {against}")
    print(tabulate([r.cells() for r in rows], headers=COMPARE_HEADERS))
    if run_provenance:
        print(environment_report(stored_provenances(baselines, records), run_provenance, this))
    if args.paper:
        paper = paper_comparisons(records, root)
        print(f"\n{this} against the papers' tables (different hardware and data: context, not a gate)")
        print(tabulate([r.cells() for r in paper],
                       headers=["claim", "case", "metric", "paper", "this run", "change", "note"]))
    history = history_gate(args, records, run_provenance, baselines) if args.history else []
    for line in write_exports(records, args.bmf and Path(args.bmf), args.benchmark_action and
                              Path(args.benchmark_action)):
        print(line)
    failed = [r for r in rows if r.failed] + [h for h in history if h.failed]
    missing = [r for r in rows if r.verdict == "missing"]
    append_step_summary(f"### greenbench compare: {this} against {against}\n\n" + tabulate(
        [r.cells() for r in rows], headers=COMPARE_HEADERS, tablefmt="github") + (
        "\n\n#### Against the run history\n\n" + tabulate([h.cells() for h in history], headers=HISTORY_HEADERS,
                                                            tablefmt="github") if history else ""))
    return 1 if failed else (2 if missing and args.fail_on_missing else 0)


COMPARE_HEADERS = ["claim", "case", "metric", "baseline", "this run", "change", "verdict"]


def _run_records(path: Path):
    """The claim records of a run's claims JSON and its provenance, or an error naming the file and what is wrong."""
    from greenbench.harness.report import read_claims_file

    run = read_claims_file(path)
    records = [row.record for row in run["rows"] if row.record is not None]
    if not records:
        raise CliError(f"claims file {path} holds no claim records")
    return records, run.get("provenance")


def history_gate(args: argparse.Namespace, records, run_provenance: dict | None, baselines):
    """The windowed gate against the run history (greenbench.harness.history), printed; its verdicts.
    `baselines` (the compared profile's BaselineStore) knows the acknowledged regressions."""
    from tabulate import tabulate

    from greenbench.harness.baselines import environment_report
    from greenbench.harness.history import HEADERS, gate_history, load_runs

    profile = args.history_profile or (run_provenance or {}).get("profile") or baselines.profile
    runs = [(name, run) for name, run in load_runs(Path(args.history), profile)  # never this run itself
            if not run_provenance or run["provenance"].get("date") != run_provenance.get("date")]
    verdicts = gate_history(records, runs, args.window, args.min_change, args.alpha, baselines.acknowledged)
    print(f"\nagainst the last {args.window} runs of {profile} in {args.history} ({len(runs)} recorded; "
          f"prediction-interval and trend tests, Holm across {len(verdicts)} metrics at family-wise "
          f"α = {args.alpha:g} per run"
          + (f", changes under {100 * args.min_change:g} % never fail" if args.min_change else "") + ")")
    print(tabulate([v.cells() for v in verdicts], headers=HEADERS))
    if runs and run_provenance:
        print(environment_report([(runs[-1][1]["provenance"], f"the last run ({runs[-1][0]})")], run_provenance,
                                 "this run"))
    return verdicts


def cmd_history(args: argparse.Namespace) -> int:
    """`greenbench history DIR`: each metric's series, and its trend chart with --plot."""
    from greenbench.harness.baselines import BaselineStore
    from greenbench.harness.history import load_runs, metric_series, plot_series, series_text

    runs = load_runs(Path(args.directory), args.profile)
    series = {key: points for key, points in metric_series(runs, args.claim, args.metric).items()
              if args.case is None or key[1] == args.case}
    print(series_text(series))
    if args.plot:
        profile = args.profile or (runs[-1][1]["provenance"]["profile"] if runs else "")
        store = BaselineStore(Path(args.baseline_dir or repo_root() / "baselines"), profile)

        def baseline(claim: str, case: str, metric: str):
            stored = ((store.case(claim, case) or {}).get("metrics") or {}).get(metric)
            return (stored["value"], stored["spread"]) if stored else None

        paths = plot_series(series, Path(args.plot), baseline)
        print(f"\n{len(paths)} trend charts in {args.plot}")
    return 0


def relative_change(text: str) -> float:
    """'5%' or '0.05' as 0.05."""
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a relative change such as 5% or 0.05, got {text!r}") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"a relative change in [0, 1000 %), got {text!r}")
    return value


def alpha_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be a number in (0, 1), got {text!r}")
    return value
