"""The `greenbench` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from greenbench.cli.common import CliError, repo_root

log = logging.getLogger("greenbench")


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from greenbench.nn.data import load_dataset
    from greenbench.nn.training import save_training, train_network

    out = Path(args.output or f"fixtures/{args.network}-{args.dataset}.safetensors")
    if args.skip_existing and out.is_file():
        log.info("%s exists; not retraining", out)
        return 0
    torch.set_num_threads(args.threads or torch.get_num_threads())
    dataset = load_dataset(args.dataset, allow_download=args.download or None)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher = None
    if args.teacher:
        from greenbench.nn.training import load_checkpoint

        teacher, teacher_meta = load_checkpoint(Path(args.teacher))
    result = train_network(args.network, dataset, args.epochs, batch_size=args.batch_size, seed=args.seed,
                           amp=args.amp, device=device, progress=not args.quiet, train_limit=args.train_limit,
                           teacher=teacher, temperature=args.temperature, alpha=args.alpha)
    save_training(result, out, dataset, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                  amp=args.amp, device=device, train_limit=args.train_limit,
                  teacher=teacher_meta["weights_sha256"] if teacher is not None else None,
                  temperature=args.temperature if teacher is not None else None,
                  alpha=args.alpha if teacher is not None else None)
    print(f"{args.network}: best epoch {result.best_epoch}, validation accuracy {result.validation_accuracy:.4f}, "
          f"test accuracy {result.test_accuracy:.4f}, {result.seconds:.0f} s -> {out}")
    return 0


def _cmd_distil(args: argparse.Namespace) -> int:
    import torch

    from greenbench.nn.data import load_dataset
    from greenbench.nn.distillation import run_protocol

    torch.set_num_threads(args.threads or torch.get_num_threads())
    record = run_protocol(load_dataset(args.dataset, allow_download=args.download or None), Path(args.teacher),
                          Path(args.output_dir), progress=not args.quiet)
    print(f"chosen T={record['chosen']['temperature']}, alpha={record['chosen']['alpha']}")
    for name, student in record["students"].items():
        print(f"{name}: test accuracy {student['test_accuracy']:.4f} ({student['file']})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """The main job: the claims on this hardware (pytest -m claim), the claims table, the report."""
    import subprocess

    from greenbench.harness.report import build_report

    root = repo_root()
    baseline_dir = Path(args.baseline_dir or root / "baselines")
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    # GPU claims are always asked for: without CUDA the suite lists them as not run, with one line why
    tiers = "claim" if args.nightly else "claim and not nightly"
    command = [sys.executable, "-m", "pytest", "-m", tiers, "-p", "no:cacheprovider", "-q", "--no-header",
               f"--claims-json={report_dir / 'claims.json'}", f"--report-dir={report_dir}",
               f"--baseline-dir={baseline_dir}", *args.pytest_args]
    if args.workers > 1:
        command += ["-n", str(args.workers), "--dist", "loadfile"]
    if args.update_baselines:
        command.append("--update-baselines")
    if args.history:
        command.append(f"--history={Path(args.history).resolve()}")
    status = subprocess.call(command, cwd=root)
    _energy_sample(root, report_dir)
    if (report_dir / "claims.json").is_file():
        path = build_report(report_dir, baseline_dir)
        log.info("report: %s", path)
    return status


def _energy_sample(root: Path, report_dir: Path) -> None:
    """One LeNet-5 FP32 pass over the Fashion-MNIST test set on the most direct meter here, for the carbon table."""
    from greenbench.core.provenance import atomic_write_json
    from greenbench.energy.best import best_meter
    from greenbench.energy.meter import measure
    from greenbench.nn.data import DatasetError, load_dataset, to_network_input
    from greenbench.nn.training import load_checkpoint, predict_logits

    try:
        model, _ = load_checkpoint(root / "fixtures" / "lenet5-fashion-mnist.safetensors")
        x = to_network_input(load_dataset("fashion-mnist").test_images)
    except (DatasetError, FileNotFoundError):
        return
    meter = best_meter()
    m = measure(meter, lambda: predict_logits(model, x, batch_size=32))
    atomic_write_json(report_dir / "energy_sample.json",
                      {"label": "one LeNet-5 FP32 pass over 10,000 images (CPU)", "energy_j": m.energy_per_repeat_j,
                       "source": m.source, "meter": m.meter})
    meter.close()


def _cmd_model(args: argparse.Namespace) -> int:
    """`greenbench model PATH`: the thesis's claims on a user's own model."""
    import math

    from tabulate import tabulate

    from greenbench.core.provenance import atomic_write_json, provenance
    from greenbench.harness.report import plot_rate_accuracy, plot_rate_curves
    from greenbench.nn.modelstudy import load_model_data, load_user_model, study_user_model

    out_dir = Path(args.report_dir or f"reports/model-{Path(args.path).stem}")
    if out_dir.exists() and not out_dir.is_dir():  # found now, not after the whole study has run
        raise CliError(f"--report-dir {out_dir} is a file, not a folder")
    model = load_user_model(args.path)
    data = load_model_data(args.data, model) if args.data else None
    families = [f.strip() for f in args.quantizers.split(",")] if args.quantizers else None
    study = study_user_model(model, data, args.budget, args.snr_db, families, progress=print)
    fit = study["fit"]
    print(f"\n{model.path} ({model.kind}): {study['weights']:,} weights ({', '.join(study['dtypes'])}), "
          f"original entropy {study['original_entropy']:.2f} bits/weight")
    print(f"laplacian-weights: Laplace ranks {fit['laplace_rank_sse']} by SSE, {fit['laplace_rank_kl']} by KL "
          f"(best: {fit['by_sse'][0]} by SSE, {fit['by_kl'][0]} by KL) — "
          f"{'reproduced' if min(fit['laplace_rank_sse'], fit['laplace_rank_kl']) <= 2 else 'not reproduced'} "
          "(thesis: Laplace 1st or 2nd)")
    print("\nrate of the weights, per family, at the setting nearest 8× (no inference):")
    print(tabulate([[f, r["setting"], f"{r['entropy']:.3f}", f"{r['cr']:.2f}", r["coded_bytes"], f"{r['real_cr']:.2f}"]
                    for f, r in study["coded_near_8x"].items()],
                   headers=["family", "setting", "H bits", "CR = 32/H", "coded bytes", "real CR"]))
    plots = [plot_rate_curves(study["rate_distortion"], lambda p: p["snr_db"], "SNR of the weights (dB)",
                              f"{model.path.name}: rate–distortion of the weights", out_dir / "rate_distortion.png")]
    budget = study.get("budget")
    if budget:
        print(f"\nbudget search — fidelity: {budget['fidelity']}; {budget['evaluations']} evaluations on "
              f"{budget['images']} inputs")
        rows = [[f, r["setting"], f"{r['entropy']:.3f}", f"{r['cr']:.2f}", r["container_bytes"], f"{r['real_cr']:.2f}",
                 f"{r['loss_top1_pp']:.2f} pp" if "loss_top1_pp" in r else f"{r['snr_db']:.1f} dB"]
                if r else [f, "none within the budget", "", "", "", "", ""]
                for f, r in budget["best_per_family"].items()]
        print(tabulate(rows, headers=["family", "best setting", "H bits", "CR = 32/H", "container bytes", "real CR",
                                      "loss" if budget.get("original_top1") is not None else "SNR"]))
        if budget.get("original_top1") is not None:
            plots.append(plot_rate_accuracy(budget["points"], budget["original_top1"], budget["budget_pp"],
                                            f"{model.path.name}: rate vs fidelity", out_dir / "rate_accuracy.png"))
        else:
            plots.append(plot_rate_curves(budget["points"], lambda p: p["snr_db"] if math.isfinite(p["snr_db"])
                                          else float("nan"), "output SNR (dB)", f"{model.path.name}: rate vs fidelity",
                                          out_dir / "rate_fidelity.png",
                                          threshold=(budget["budget"], f"{budget['budget']:g} dB")))
    atomic_write_json(out_dir / "model.json", {"provenance": provenance(), "study": _json_safe(study)})
    print(f"\nwrote {out_dir / 'model.json'} and {', '.join(p.name for p in plots)}")
    return 0


def _json_safe(value):
    """inf (a CR of 0 bits, an exact SNR) as the string JSON readers accept, not a bare Infinity."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _cmd_report(args: argparse.Namespace) -> int:
    from greenbench.harness.report import build_report

    print(build_report(Path(args.report_dir), Path(args.baseline_dir or repo_root() / "baselines")))
    return 0


