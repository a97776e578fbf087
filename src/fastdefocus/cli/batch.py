"""Command line of batches: ``fastdefocus batch``. The work is done by :mod:`fastdefocus.batch`:
its runner (no pyarrow, no Ray) is read for the defaults when the parser is built, the
rest is imported when the command runs."""
from __future__ import annotations

from fastdefocus.cli.options import add_estimator_arguments, config_from_args

__all__ = ["add_commands"]


def _cmd_batch(args) -> int:
    from fastdefocus.batch import run
    given = {name: getattr(args, name) for name in ("workers", "threads_per_worker", "address", "gpus_per_worker",
                                                    "every", "outputs") if getattr(args, name) is not None}
    run(args.inputs, args.output, engine=args.engine, config=config_from_args(args), progress=not args.quiet,
        **given)
    return 0


def add_commands(subparsers) -> None:
    """Register ``batch`` on the ``fastdefocus`` subparsers (the defaults shown are ``run``'s own)."""
    import inspect
    from fastdefocus.batch.runner import ENGINES, run  # cheap: no pyarrow, no Ray
    default = {name: prm.default for name, prm in inspect.signature(run).parameters.items()}
    p = subparsers.add_parser(
        "batch", help="defocus statistics (and maps) of photo libraries and video archives, locally or on Ray",
        description="Estimate every image and video frame of the inputs and write OUT/summary.parquet, one row "
                    "per image or frame (path, frame, height, width, median_sigma, p10_sigma, p90_sigma, "
                    "in_focus_fraction, sharpness, backend, ms, error); with --outputs summary,maps also "
                    "OUT/maps/*.png (16-bit, value = round(1000 x sigma px)). Progress is saved in OUT/parts as "
                    "it goes: run the same command again to go on after an interruption (what is done is "
                    "skipped). A corrupt or missing file becomes a row with its error; a folder without "
                    "images or videos is an error.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (recursive), videos, lists of paths (.txt / .lst, one a line), "
                        "or URIs pyarrow reads (s3://...)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--engine", choices=ENGINES, default=default["engine"],
                   help="local: worker processes on this machine; ray: Ray Data actors (pip install "
                        "'fastdefocus[ray]') (default %(default)s)")
    p.add_argument("--address", default=None,
                   help="ray: the cluster to join (ray.init(address=...), e.g. auto); default a local Ray "
                        "with this machine's cores")
    p.add_argument("--workers", type=int, default=None,
                   help="estimators at once (default: as many as cores / threads per worker)")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="cores each worker uses (default 1, or the cores shared out among --workers)")
    p.add_argument("--gpus-per-worker", type=float, default=None,
                   help=f"ray: GPUs each actor reserves, e.g. 0.5 (default {default['gpus_per_worker']}: "
                        "CPU actors)")
    p.add_argument("--every", type=int, default=None,
                   help=f"from videos, every K-th frame (default {default['every']})")
    p.add_argument("--outputs", default=None,
                   help=f"summary, or summary,maps (default {','.join(default['outputs'])})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    add_estimator_arguments(p)
    p.set_defaults(func=_cmd_batch)
