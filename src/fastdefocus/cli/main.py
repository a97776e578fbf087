"""Command line: ``fastdefocus <command>``."""
from __future__ import annotations

import argparse
import os
import sys
import time
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

    if args.camera and args.calibration == "camera":
        print("error: --calibration camera refits the calibration on the camera model, which --camera already "
              "trains on; leave --calibration out (the training generator's own fit) or give --calibration ideal",
              file=sys.stderr)
        return 2
    calibration = args.calibration or ("ideal" if args.camera else "camera")
    cache = Path(args.cache)
    generate_dataset(cache, n_train=args.train_patches, n_val=args.val_patches, seed=args.seed,
                     workers=args.workers, log=log, camera=args.camera)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width_mult=args.width,
                      seed=args.seed, threads=args.threads, init=args.init or "", mix_cache=args.mix_cache or "",
                      mix_share=args.mix_share, arch=args.arch, layers=args.layers,
                      stem_kernel=args.stem_kernel, head_channels=args.head_channels, teacher=args.teacher or "",
                      distill=args.distill)
    train(cache, Path(args.run), cfg, log=log)
    if args.export:
        docs = Path(args.docs) if args.docs else None
        finalize(cache, Path(args.run), Path(args.export), docs, log=log)
        if calibration == "camera":
            from fastdefocus.train.recalibrate import comparison_markdown, recalibrate
            report = recalibrate(Path(args.export), None, cache, seed=args.seed, workers=args.workers, log=log,
                                 docs=None if docs is None else docs / "MODEL.md")
            log(comparison_markdown(report))
    return 0




