"""Command line: ``fastdefocus <command>``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_train(args) -> int:
    from .training import TrainConfig, finalize, generate_dataset, train

    def log(msg):
        print(msg, flush=True)

    cache = Path(args.cache)
    generate_dataset(cache, n_train=args.train_patches, n_val=args.val_patches, seed=args.seed,
                     workers=args.workers, log=log)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width_mult=args.width,
                      seed=args.seed, threads=args.threads)
    train(cache, Path(args.run), cfg, log=log)
    if args.export:
        finalize(cache, Path(args.run), Path(args.export), Path(args.docs) if args.docs else None, log=log)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastdefocus", description="Per-pixel defocus (blur sigma) maps.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="generate synthetic patches and train the blur-level classifier",
                       description="Generate (or reuse) the cached synthetic patches, train the classifier "
                                   "(resumable: rerun the same command after an interruption), then calibrate, "
                                   "measure on held-out sources and export the weights.")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "fastdefocus" / "patches"),
                   help="folder for the generated patch memmaps (outside the repository)")
    p.add_argument("--run", default="runs/classifier", help="folder for checkpoints and the training log")
    p.add_argument("--export", default=None, help="write weights + metadata here when training ends "
                                                  "(src/fastdefocus/weights to ship them)")
    p.add_argument("--docs", default=None, help="write MODEL.md and the confusion matrix picture here")
    p.add_argument("--train-patches", type=int, default=600_000)
    p.add_argument("--val-patches", type=int, default=30_000)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=float, default=0.5, help="MobileNetV2 width multiplier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes generating patches")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
