"""The quality benchmark and the full report: fastdefocus and its peers on the shared data.

Sections (each skipped, with a message saying what is missing, when its data is absent):

- ``syndof``: exact sigma maps (``eval/syndof``; blur_map PNG value / 10 = sigma px):
  MAE, RMSE, bias, share within 0.5 px, Spearman; for us and for the official method's
  structure (its map before the [0, 1] rescaling, in px).
- ``scenes``: every sharp photo of a folder (default BSDS500 val, never used in training),
  downscaled by 2 with area averaging as the training sources were, blurred with a seeded
  sigma map of depth layers with hard edges over a smooth ramp. Errors on textured pixels,
  separately far from and within 8 px of depth edges.
- ``dbd``: defocus blur detection masks (``eval/dbd/<set>/images`` and
  ``masks_white_in_focus``, white = in focus, threshold 128): F-beta max, adaptive F-beta,
  MAE at 320 x 320 (:mod:`fastdefocus.metrics.defocus`). Our score is the fixed logistic
  :func:`~fastdefocus.metrics.defocus.in_focus_score` of sigma; peers: the official structure
  (1 - its [0, 1] map) and HiFST (:mod:`fastdefocus.eval.peers`).
  Any folder of image / mask pairs works (:func:`dbd_pairs`); the LBP sharpness metric of Yi and
  Eramian (:func:`fastdefocus.eval.realphotos.lbp_score`) is a peer too.
- ``fusion``: multi-focus pairs (``eval/mfif``): Q^AB/F, Q_MI, Q_CB of fastdefocus.fuse, GFF
  and a Laplacian-energy decision (:mod:`fastdefocus.eval.fusion`).
- ``sharp``, ``largeblur``, ``dbdgen`` (:mod:`fastdefocus.eval.realphotos`): sigma on sharp photos
  as they are and blurred by 0.5 px; on photos blurred by Gaussians of 8 and 12 px and discs of
  radius 16 and 24 px; and the ``dbd`` protocol on a generated DBD-like set with exact masks.
- ``temporal`` (:mod:`fastdefocus.eval.temporal`): video maps over time: flicker of the real clips
  (``real/video``), per frame, with ``stable=True`` and with the EMA ``smoothing``, the frames to
  follow a cut, and the error of a generated sequence with known truth.

Every section returns a dict of numbers (written as JSON) and a Markdown block, and draws
its pictures into the report folder. :mod:`fastdefocus.eval.report` adds the speed benchmark
(:mod:`fastdefocus.eval.speed`) and writes ``report.md``, ``report.json`` and the PNGs.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fastdefocus.eval._common import default_data, emit_report, run_info
from fastdefocus.io import pictures
from fastdefocus.metrics.defocus import (DBD_SIZE, IN_FOCUS_SIGMA, IN_FOCUS_WIDTH, boundary_mask, dbd_scores, in_focus_score,
                         map_errors, summarise_dbd, textured_mask)
from fastdefocus.eval.peers import HIFST_INSTALL, hifst_available, hifst_score, official_structure
from fastdefocus.eval.realphotos import (LBP, LBP_THRESHOLD, LBP_WINDOW, dbd_generated, large_blur, large_blur_markdown,
                                         lbp_score, sharp_photos, sharp_photos_markdown)
from fastdefocus.scenes import blur_by_map, layered_sigma_map

SECTIONS = ("syndof", "scenes", "dbd", "fusion", "sharp", "largeblur", "dbdgen", "temporal")
OURS = "fastdefocus"
OFFICIAL = "official structure"
HIFST = "HiFST (blur-detector)"
#: Errors kept per image for the histograms (a seeded subsample).
HIST_SAMPLES = 20000


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def summarise(rows: list[dict]) -> dict:
    """Mean over images of each float metric of :func:`map_errors` rows."""
    rows = [r for r in rows if r.get("pixels")]
    if not rows:
        return {"n": 0}
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    return {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


def _sample(values: np.ndarray, rng: np.random.Generator, n: int = HIST_SAMPLES) -> np.ndarray:
    values = np.asarray(values, np.float32).ravel()
    return values if values.size <= n else rng.choice(values, n, replace=False)


def _fmt_errors(name: str, r: dict) -> str:
    if not r.get("n") and not r.get("pixels"):
        return f"| {name} | n/a | n/a | n/a | n/a | n/a |"
    return (f"| {name} | {r['mae']:.3f} | {r['rmse']:.3f} | {r['bias']:+.3f} | {100 * r['within_0_5']:.1f}% | "
            f"{r['spearman']:.3f} |")


ERRORS_HEADER = "| method | MAE px | RMSE px | bias px | within 0.5 px | Spearman |\n|---|---:|---:|---:|---:|---:|"


# ----------------------------------------------------------------------------- sections


def syndof(est, folder: Path, out_dir: Path | None = None, peers: bool = True, limit: int | None = None) -> dict:
    """Exact sigma maps. Returns our summary at the top level (n, mae, rmse, bias,
    within_0_5, spearman, as before), ``per_image`` rows and ``peers`` summaries."""
    images = sorted((folder / "image").glob("*.png"))[:limit]
    rows, peer_rows, errors = [], [], {OURS: [], OFFICIAL: []}
    rng = np.random.default_rng(0)
    example = None
    for path in images:
        truth_raw = cv2.imread(str(folder / "blur_map" / path.name), cv2.IMREAD_UNCHANGED)
        if truth_raw is None:
            print(f"SYNDOF: no blur_map for {path.name}; skipped", file=sys.stderr)
            continue
        truth = (truth_raw[..., 0] if truth_raw.ndim == 3 else truth_raw).astype(np.float32) / 10.0
        rgb = _read_rgb(path)
        t0 = time.perf_counter()
        result = est.estimate(rgb)
        seconds = time.perf_counter() - t0
        rows.append({"image": path.name, "seconds": seconds, **map_errors(result.sigma, truth)})
        errors[OURS].append(_sample(result.sigma - truth, rng))
        if peers:
            official_sigma, _ = official_structure(rgb, est)
            peer_rows.append({"image": path.name, **map_errors(official_sigma, truth)})
            errors[OFFICIAL].append(_sample(official_sigma - truth, rng))
        if example is None or path.name == images[len(images) // 2].name:
            example = (path.name, rgb, truth, result.sigma, official_sigma if peers else None)
    out = {**summarise(rows), "folder": str(folder), "per_image": rows}
    if peers:
        out["peers"] = {OFFICIAL: {**summarise(peer_rows), "note": "its map before the [0, 1] rescaling"}}
    if out_dir is not None and example is not None:
        name, rgb, truth, ours, official = example
        vmax = 7.0
        h = 220
        panels = [pictures.captioned(rgb, f"SYNDOF {name[:28]}", h),
                  pictures.captioned(pictures.sigma_picture(truth, vmax), "truth (sigma px)", h),
                  pictures.captioned(pictures.sigma_picture(ours, vmax), OURS, h)]
        if official is not None:
            panels.append(pictures.captioned(pictures.sigma_picture(official, vmax), f"{OFFICIAL} (px)", h))
        panels.append(pictures.captioned(pictures.colour_scale(vmax, h), "", h))
        pictures.write_png(out_dir / "syndof_example.png", pictures.side_by_side(panels))
        series = {k: np.concatenate(v) for k, v in errors.items() if v}
        pictures.write_png(out_dir / "syndof_error_histogram.png",
                           pictures.histogram_plot(series, -4, 4, 80, "SYNDOF: estimate - truth, all pixels",
                                                   "error (px)"))
        out["pictures"] = ["syndof_example.png", "syndof_error_histogram.png"]
    return out


def syndof_markdown(s: dict) -> str:
    lines = [f"### Exact sigma maps: SYNDOF ({s['n']} renderings)\n", ERRORS_HEADER, _fmt_errors(OURS, s)]
    for name, r in s.get("peers", {}).items():
        lines.append(_fmt_errors(f"{name} ({r.get('note', '')})", r))
    lines.append("\nMeans over images of per-image figures; every pixel counts.")
    return "\n".join(lines)


SCENE_KEYS = ("textured", "far", "near_boundary", "all")


def scenes(est, folder: Path, limit: int, seed: int, out_dir: Path | None = None, peers: bool = True) -> dict:
    """Layered synthetic scenes from sharp photos (see the module docstring). Returns our
    summary per pixel set (``textured``, ``far``, ``near_boundary``, ``all``) at the top
    level as before, and the same for the peers under ``peers``."""
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    methods = [OURS] + ([OFFICIAL] if peers else [])
    rows = {m: [] for m in methods}
    errors = {f"{m} {k}": [] for m in methods for k in ("far", "near edges")}
    rng = np.random.default_rng(seed)
    example = None
    for i, path in enumerate(photos):
        bgr = cv2.imread(str(path))
        if bgr is None:
            print(f"scenes: cannot read {path}; skipped", file=sys.stderr)
            continue
        h, w = bgr.shape[:2]
        sharp = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w // 2, h // 2),
                           interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        truth = layered_sigma_map(sharp.shape[0], sharp.shape[1], np.random.default_rng([seed, i]))
        blurred = np.clip(blur_by_map(sharp, truth) * 255 + 0.5, 0, 255).astype(np.uint8)
        lum = sharp @ np.array([0.299, 0.587, 0.114], np.float32)
        tex = textured_mask(lum)
        near = boundary_mask(truth)
        maps = {OURS: est.estimate(blurred).sigma}
        if peers:
            maps[OFFICIAL] = official_structure(blurred, est)[0]
        for m, sigma in maps.items():
            rows[m].append({"image": path.name,
                            "textured": map_errors(sigma, truth, tex),
                            "far": map_errors(sigma, truth, tex & ~near),
                            "near_boundary": map_errors(sigma, truth, tex & near),
                            "all": map_errors(sigma, truth)})
            errors[f"{m} far"].append(_sample((sigma - truth)[tex & ~near], rng, 2000))
            errors[f"{m} near edges"].append(_sample((sigma - truth)[tex & near], rng, 2000))
        if example is None:
            example = (path.name, blurred, truth, maps)

    def per_set(method_rows):
        return {key: summarise([r[key] for r in method_rows]) for key in SCENE_KEYS}

    out = {"images": len(rows[OURS]), "folder": str(folder), "seed": seed, **per_set(rows[OURS])}
    if peers:
        out["peers"] = {OFFICIAL: {**per_set(rows[OFFICIAL]), "note": "its map before the [0, 1] rescaling"}}
    if out_dir is not None and example is not None:
        name, blurred, truth, maps = example
        vmax = 7.0
        hh = 200
        panels = [pictures.captioned(blurred, f"scene from {name}", hh),
                  pictures.captioned(pictures.sigma_picture(truth, vmax), "truth (sigma px)", hh)]
        panels += [pictures.captioned(pictures.sigma_picture(s, vmax), m, hh) for m, s in maps.items()]
        panels.append(pictures.captioned(pictures.colour_scale(vmax, hh), "", hh))
        pictures.write_png(out_dir / "scenes_example.png", pictures.side_by_side(panels))
        series = {k: np.concatenate(v) for k, v in errors.items() if v}
        pictures.write_png(out_dir / "scenes_error_histogram.png",
                           pictures.histogram_plot(series, -4, 4, 80, "Layered scenes: estimate - truth, "
                                                   "textured pixels", "error (px)"))
        out["pictures"] = ["scenes_example.png", "scenes_error_histogram.png"]
    return out


def scenes_markdown(s: dict) -> str:
    lines = [f"### Synthetic layered scenes ({s['images']} photos of {Path(s['folder']).name}, downscaled by 2, "
             f"seed {s['seed']})\n",
             "| method | pixels | MAE px | RMSE px | bias px | within 0.5 px | Spearman |",
             "|---|---|---:|---:|---:|---:|---:|"]
    methods = {OURS: s, **s.get("peers", {})}
    for key in SCENE_KEYS:
        for name, r in methods.items():
            row = _fmt_errors(name, r[key])
            lines.append(row.replace(f"| {name} |", f"| {name} | {key} |", 1))
    lines.append("\n`far`: textured pixels more than 8 px from a depth edge; `near_boundary`: textured pixels "
                 "within 8 px of one (where refinement matters); the official structure's map is taken before "
                 "its [0, 1] rescaling.")
    return "\n".join(lines)


#: Sub-folders searched for the images and the masks (white = in focus) of a DBD folder, in order.
DBD_IMAGE_DIRS = ("images", "image", "imgs", "source")
DBD_MASK_DIRS = ("masks_white_in_focus", "masks", "mask", "gt", "ground_truth")
DBD_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def dbd_pairs(folder: Path, limit: int | None = None) -> list[tuple[Path, Path | None]]:
    """(image, mask) paths of a folder of defocus blur detection pairs, sorted by image name;
    ``mask`` is None where no mask has the image's stem.

    Layouts: ``<folder>/<images>/`` and ``<folder>/<masks>/`` (the first existing of
    :data:`DBD_IMAGE_DIRS` and :data:`DBD_MASK_DIRS`), masks named by the image's stem with any
    image suffix; or one flat folder of ``<stem>.<ext>`` images beside ``<stem>_mask.<ext>`` (or
    ``_gt``) masks. Masks are white = in focus (thresholded at 128).
    """
    folder = Path(folder)
    image_dir = next((folder / d for d in DBD_IMAGE_DIRS if (folder / d).is_dir()), None)
    if image_dir is not None:
        mask_dir = next((folder / d for d in DBD_MASK_DIRS if (folder / d).is_dir()), folder / DBD_MASK_DIRS[0])
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in DBD_SUFFIXES)[:limit]
        masks = {}
        if mask_dir.is_dir():
            for m in sorted(mask_dir.iterdir()):
                if m.suffix.lower() in DBD_SUFFIXES:
                    masks.setdefault(m.stem, m)
        return [(p, masks.get(p.stem)) for p in images]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in DBD_SUFFIXES)
    tags = ("_mask", "_gt")
    masks = {}
    for m in files:
        for tag in tags:
            if m.stem.endswith(tag):
                masks.setdefault(m.stem[:-len(tag)], m)
    images = [p for p in files if not p.stem.endswith(tags)]
    if not images:
        raise FileNotFoundError(f"no detection images in {folder} (expected a sub-folder "
                                f"{' or '.join(DBD_IMAGE_DIRS)} with masks in {' or '.join(DBD_MASK_DIRS)}, "
                                f"or <name>.<ext> images beside <name>_mask.<ext> masks)")
    return [(p, masks.get(p.stem)) for p in images[:limit]]


def score_dbd(est, items, peers: bool = True, out_dir: Path | None = None,
              picture: str = "dbd_examples.png") -> dict:
    """Score every method on ``items``, an iterable of (name, RGB uint8, mask image with white = in
    focus), with the detection metrics at 320 x 320. Returns ``size``, ``score`` (how each method's
    score is made), ``methods`` (one :func:`summarise_dbd` summary per method, with its seconds per
    image and per-image rows), ``hifst_missing`` when HiFST is not installed, and ``pictures``."""
    methods = [OURS] + ([OFFICIAL] if peers else [])
    hifst_missing = None
    if peers:
        if hifst_available():
            methods.append(HIFST)
        else:
            hifst_missing = f"HiFST skipped: blur-detector is not installed ({HIFST_INSTALL})"
            print(hifst_missing, file=sys.stderr)
        methods.append(LBP)
    rows = {m: [] for m in methods}
    seconds = {m: 0.0 for m in methods}
    gallery = []
    for name, rgb, mask in items:
        scores = {}
        t0 = time.perf_counter()
        scores[OURS] = in_focus_score(est.estimate(rgb).sigma)
        t1 = time.perf_counter()
        seconds[OURS] += t1 - t0
        if OFFICIAL in methods:
            scores[OFFICIAL] = 1.0 - official_structure(rgb, est)[1]
            t2 = time.perf_counter()
            seconds[OFFICIAL] += t2 - t1
        if HIFST in methods:
            t2 = time.perf_counter()
            scores[HIFST] = hifst_score(rgb)
            seconds[HIFST] += time.perf_counter() - t2
        if LBP in methods:
            t2 = time.perf_counter()
            scores[LBP] = lbp_score(rgb)
            seconds[LBP] += time.perf_counter() - t2
        for m, score in scores.items():
            r = dbd_scores(score, mask)
            rows[m].append({"image": name, **r})
        if len(gallery) < 6:
            gallery.append((name, rgb, mask, scores))
    out = {"size": DBD_SIZE,
           "score": f"fastdefocus: 1 / (1 + exp((sigma - {IN_FOCUS_SIGMA}) / {IN_FOCUS_WIDTH})); "
                    f"{OFFICIAL}: 1 - its [0, 1] map; HiFST: its map (divided by its maximum)"
                    + (f"; LBP: its single-scale sharpness (s = {LBP_WINDOW}, T_LBP = {LBP_THRESHOLD}) "
                       f"min-max rescaled per image" if LBP in methods else ""),
           "methods": {m: {**summarise_dbd(rows[m]), "seconds_per_image": seconds[m] / max(len(rows[m]), 1),
                           "per_image": [{k: v for k, v in r.items() if k != "fbeta_curve"} for r in rows[m]]}
                       for m in methods}}
    if hifst_missing:
        out["hifst_missing"] = hifst_missing
    if out_dir is not None and gallery:
        hh = 150
        lines = []
        for name, rgb, mask, scores in gallery:
            panels = [pictures.captioned(rgb, name, hh), pictures.captioned(mask, "truth (white = in focus)", hh)]
            panels += [pictures.captioned(pictures.score_picture(s), m, hh) for m, s in scores.items()]
            lines.append(pictures.side_by_side(panels))
        width = max(line.shape[1] for line in lines)
        grid = np.concatenate([np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255)
                               for line in lines], axis=0)
        pictures.write_png(Path(out_dir) / picture, grid)
        out["pictures"] = [picture]
    return out


def dbd(est, folder: Path, out_dir: Path | None = None, peers: bool = True, limit: int | None = None) -> dict:
    """Defocus blur detection masks of any folder of image / mask pairs (:func:`dbd_pairs`); one
    summary per method under ``methods`` (:func:`score_dbd`)."""
    pairs = dbd_pairs(folder, limit)

    def items():
        for path, mask_path in pairs:
            if mask_path is None:
                print(f"DBD: no mask for {path.name} in {folder}; skipped", file=sys.stderr)
                continue
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                print(f"DBD: cannot read the mask {mask_path}; skipped", file=sys.stderr)
                continue
            yield path.name, _read_rgb(path), mask

    return {"folder": str(folder), **score_dbd(est, items(), peers, out_dir, "dbd_examples.png")}


def dbd_markdown(d: dict) -> str:
    any_method = next(iter(d["methods"].values()))
    title = d.get("title") or Path(d["folder"]).name
    lines = [f"### Defocus blur detection: {title} ({any_method['n']} images, "
             f"{d['size']} x {d['size']})\n",
             "| method | F-beta max | F-beta adaptive | MAE | s / image |", "|---|---:|---:|---:|---:|"]
    for name, r in d["methods"].items():
        if not r.get("n"):
            continue
        secs = r["seconds_per_image"]
        secs = f"{secs:.2f}" if secs >= 0.01 else f"{secs:.3f}"  # the LBP metric takes milliseconds
        lines.append(f"| {name} | {r['fbeta_max']:.3f} | {r['fbeta_adaptive']:.3f} | {r['mae']:.3f} | {secs} |")
    generated = d["folder"] == "generated"
    lines.append(f"\nbeta^2 = 0.3; F-beta max: the maximum over the 256 thresholds of the mean F-beta curve; "
                 f"adaptive threshold: min(2 x mean score, 1); MAE of the score against the mask. Scores: "
                 f"{d['score']}." + (" Generated images: a sharp object (textured, flat or a gentle gradient) "
                 "in front of a background blurred by a Gaussian or a disc of sigma 1.5 to 6 px "
                 "(fastdefocus.eval.realphotos.generated_dbd)." if generated else
                 f" Published on the full CUHK set (other code, other images): HiFST 0.803 / 0.223, "
                 f"the LBP method 0.917 / 0.154 (its full pipeline: three scales, matting and multi-scale inference; "
                 f"the LBP row here is its single-scale metric alone), the best deep detectors about 0.97 / 0.04 "
                 f"(F-beta max / MAE)."))
    if "hifst_missing" in d:
        lines.append(f"\n{d['hifst_missing']}")
    return "\n".join(lines)


def fusion(est, data: Path, pairs=None, out_dir: Path | None = None) -> dict:
    """Multi-focus fusion: :func:`fastdefocus.eval.fusion.compare` (its methods, metrics and table)."""
    from fastdefocus.apps import fuse
    from fastdefocus.eval import fusion as fusion_eval
    from fastdefocus.io.images import read_image
    pairs = list(pairs or fusion_eval.DEFAULT_PAIRS)
    out = fusion_eval.compare(est, data / "eval" / "mfif", pairs)
    out["pairs_used"] = pairs
    if out_dir is not None:
        shots = [read_image(p) for p in fusion_eval.find_pair(data / "eval" / "mfif" / pairs[0], pairs[0])]
        shots = [s[..., :3] if s.ndim == 3 and s.shape[2] == 4 else s for s in shots]
        fused, decision = fuse(shots, est)
        hh = 220
        panels = [pictures.captioned(shots[0], f"{pairs[0]} A", hh), pictures.captioned(shots[1], "B", hh),
                  pictures.captioned(pictures.score_picture(decision[0]), "weight of A", hh),
                  pictures.captioned(fused, "fastdefocus.fuse", hh)]
        pictures.write_png(out_dir / "fusion_example.png", pictures.side_by_side(panels))
        out["pictures"] = ["fusion_example.png"]
    return out


def fusion_markdown(f: dict) -> str:
    return (f"### Multi-focus fusion ({len(f['pairs_used'])} pairs: {', '.join(f['pairs_used'])})\n\n"
            + f["table"] + "\n\nSame metric code (fastdefocus.metrics.fusion) for every method; time per pair "
            "includes both defocus estimates for fastdefocus.fuse.")


def run_quality(args, est, out_dir: Path | None = None) -> dict:
    """Run the selected quality sections with the estimator ``est``; ``args`` holds the data folders
    and limits (:func:`fastdefocus.cli.eval.add_quality_arguments`). Returns the report dict (with
    ``markdown``)."""
    data = args.data if args.data is not None else default_data()
    report = {"info": run_info(est), "options": est.config.options(), "estimator": repr(est), "data": str(data)}
    blocks = []
    timings = {}
    sharp_folder = getattr(args, "sharp", None) or data / "train" / "bsds500" / "val"
    folders = {"syndof": args.syndof or data / "eval" / "syndof",
               "scenes": args.scenes or data / "train" / "bsds500" / "val",
               "dbd": args.dbd or data / "eval" / "dbd" / "cuhk320",
               "fusion": data / "eval" / "mfif",
               "sharp": sharp_folder,
               "largeblur": getattr(args, "largeblur", None) or sharp_folder,
               "dbdgen": None,  # generated: needs no data
               "temporal": getattr(args, "video", None) or data / "real" / "video"}
    for section in args.sections:
        folder = folders[section]
        if folder is not None and not folder.is_dir():
            msg = (f"{section}: data folder missing: {folder} (set FASTDEFOCUS_DATA, --data or "
                   f"--{section if section != 'fusion' else 'data'}); skipped")
            print(msg, file=sys.stderr)
            report.setdefault("skipped", []).append(msg)
            continue
        t0 = time.time()
        print(f"[{section}] ...", file=sys.stderr, flush=True)
        if section == "syndof":
            report["syndof"] = syndof(est, folder, out_dir, args.peers, args.syndof_limit)
            blocks.append(syndof_markdown(report["syndof"]))
        elif section == "scenes":
            report["scenes"] = scenes(est, folder, args.limit, args.seed, out_dir, args.peers)
            blocks.append(scenes_markdown(report["scenes"]))
        elif section == "dbd":
            try:
                report["dbd"] = dbd(est, folder, out_dir, args.peers, args.dbd_limit)
                blocks.append(dbd_markdown(report["dbd"]))
            except FileNotFoundError as e:
                print(f"dbd: {e}; skipped", file=sys.stderr)
                report.setdefault("skipped", []).append(f"dbd: {e}")
        elif section == "dbdgen":
            report["dbdgen"] = dbd_generated(est, getattr(args, "dbdgen_n", 100), getattr(args, "seed", 0),
                                             out_dir, args.peers)
            blocks.append(dbd_markdown(report["dbdgen"]))
        elif section == "sharp":
            report["sharp"] = sharp_photos(est, folder, getattr(args, "sharp_limit", None), out_dir,
                                           downscale=getattr(args, "sharp_downscale", 2))
            blocks.append(sharp_photos_markdown(report["sharp"]))
        elif section == "temporal":
            from fastdefocus.eval.temporal import real_clips, run_sequence, temporal_markdown
            report["temporal"] = {"sequence": run_sequence(est, seed=getattr(args, "seed", 0)),
                                  "clips": real_clips(est, folder, frames=getattr(args, "video_frames", 20))}
            blocks.append(temporal_markdown(report["temporal"]["sequence"], report["temporal"]["clips"]))
        elif section == "largeblur":
            report["largeblur"] = large_blur(est, folder, limit=getattr(args, "largeblur_limit", None),
                                             out_dir=out_dir)
            blocks.append(large_blur_markdown(report["largeblur"]))
        else:
            try:
                report["fusion"] = fusion(est, data, args.pairs, out_dir)
                blocks.append(fusion_markdown(report["fusion"]))
            except (FileNotFoundError, RuntimeError) as e:
                print(f"fusion: {e}; skipped", file=sys.stderr)
                report.setdefault("skipped", []).append(f"fusion: {e}")
        timings[section] = round(time.time() - t0, 1)
        print(f"[{section}] {timings[section]} s", file=sys.stderr, flush=True)
    report["seconds"] = timings
    pics = [p for s in SECTIONS if s in report for p in report[s].get("pictures", [])]
    md = "\n\n".join(blocks)
    if pics and out_dir is not None:
        md += "\n\n### Pictures\n\n" + "\n".join(f"![{p}]({p})" for p in pics)
    report["markdown"] = md
    return report


def cmd_quality(args, est) -> int:
    """Quality sections: Markdown on stdout; with ``args.out`` also quality.md, quality.json and
    the pictures there."""
    report = run_quality(args, est, args.out)
    emit_report("Quality", "quality", report, report["markdown"], args.out, args.json)
    return 0