def _positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1, refused in core.validation's words."""
    from greenbench.core.validation import check_scalar

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}") from None
    try:
        return check_scalar(value, "the value", int, low=1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {value}") from None


def _number_in(low: float, high: float):
    """An argparse type: a finite number in (low, high]."""
    def parse(text: str) -> float:
        from greenbench.core.validation import check_scalar, interval_text

        try:
            return check_scalar(float(text), "the value", float, low=low, high=high, include_low=False)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a number {interval_text(low, high, False, True)}, got {text!r}") from None
    return parse


def build_parser() -> argparse.ArgumentParser:
    from greenbench.cli.gate import alpha_value, cmd_compare, cmd_history, relative_change
    from greenbench.nn.data import SPLIT_SEED

    parser = argparse.ArgumentParser(prog="greenbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network with seed 000's protocol")
    train.add_argument("network")
    train.add_argument("--dataset", default="fashion-mnist")
    train.add_argument("--epochs", type=_positive_int, default=50)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--seed", type=int, default=SPLIT_SEED)
    train.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    train.add_argument("--device")
    train.add_argument("--threads", type=_positive_int)
    train.add_argument("--train-limit", type=_positive_int,
                       help="use only the first N training (and validation) images")
    train.add_argument("--download", action="store_true", help="allow downloading the data set")
    train.add_argument("--output")
    train.add_argument("--quiet", action="store_true")
    train.add_argument("--skip-existing", action="store_true", help="do nothing if the checkpoint exists")
    train.add_argument("--teacher", help="a checkpoint to distil from (soft targets at --temperature, weight --alpha)")
    train.add_argument("--temperature", type=float, default=4.0, help="distillation temperature T (default 4)")
    train.add_argument("--alpha", type=float, default=0.9,
                       help="weight of the distillation loss against the labels' (default 0.9)")
    train.set_defaults(func=_cmd_train)

    distil = sub.add_parser("distil", help="seed 003's distillation protocol: (T, alpha) chosen on validation, "
                                           "then both students over three seeds (see greenbench.nn.distillation)")
    distil.add_argument("--teacher", default="fixtures/googlenet-fashion-mnist.safetensors")
    distil.add_argument("--dataset", default="fashion-mnist")
    distil.add_argument("--output-dir", default="fixtures")
    distil.add_argument("--threads", type=_positive_int)
    distil.add_argument("--download", action="store_true", help="allow downloading the data set")
    distil.add_argument("--quiet", action="store_true")
    distil.set_defaults(func=_cmd_distil)

    run = sub.add_parser("run", help="the main job: run the claims on this hardware and write the report")
    run.add_argument("--report-dir", default="reports")
    run.add_argument("--baseline-dir")
    run.add_argument("--nightly", action="store_true", help="include the nightly tier (all trained networks)")
    run.add_argument("--workers", type=_positive_int, default=2, help="pytest-xdist workers (1: none)")
    run.add_argument("--update-baselines", action="store_true")
    run.add_argument("--history", help="record this run in a history folder (pytest --history)")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    run.set_defaults(func=_cmd_run)

    compare = sub.add_parser("compare", help="a run or stored profile against a profile's baselines (and the papers)")
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="claims JSON of a run (greenbench run writes reports/claims.json)")
    source.add_argument("--profile", help="a stored hardware profile under the baseline folder")
    compare.add_argument("--against", help="the profile to compare with (default: this machine's)")
    compare.add_argument("--paper", action="store_true", help="also compare with the papers' tables")
    compare.add_argument("--baseline-dir")
    compare.add_argument("--fail-on-missing", action="store_true", help="exit 2 when a metric has no baseline")
    compare.add_argument("--history", help="also judge each metric against this run history (pytest --history)")
    compare.add_argument("--history-profile", help="the history's profile (default: the run's)")
    compare.add_argument("--window", type=_positive_int, default=20, help="runs of history each metric is judged on")
    compare.add_argument("--min-change", type=relative_change, default=0.0, help="changes smaller than this never fail "
                         "(5%% or 0.05)")
    compare.add_argument("--alpha", type=alpha_value, default=0.05, help="family-wise false-alarm rate per run")
    compare.add_argument("--bmf", help="write the run's metrics as Bencher Metric Format JSON")
    compare.add_argument("--benchmark-action", help="write github-action-benchmark JSON (customSmallerIsBetter; "
                         "customBiggerIsBetter beside it as NAME-bigger.json)")
    compare.set_defaults(func=cmd_compare)

    history = sub.add_parser("history", help="each metric's series over a run history, with trend charts")
    history.add_argument("directory", help="the history folder (pytest --history DIR)")
    history.add_argument("--claim")
    history.add_argument("--case")
    history.add_argument("--metric")
    history.add_argument("--profile")
    history.add_argument("--plot", help="write one trend chart per metric into this folder")
    history.add_argument("--baseline-dir")
    history.set_defaults(func=cmd_history)

    model = sub.add_parser("model", help="the thesis's claims on your own model: ONNX, safetensors or state dict")
    model.add_argument("path", help="an .onnx model, a .safetensors file or a PyTorch state dict (.pt/.pth/.bin)")
    model.add_argument("--data", help=".npz with 'inputs' (and optionally integer 'labels') for the budget search "
                                      "(ONNX only)")
    model.add_argument("--budget", type=_number_in(0.0, 100.0), default=0.8,
                       help="accuracy (or agreement) loss allowed, in pp (default 0.8, the thesis's)")
    model.add_argument("--snr-db", type=_number_in(-1000.0, 1000.0), default=30.0,
                       help="for models that are not classifiers: the least output SNR allowed, dB (default 30)")
    model.add_argument("--quantizers", help="comma-separated families of the thesis grid (default: all)")
    model.add_argument("--report-dir", help="where the JSON and plots go (default reports/model-<name>)")
    model.set_defaults(func=_cmd_model)

    report = sub.add_parser("report", help="rebuild the Markdown report of a run")
    report.add_argument("--report-dir", default="reports")
    report.add_argument("--baseline-dir")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    from greenbench.harness.baselines import BaselineError
    from greenbench.nn.data import DatasetError

    args = build_parser().parse_args(argv)
    # progress and diagnostics go to stderr through the greenbench logger; results (tables) to stdout
    if not logging.getLogger("greenbench").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("greenbench: %(message)s"))
        logging.getLogger("greenbench").addHandler(handler)
        logging.getLogger("greenbench").setLevel(logging.INFO)
    try:
        return args.func(args)
    except (CliError, BaselineError, DatasetError, ValueError) as exc:
        print(f"greenbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
