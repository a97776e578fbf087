"""Command line: ``fastdefocus <command>``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastdefocus.cli.apps import add_commands as add_application_commands
from fastdefocus.cli.apps import add_force_argument
from fastdefocus.cli.batch import add_commands as add_batch_commands
from fastdefocus.cli.eval import add_commands as add_eval_commands
from fastdefocus.cli.options import add_estimator_arguments, estimator_from_args
from fastdefocus.io.sigmamap import SIGMA_PNG_SCALE, to_png16


def _cmd_train(args) -> int:
    from fastdefocus.train.training import TrainConfig, finalize, generate_dataset, train

    def log(msg):
        print(msg, flush=True)

    cache = Path(args.cache)
    generate_dataset(cache, n_train=args.train_patches, n_val=args.val_patches, seed=args.seed,
                     workers=args.workers, log=log)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width_mult=args.width,
                      seed=args.seed, threads=args.threads, init=args.init or "")
    train(cache, Path(args.run), cfg, log=log)
    if args.export:
        finalize(cache, Path(args.run), Path(args.export), Path(args.docs) if args.docs else None, log=log)
    return 0




class Progress:
    """A one-line progress bar on stderr (no dependency)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done = total, 0
        self.enabled = enabled and total > 1

    def step(self, label: str = "") -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = int(width * self.done / self.total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:40]:40s}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _side_by_side(*images):
    import numpy as np
    height = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)


def _as_rgb8(image):
    import cv2
    import numpy as np
    from fastdefocus._validate import check_image
    arr = check_image(image)
    if arr.dtype == np.uint16:
        arr = (arr / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):  # other integers are checked to lie in 0-255
        arr = arr.astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    elif arr.shape[2] <= 2:  # gray, or gray + alpha
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., 0]), cv2.COLOR_GRAY2RGB)
    elif arr.shape[2] == 4:
        arr = arr[..., :3]
    return arr


