"""``fastdefocus magnify``, ``enhance`` and ``fuse``: the applications on the command line."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fastdefocus.apps import enhance, fuse, magnify
from fastdefocus.apps.fuse import FUSE_STRIDE
from fastdefocus.cli.options import add_estimator_arguments, estimator_from_args
from fastdefocus.io.images import check_outputs, encode_image, read_image, write_files, write_image
from fastdefocus.io.sigmamap import read_sigma_map


def add_force_argument(p) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _check_outputs(args, *paths) -> bool:
    """Check every output before any work (an image extension OpenCV writes, not a folder, a
    writable folder, the overwrite rule); say what is wrong and return False."""
    try:
        check_outputs(paths, force=args.force)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return False
    return True


def _sigma_or_estimator(args):
    if args.sigma_map:
        return read_sigma_map(args.sigma_map), None
    return None, estimator_from_args(args)


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message)


def _cmd_magnify(args) -> int:
    if not _check_outputs(args, args.output):
        return 2
    image = read_image(args.image)
    sigma, est = _sigma_or_estimator(args)
    out = magnify(image, sigma, amount=args.amount, in_focus=args.in_focus, estimator=est)
    write_image(args.output, out, force=args.force)
    _say(args, f"{args.image}: defocus x{args.amount:g} -> {args.output}")
    return 0


def _cmd_enhance(args) -> int:
    if not _check_outputs(args, args.output):
        return 2
    image = read_image(args.image)
    sigma, est = _sigma_or_estimator(args)
    out = enhance(image, sigma, amount=args.amount, estimator=est, radius=args.radius,
                  sigma_limit=args.sigma_limit)
    write_image(args.output, out, force=args.force)
    _say(args, f"{args.image}: enhanced (amount {args.amount:g}, sharpening stops at sigma "
               f"{args.sigma_limit:g} px) -> {args.output}")
    return 0


def _cmd_fuse(args) -> int:
    if not _check_outputs(args, args.output, args.decision):
        return 2
    images = [read_image(path) for path in args.images]
    est = estimator_from_args(args) if args.sigma_weight > 0 else None
    fused, decision = fuse(images, est, sigma_weight=args.sigma_weight)
    # both files encoded first, then written all or nothing
    files = {args.output: encode_image(fused, Path(args.output).suffix.lower())}
    message = f"fused {len(images)} images -> {args.output}"
    if args.decision:
        # Grey level of the chosen shot: 0 for the first, 255 for the last.
        index = decision.argmax(axis=0).astype(np.float32)
        grey = np.rint(index * 255.0 / (len(images) - 1)).astype(np.uint8)
        files[args.decision] = encode_image(grey, Path(args.decision).suffix.lower())
        message += f", decision map -> {args.decision}"
    write_files(files, force=args.force)
    _say(args, message)
    return 0


def _add_common(p) -> None:
    add_force_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def add_commands(subparsers) -> None:
    """Register ``magnify``, ``enhance`` and ``fuse`` on the CLI's subparsers
    (``argparse._SubParsersAction``), each with the estimator options of ``estimate``."""
    p = subparsers.add_parser("magnify", help="shallower depth of field: blur what is blurred more",
                              description="Multiply the defocus blur of every pixel by --amount (in-focus "
                                          "pixels stay sharp) and write the image.")
    p.add_argument("image", help="image file")
    p.add_argument("-o", "--output", required=True, help="output image file (.png, .tif, .jpg)")
    p.add_argument("--amount", type=float, default=2.0, help="blur multiplier >= 1 (default 2)")
    p.add_argument("--in-focus", type=float, default=0.7,
                   help="sigma in px counted as in focus; the blur beyond it is multiplied (default 0.7)")
    p.add_argument("--sigma-map", default=None,
                   help="defocus map from `fastdefocus estimate` (.tiff, .npy or _sigma16.png) instead of "
                        "estimating it")
    add_estimator_arguments(p)
    _add_common(p)
    p.set_defaults(func=_cmd_magnify)

    p = subparsers.add_parser("enhance", help="sharpen the in-focus parts, leave the bokeh alone",
                              description="Unsharp masking whose gain falls with the defocus sigma and is zero "
                                          "from --sigma-limit on.")
    p.add_argument("image", help="image file")
    p.add_argument("-o", "--output", required=True, help="output image file")
    p.add_argument("--amount", type=float, default=1.0, help="sharpening strength >= 0 (default 1)")
    p.add_argument("--radius", type=float, default=1.0, help="unsharp-mask Gaussian sigma in px (default 1)")
    p.add_argument("--sigma-limit", type=float, default=1.5,
                   help="defocus sigma in px from which pixels are left untouched (default 1.5)")
    p.add_argument("--sigma-map", default=None, help="defocus map from `fastdefocus estimate`")
    add_estimator_arguments(p, exclude=("radius",))
    _add_common(p)
    p.set_defaults(func=_cmd_enhance)

    p = subparsers.add_parser("fuse", help="all-in-focus image from shots focused differently",
                              description="Multi-focus fusion of two or more same-size shots of one scene. "
                                          f"Here --stride defaults to {FUSE_STRIDE}: the defocus maps only "
                                          "steer region decisions.")
    p.add_argument("images", nargs="+", help="two or more image files of the same size")
    p.add_argument("-o", "--output", required=True, help="fused image file")
    p.add_argument("--decision", default=None,
                   help="also write the decision map here (grey level of the chosen shot, first = 0, last = 255)")
    p.add_argument("--sigma-weight", type=float, default=0.5,
                   help="weight of the defocus maps against the Laplacian energy (default 0.5; 0: energy only)")
    add_estimator_arguments(p, stride=FUSE_STRIDE)
    _add_common(p)
    p.set_defaults(func=_cmd_fuse)
