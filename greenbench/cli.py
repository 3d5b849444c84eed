"""The `greenbench` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .data import load_dataset
    from .training import save_checkpoint, train_network

    torch.set_num_threads(args.threads or torch.get_num_threads())
    dataset = load_dataset(args.dataset, allow_download=args.download or None)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    result = train_network(args.network, dataset, args.epochs, batch_size=args.batch_size, seed=args.seed,
                           amp=args.amp, device=device, progress=not args.quiet, train_limit=args.train_limit)
    out = Path(args.output or f"fixtures/{args.network}-{args.dataset}.safetensors")
    save_checkpoint(result.model, out, network=args.network, dataset=args.dataset,
                    data_checksum=dataset.checksum, seed=args.seed, epochs=args.epochs,
                    best_epoch=result.best_epoch, batch_size=args.batch_size, amp=args.amp, device=device,
                    train_limit=args.train_limit, training_seconds=round(result.seconds, 1),
                    validation_accuracy=result.validation_accuracy, test_accuracy=result.test_accuracy,
                    history=result.history)
    print(f"{args.network}: best epoch {result.best_epoch}, validation accuracy {result.validation_accuracy:.4f}, "
          f"test accuracy {result.test_accuracy:.4f}, {result.seconds:.0f} s -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .data import SPLIT_SEED

    parser = argparse.ArgumentParser(prog="greenbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network with seed 000's protocol")
    train.add_argument("network")
    train.add_argument("--dataset", default="fashion-mnist")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--seed", type=int, default=SPLIT_SEED)
    train.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    train.add_argument("--device")
    train.add_argument("--threads", type=int)
    train.add_argument("--train-limit", type=int, help="use only the first N training images")
    train.add_argument("--download", action="store_true", help="allow downloading the data set")
    train.add_argument("--output")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