def _parse_layers(text: str) -> tuple:
    try:
        layers = tuple((int(c), int(st)) for c, st in (item.split("/") for item in text.split(",")))
    except ValueError:
        layers = ()
    if not layers or any(c < 1 or st not in (1, 2) for c, st in layers):
        raise argparse.ArgumentTypeError("expected a comma list of channels/stride (stride 1 or 2) such as "
                                         f"16/2,32/2,32/1,64/2,128/2, got {text!r}")
    return layers


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Progress:
    """Progress on stderr (no dependency): a bar redrawn in place with ``\\r`` when stderr is a
    terminal, else (a log file, a pipe, CI) one plain line per item."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 1
        self.terminal = _is_terminal(self.stream)

    def step(self, label: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.terminal:
            width = 30
            filled = int(width * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:40]:40s}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {label}\n")
        self.stream.flush()


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


#: The files ``estimate`` can write per image (``--outputs``), in order.
OUTPUT_KINDS = ("sigma", "sigma16", "color", "side")


def _parse_outputs(text: str) -> tuple:
    """``--outputs``: a comma list of OUTPUT_KINDS, or ``none``."""
    if text.strip().lower() == "none":
        return ()
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in OUTPUT_KINDS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown output {', '.join(bad) or repr(text)}: give a comma list of {', '.join(OUTPUT_KINDS)}, or none")
    return tuple(dict.fromkeys(names))


def _outputs_for(out_dir: Path, stem: str, fmt: str, kinds=OUTPUT_KINDS) -> dict:
    names = {"sigma": f"{stem}_sigma.{fmt}", "sigma16": f"{stem}_sigma16.png",
             "color": f"{stem}_sigma_color.png", "side": f"{stem}_side_by_side.png"}
    return {k: out_dir / names[k] for k in kinds}


def _encode_result(outputs: dict, image, result) -> dict:
    """The bytes of each requested file (path -> bytes): the float map, the 16-bit PNG, and the
    colour pictures with a colour bar of the sigma scale in px."""
    import io

    import numpy as np
    from fastdefocus.io.images import encode_image
    from fastdefocus.io.pictures import with_colour_scale
    files = {}
    if "sigma" in outputs:
        if outputs["sigma"].suffix == ".npy":
            buf = io.BytesIO()
            np.save(buf, result.sigma)
            files[outputs["sigma"]] = buf.getvalue()
        else:
            files[outputs["sigma"]] = encode_image(result.sigma, ".tiff")
    if "sigma16" in outputs:
        files[outputs["sigma16"]] = encode_image(to_png16(result.sigma), ".png")
    if "color" in outputs or "side" in outputs:
        color = result.colorize()
        if "color" in outputs:
            files[outputs["color"]] = encode_image(with_colour_scale(color, result.scale), ".png")
        if "side" in outputs:
            side = _side_by_side(_as_rgb8(image), color)
            files[outputs["side"]] = encode_image(with_colour_scale(side, result.scale), ".png")
    return files


def _summary_columns(video: bool = False) -> tuple:
    from fastdefocus.result import SUMMARY_KEYS
    return ("path",) + (("frame",) if video else ()) + SUMMARY_KEYS + ("ms", "error")


def _error(message) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _cmd_estimate(args) -> int:
    import cv2
    from fastdefocus.io.images import check_output, check_output_folder, read_image, write_files
    from fastdefocus.io.tables import TABLE_EXTENSIONS, write_table
    kinds = args.outputs
    if kinds and args.output is None:
        return _error(f"-o/--output (the output folder) is needed to write {','.join(kinds)} "
                      "(or pass --outputs none with --summary)")
    if not kinds and args.summary is None:
        return _error("nothing to write: --outputs none needs --summary FILE.csv or FILE.json")
    out_dir = Path(args.output) if args.output is not None else None
    fmt = "npy" if args.format == "npy" else "tiff"
    stems = [Path(name).stem for name in args.images]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes and kinds:
        return _error(f"several inputs would write the same outputs ({', '.join(clashes)}): "
                      "give them different names or run them into different folders")
    # every output is checked before any work: the folder, the files' overwrite rule, the summary
    try:
        if out_dir is not None:
            check_output_folder(out_dir)
        if args.summary is not None:
            check_output(args.summary, args.force, extensions=TABLE_EXTENSIONS, what="summary")
    except (OSError, ValueError) as e:
        return _error(e)
    plan = []
    for name in args.images:
        outputs = _outputs_for(out_dir, Path(name).stem, fmt, kinds) if kinds else {}
        if _refuse_overwrite(outputs.values(), args.force):
            return 2
        plan.append((name, outputs))
    est = estimator_from_args(args)
    if not args.quiet:
        print(f"backend {est.backend}, stride {est.stride}; 16-bit PNG maps store round({SIGMA_PNG_SCALE} * sigma "
              "px)", file=sys.stderr)
    progress = Progress(len(plan), enabled=not args.quiet)
    failures = 0
    rows = []
    for name, outputs in plan:
        t0 = time.perf_counter()
        row = {"path": name, "error": ""}
        try:
            image = read_image(name)
            result = est.estimate(image)
            if outputs:
                write_files(_encode_result(outputs, image, result), force=args.force)
            row.update(result.summary())
            if not args.quiet:
                where = f" -> {next(iter(outputs.values()))}" if outputs else ""
                print(f"{name}: median sigma {row['median_sigma']:.2f} px, sharpness {row['sharpness']:.3f}, "
                      f"{result.timings['total'] * 1000:.0f} ms{where}")
        except (OSError, ValueError, TypeError, MemoryError, ImportError, cv2.error) as e:
            failures += 1
            row["error"] = str(e) or type(e).__name__
            print(f"error: {name}: {row['error']}", file=sys.stderr)
        row["ms"] = (time.perf_counter() - t0) * 1000.0
        rows.append(row)
        progress.step(Path(name).name)
    if args.summary is not None:
        write_table(args.summary, rows, _summary_columns(), force=args.force)
        if not args.quiet:
            print(f"summary of {len(rows)} images -> {args.summary}", file=sys.stderr)
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


class _FrameProgress:
    """``frame N[/total]  rate frames/s`` on stderr: redrawn in place on a terminal, else one
    plain line at most every ``every`` seconds and one at the end (none under --quiet). The
    total is left out when the container does not know its length."""

    def __init__(self, total, enabled: bool, label: str, every: float = 1.0):
        self.total, self.enabled, self.label, self.every = total, enabled, label, every
        self.terminal = _is_terminal(sys.stderr)
        self.t0 = self.last = time.perf_counter()
        self.done = self.shown = 0

    def _text(self, now: float) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"frame {self.done}{of}  {self.done / max(now - self.t0, 1e-9):6.1f} frames/s  [{self.label}]"

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.terminal:
            sys.stderr.write("\r" + self._text(now))
        elif now - self.last >= self.every:
            sys.stderr.write(self._text(now) + "\n")
            self.last, self.shown = now, self.done
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            if self.terminal:
                sys.stderr.write("\n")
            elif self.shown != self.done:
                sys.stderr.write(self._text(time.perf_counter()) + "\n")
            sys.stderr.flush()


def _cmd_video(args) -> int:
    """Defocus maps of a video, written as a video (the map, or input and map side by side)."""
    from fastdefocus.io.images import check_output, write_files
    from fastdefocus.io.tables import TABLE_EXTENSIONS, encode_table
    from fastdefocus.io.video import VIDEO_EXTENSIONS, VideoWriter, video_info

    src, out = Path(args.input), Path(args.output)
    try:
        if not src.exists():
            raise FileNotFoundError(f"video not found: {src}")
        check_output(out, args.force, extensions=VIDEO_EXTENSIONS, what="output video")
        if out.resolve() == src.resolve():
            raise ValueError(f"output {out} is the input video")
        if args.summary is not None:
            check_output(args.summary, args.force, extensions=TABLE_EXTENSIONS, what="summary")
        if args.max_frames < 0:
            raise ValueError(f"--max-frames must be >= 0 (0: all), got {args.max_frames}")
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
    except (OSError, ValueError) as e:
        return _error(e)
    fps, total = video_info(src)
    if total is not None and args.max_frames:
        total = min(total, args.max_frames)
    est = estimator_from_args(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")  # the suffix picks the container
    writer = VideoWriter(tmp, fps)
    if writer.notice and not args.quiet:
        print(writer.notice, file=sys.stderr)
    progress = _FrameProgress(total, not args.quiet, f"{est.device}, {est.backend}")
    rows = []
    t0 = last = time.perf_counter()
    try:
        with writer:
            for index, (frame, result) in enumerate(est.stream(src, smoothing=args.smoothing, stable=args.stable,
                                                                max_frames=args.max_frames or None,
                                                                with_frames=True, workers=args.workers)):
                color = result.colorize()
                picture = _side_by_side(_as_rgb8(frame), color) if args.side_by_side else color
                writer.write(picture)
                now = time.perf_counter()
                if args.summary is not None:
                    rows.append({"path": str(src), "frame": index, **result.summary(), "ms": (now - last) * 1000.0,
                                 "error": ""})
                last = now
                progress.step()
        if progress.done == 0:
            raise ValueError(f"video {src} gave no frames")
        files = {}
        if args.summary is not None:
            files[Path(args.summary)] = encode_table(rows, _summary_columns(video=True), Path(args.summary).suffix.lower())
        write_files(files, force=args.force)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    progress.close()
    elapsed = time.perf_counter() - t0
    done = progress.done
    if not args.quiet:
        print(f"{done} frames -> {out} ({writer.codec}) in {elapsed:.1f} s ({done / elapsed:.1f} frames/s, "
              f"{est.device}, backend {est.backend})")
    return 0


def _add_estimator_options(p) -> None:
    add_estimator_arguments(p)
    add_force_argument(p)


def build_parser() -> argparse.ArgumentParser:
    from fastdefocus import __version__
    parser = argparse.ArgumentParser(prog="fastdefocus", description="Per-pixel defocus (blur sigma) maps.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    p.add_argument("--arch", choices=["MobileNetV2", "StridedCNN"], default=train_defaults.arch,
                   help="the network: the paper's MobileNetV2 (the default model) or StridedCNN (the fast model)")
    p.add_argument("--width", type=float, default=train_defaults.width_mult, help="MobileNetV2 width multiplier")
    p.add_argument("--layers", type=_parse_layers, default=train_defaults.layers, metavar="LIST",
                   help="StridedCNN: its convolutions as channels/stride, a comma list (default "
                        f"{','.join(f'{c}/{st}' for c, st in train_defaults.layers)})")
    p.add_argument("--stem-kernel", type=int, default=train_defaults.stem_kernel, help="StridedCNN: stem kernel size")
    p.add_argument("--head-channels", type=int, default=train_defaults.head_channels,
                   help="StridedCNN: channels of a 1x1 convolution before the pooling (0: none)")
    p.add_argument("--teacher", default=None, metavar="WEIGHTS_DIR",
                   help="distil from this model (e.g. src/fastdefocus/weights): its probabilities are soft targets")
    p.add_argument("--distill", type=float, default=train_defaults.distill,
                   help="share of the loss from the teacher's probabilities, in (0, 1] (with --teacher)")
    p.add_argument("--seed", type=int, default=train_defaults.seed)
    p.add_argument("--workers", type=int, default=2, help="processes generating patches")
    p.add_argument("--threads", type=int, default=train_defaults.threads, help="torch CPU threads (0: all cores)")
    p.add_argument("--init", default=None, help="fine-tune from these .safetensors weights instead of a "
                                                "random initialisation")
    p.add_argument("--mix-cache", default=None,
                   help="a second patch cache (e.g. one made with --camera) mixed into training at the same cost")
    p.add_argument("--mix-share", type=float, default=train_defaults.mix_share,
                   help="share of each epoch drawn from --mix-cache")
    p.add_argument("--calibration", choices=["camera", "ideal"], default=None,
                   help="calibration of the exported model: camera (the default, as shipped: the lower envelope of "
                        "the fits on the training generator and on the camera model, python -m "
                        "fastdefocus.train.recalibrate) or ideal (the training generator's fit alone; the default "
                        "with --camera, whose generator is the camera model)")
    p.add_argument("--camera", action="store_true",
                   help="generate with the camera degradation model (fastdefocus.train.camera: lens PSF shapes, "
                        "Bayer demosaicing, photon noise, sharpening, JPEG) instead of the ideal lens; use a "
                        "--cache of its own")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("estimate", help="defocus maps of images",
                       description="For each image write <name>_sigma.tiff (float32 sigma in px; or .npy), "
                                   f"<name>_sigma16.png (uint16, value = round({SIGMA_PNG_SCALE} x sigma px)), "
                                   "<name>_sigma_color.png and <name>_side_by_side.png (with a colour bar of the "
                                   "sigma scale in px) into the output folder (--outputs picks which), and with "
                                   "--summary one row of statistics per image. Phone photos are turned upright "
                                   "by their EXIF orientation; HEIC needs pip install 'fastdefocus[heic]'.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("-o", "--output", default=None, help="output folder (needed unless --outputs none)")
    p.add_argument("--format", choices=["tiff", "npy"], default="tiff", help="float map format")
    p.add_argument("--outputs", type=_parse_outputs, default=",".join(OUTPUT_KINDS), metavar="LIST",
                   help=f"files written per image, a comma list of {', '.join(OUTPUT_KINDS)} "
                        "(default all four), or none")
    p.add_argument("--summary", default=None, metavar="FILE",
                   help="also write one row per image to FILE.csv or FILE.json: path, height, width, median_sigma, "
                        "p10_sigma, p90_sigma, in_focus_fraction (share of pixels with sigma <= 1 px), sharpness, "
                        "ms, error (a failing image gives a row with its error; the others go on)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
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
                                   "(.mp4 / .m4v / .mov / .mkv: H.264 with pip install 'fastdefocus[video]', else "
                                   "mp4v or MJPG; .avi: MJPG), at the input's frame rate. "
                                   "The file appears only when complete.")
    p.add_argument("input", help="input video")
    p.add_argument("-o", "--output", required=True, help="output video file")
    p.add_argument("--side-by-side", action="store_true", help="input and map side by side")
    p.add_argument("--stable", action="store_true",
                   help="temporal filter of the map that follows the scene: flickers less, resets at cuts "
                        "(replaces --smoothing)")
    p.add_argument("--smoothing", type=float, default=0.0,
                   help="uniform temporal smoothing (EMA) of the map in [0, 1) (default 0: off; lags behind "
                        "motion and cuts: prefer --stable)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    p.add_argument("--workers", type=int, default=1,
                   help="frames estimated side by side on the CPU, each on a share of the threads: more frames "
                        "per second, more latency (default 1)")
    p.add_argument("--summary", default=None, metavar="FILE",
                   help="also write one row per frame to FILE.csv or FILE.json: the columns of estimate --summary "
                        "and frame")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
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
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError, ImportError) as e:  # ModelFileError too;
        # ImportError: a missing extra (MissingExtraError), whose message says what to install
        parser.exit(2, f"fastdefocus {args.command}: error: {str(e) or type(e).__name__}\n")


if __name__ == "__main__":
    sys.exit(main())