def _refuse_overwrite(paths, force: bool) -> bool:
    """Say so and return True when an output exists and --force was not given."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        print(f"error: would overwrite {', '.join(existing)}; pass --force to overwrite", file=sys.stderr)
        return True
    return False


def _outputs_for(out_dir: Path, stem: str, fmt: str) -> dict:
    return {"sigma": out_dir / f"{stem}_sigma.{fmt}", "sigma16": out_dir / f"{stem}_sigma16.png",
            "color": out_dir / f"{stem}_sigma_color.png", "side": out_dir / f"{stem}_side_by_side.png"}


def _write_result(outputs: dict, image, result, force: bool) -> None:
    import numpy as np
    from fastdefocus.io.images import encode_image, write_atomic, write_npy
    if outputs["sigma"].suffix == ".npy":
        write_npy(outputs["sigma"], result.sigma, force=force)
    else:
        write_atomic(outputs["sigma"], encode_image(result.sigma, ".tiff"), force=force)
    sigma16 = to_png16(result.sigma)
    write_atomic(outputs["sigma16"], encode_image(sigma16, ".png"), force=force)
    color = result.colorize()
    write_atomic(outputs["color"], encode_image(color, ".png"), force=force)
    write_atomic(outputs["side"], encode_image(_side_by_side(_as_rgb8(image), color), ".png"), force=force)


def _cmd_estimate(args) -> int:
    import cv2
    from fastdefocus.io.images import read_image
    out_dir = Path(args.output)
    fmt = "npy" if args.format == "npy" else "tiff"
    stems = [Path(name).stem for name in args.images]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        print(f"error: several inputs would write the same outputs ({', '.join(clashes)}): "
              "give them different names or run them into different folders", file=sys.stderr)
        return 2
    plan = []
    for name in args.images:
        outputs = _outputs_for(out_dir, Path(name).stem, fmt)
        if _refuse_overwrite(outputs.values(), args.force):
            return 2
        plan.append((name, outputs))
    est = estimator_from_args(args)
    print(f"backend {est.backend}, stride {est.stride}; 16-bit PNG maps store round({SIGMA_PNG_SCALE} * sigma px)",
          file=sys.stderr)
    progress = Progress(len(plan), enabled=not args.quiet)
    failures = 0
    for name, outputs in plan:
        try:
            image = read_image(name)
            result = est.estimate(image)
            _write_result(outputs, image, result, args.force)
            if not args.quiet:
                print(f"{name}: median sigma {float(__import__('numpy').median(result.sigma)):.2f} px, "
                      f"sharpness {result.sharpness():.3f}, {result.timings['total'] * 1000:.0f} ms -> "
                      f"{outputs['sigma']}")
        except (OSError, ValueError, TypeError, MemoryError, cv2.error) as e:
            failures += 1
            print(f"error: {name}: {str(e) or type(e).__name__}", file=sys.stderr)
        progress.step(Path(name).name)
    return 1 if failures else 0


def _cmd_demo(args) -> int:
    import numpy as np
    from fastdefocus.metrics.defocus import boundary_mask, map_errors, textured_mask
    from fastdefocus.io.images import encode_image, write_atomic
    from fastdefocus.scenes import demo_scene
    out_dir = Path(args.output)
    names = {k: out_dir / f"demo_{k}.png" for k in ("input", "truth", "estimate", "side_by_side")}
    if _refuse_overwrite(names.values(), args.force):
        return 2
    blurred, truth, sharp = demo_scene(seed=args.seed)
    est = estimator_from_args(args)
    result = est.estimate(blurred)
    from fastdefocus.result import DefocusResult
    truth_view = DefocusResult(sigma=truth, confidence=np.ones_like(truth), sigma_max=result.sigma_max).colorize()
    est_view = result.colorize()
    write_atomic(names["input"], encode_image(blurred, ".png"), force=args.force)
    write_atomic(names["truth"], encode_image(truth_view, ".png"), force=args.force)
    write_atomic(names["estimate"], encode_image(est_view, ".png"), force=args.force)
    write_atomic(names["side_by_side"], encode_image(_side_by_side(blurred, truth_view, est_view), ".png"),
                 force=args.force)
    lum = sharp.astype(np.float32).mean(axis=2) / 255.0
    tex = textured_mask(lum)
    near = boundary_mask(truth)
    all_err = map_errors(result.sigma, truth)
    far_err = map_errors(result.sigma, truth, tex & ~near)
    near_err = map_errors(result.sigma, truth, tex & near)
    print(f"demo scene {blurred.shape[1]}x{blurred.shape[0]}, true sigma 0 to {truth.max():.1f} px; "
          f"backend {est.backend}, {result.timings['total'] * 1000:.0f} ms")
    print(f"mean absolute error {all_err['mae']:.3f} px (RMSE {all_err['rmse']:.3f}, "
          f"Spearman {all_err['spearman']:.3f}, {100 * all_err['within_0_5']:.1f}% within 0.5 px)")
    print(f"textured pixels away from focus boundaries: MAE {far_err['mae']:.3f} px; "
          f"within 8 px of a boundary: MAE {near_err['mae']:.3f} px")
    print(f"pictures in {out_dir}: {', '.join(p.name for p in names.values())}")
    return 0


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def _cmd_video(args) -> int:
    """Defocus maps of a video, written as a video (the map, or input and map side by side)."""
    import collections
    import os
    import time

    import cv2

    from fastdefocus.io.video import video_frames

    src, out = Path(args.input), Path(args.output)
    fourcc = _FOURCC.get(out.suffix.lower())
    if fourcc is None:
        raise ValueError(f"output {out} must end in one of {', '.join(sorted(_FOURCC))}, got {out.suffix!r}")
    if not src.exists():
        raise FileNotFoundError(f"video not found: {src}")
    if _refuse_overwrite([out], args.force):
        return 1
    if out.resolve() == src.resolve():
        raise ValueError(f"output {out} is the input video")
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    cap.release()
    fps = fps if fps and fps > 0 else 25.0
    est = estimator_from_args(args)
    frames_in = collections.deque()  # frames whose results are still to come (bounded by the stream)

    def frames():  # runs in the stream's reader thread: it counts what it read itself
        for read, frame in enumerate(video_frames(src)):
            if args.max_frames and read >= args.max_frames:
                return
            frames_in.append(frame)
            yield frame

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")  # the suffix picks the container
    writer = None
    done = 0
    t0 = time.perf_counter()
    try:
        for result in est.stream(frames(), smoothing=args.smoothing):
            frame = frames_in.popleft()
            color = result.colorize()
            picture = _side_by_side(_as_rgb8(frame), color) if args.side_by_side else color
            if writer is None:
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps,
                                         (picture.shape[1], picture.shape[0]))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {out.suffix} video ({fourcc}) here")
            writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            done += 1
            if not args.quiet:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                of = f"/{min(total, args.max_frames or total)}" if total else ""
                sys.stderr.write(f"\rframe {done}{of}  {rate:6.1f} frames/s  [{est.device}, {est.backend}]")
                sys.stderr.flush()
        if writer is None:
            raise ValueError(f"video {src} gave no frames")
        writer.release()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.release()
        if tmp.exists():
            tmp.unlink()
    if not args.quiet:
        sys.stderr.write("\n")
    elapsed = time.perf_counter() - t0
    print(f"{done} frames -> {out} in {elapsed:.1f} s ({done / elapsed:.1f} frames/s, "
          f"{est.device}, backend {est.backend})")
    return 0


def _add_estimator_options(p) -> None:
    add_estimator_arguments(p)
    add_force_argument(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastdefocus", description="Per-pixel defocus (blur sigma) maps.")
    sub = parser.add_subparsers(dest="command", required=True)

    from fastdefocus.train.training import TrainConfig  # a dataclass: torch is imported only when training runs
    train_defaults = TrainConfig()
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
    p.add_argument("--epochs", type=int, default=train_defaults.epochs)
    p.add_argument("--batch-size", type=int, default=train_defaults.batch_size)
    p.add_argument("--lr", type=float, default=train_defaults.lr)
    p.add_argument("--width", type=float, default=train_defaults.width_mult, help="MobileNetV2 width multiplier")
    p.add_argument("--seed", type=int, default=train_defaults.seed)
    p.add_argument("--workers", type=int, default=2, help="processes generating patches")
    p.add_argument("--threads", type=int, default=train_defaults.threads, help="torch CPU threads (0: all cores)")
    p.add_argument("--init", default=None, help="fine-tune from these .safetensors weights instead of a "
                                                "random initialisation")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("estimate", help="defocus maps of images",
                       description="For each image write <name>_sigma.tiff (float32 sigma in px; or .npy), "
                                   f"<name>_sigma16.png (uint16, value = round({SIGMA_PNG_SCALE} x sigma px)), "
                                   "<name>_sigma_color.png and <name>_side_by_side.png into the output folder.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--format", choices=["tiff", "npy"], default="tiff", help="float map format")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_estimate)

    p = sub.add_parser("demo", help="estimate a built-in synthetic scene with known defocus and print the error")
    p.add_argument("-o", "--output", default="fastdefocus-demo", help="folder for the pictures")
    p.add_argument("--seed", type=int, default=0)
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("video", help="defocus map of every frame of a video, written as a video",
                       description="Estimate every frame of IN (frames are decoded in a reader thread while "
                                   "the previous ones are estimated; on a GPU, upload, work and download overlap) "
                                   "and write the colour map, or input and map side by side, to OUT "
                                   "(.mp4 / .m4v / .mov: mp4v; .avi / .mkv: MJPG), at the input's frame rate. "
                                   "The file appears only when complete.")
    p.add_argument("input", help="input video")
    p.add_argument("-o", "--output", required=True, help="output video file")
    p.add_argument("--side-by-side", action="store_true", help="input and map side by side")
    p.add_argument("--smoothing", type=float, default=0.0,
                   help="temporal smoothing of the map in [0, 1) (default 0: off)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_estimator_options(p)
    p.set_defaults(func=_cmd_video)

    add_application_commands(sub)
    add_eval_commands(sub)
    add_batch_commands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # outputs are written atomically: nothing half-written is left
        parser.exit(130, f"fastdefocus {args.command}: interrupted\n")
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as e:  # ModelFileError too
        parser.exit(2, f"fastdefocus {args.command}: error: {str(e) or type(e).__name__}\n")


if __name__ == "__main__":
    sys.exit(main())
