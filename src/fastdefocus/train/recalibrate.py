"""Calibrate a model for real cameras: the lower envelope of its ideal-lens and camera-model fits.

    python -m fastdefocus.train.recalibrate [--weights WEIGHTS_DIR] [--cache DIR]
        [--ideal-cache PATCH_CACHE] [--patches N] [--seed S] [--docs MODEL.md] [--dry-run]

The classifier is trained on the ideal-lens generator, and its calibration (raw expected sigma
-> sigma, a quantile mapping) used to be fitted on that generator's validation patches. Real
photographs are not like those: their in-focus parts carry the camera's own softness
(demosaicing, noise, JPEG, blur in linear light), which the ideal calibration reads as defocus:
sharp photos read about 0.33 px. This command also fits the quantile mapping on validation
patches of the camera degradation model (:mod:`fastdefocus.train.camera`) with a Gaussian lens
(:data:`CALIBRATION_CAMERA`: the camera model's defaults, not fitted to any evaluation photo; a
Gaussian because the estimator's unit is the Gaussian sigma), and the model's calibration becomes
the lower envelope of the two mappings, min(ideal(raw), camera(raw)):

- below about 1 px (1.05 px for the shipped model, 0.9 px for the fast one) the camera fit is
  lower: there the raw reading is mostly the camera's own softness, which the camera model
  accounts for and the ideal lens does not;
- above it the camera fit is higher, up to the top of the range (above 6.4 px it is lower again,
  by at most 0.03 px), only because a quantile mapping stretches the estimates of a set it
  separates less well; on the camera model's own held-out patches the ideal fit is the more
  accurate there, and the envelope is more accurate than either fit alone.

Calibration set: ``--patches`` validation patches (seed ``--seed``; the same held-out photos and
dead-leaves sources as the training cache of that seed) generated into ``--cache`` once and
reused; fitted on the sources of even id, measured on those of odd id. ``--ideal-cache`` (the
``fastdefocus train`` cache the model was trained with) is measured too, and its tables become
the model card's held-out tables. The envelope, both fits (``ideal_knots``, ``camera_knots``;
a model recalibrated again keeps its ``ideal_knots``) and both sets' tables are written into the
model's ``blur_classifier.json`` (atomically); ``--docs`` rewrites the held-out section of a
model card from them. ``--dry-run`` writes nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from fastdefocus.train.camera import PSF_NAMES, CameraConfig

#: The calibration generator: the camera model's defaults with a Gaussian lens PSF.
CALIBRATION_CAMERA = CameraConfig(psf_probs=tuple(1.0 if n == "gaussian" else 0.0 for n in PSF_NAMES))
#: Where the calibration set of a seed is cached by default (outside the repository).
CACHE_ROOT = Path.home() / ".cache" / "fastdefocus"


CALIBRATION_KIND = "lower envelope of two quantile mappings of the raw expected sigma onto sigma, piecewise linear"
#: Model-card heading of the held-out section that ``--docs`` rewrites (to the end of the card).
HELDOUT_HEADING = "## Held-out results"


def default_cache(seed: int = 0) -> Path:
    """The default calibration-set folder of ``seed``."""
    return CACHE_ROOT / f"calibration_camera_gaussian_seed{seed}"


def lower_envelope(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Knots of min(a(x), b(x)) for two monotone piecewise-linear calibrations (N, 2): exact, with a
    knot at every knot of either and at every crossing; monotone because both are."""
    from fastdefocus.stages.classify import apply_calibration

    xs = np.unique(np.concatenate([a[:, 0], b[:, 0]]))
    da = apply_calibration(xs, a) - apply_calibration(xs, b)
    cross = []
    for i in np.flatnonzero(np.sign(da[:-1]) * np.sign(da[1:]) < 0):  # a - b changes sign inside (x_i, x_i+1)
        t = da[i] / (da[i] - da[i + 1])
        cross.append(xs[i] + t * (xs[i + 1] - xs[i]))
    xs = np.unique(np.concatenate([xs, cross]))
    return np.stack([xs, np.minimum(apply_calibration(xs, a), apply_calibration(xs, b))], axis=1)


def calibration_set(cache: Path, n: int = 30_000, seed: int = 0, workers: int = 2, log=print,
                    camera: CameraConfig = CALIBRATION_CAMERA) -> dict:
    """Generate (or reuse) the camera-model calibration set in ``cache``; returns its summary."""
    from fastdefocus.train.training import generate_dataset

    return generate_dataset(Path(cache), n_train=0, n_val=n, seed=seed, workers=workers, log=log, camera=camera)


def validation_probabilities(info, cache: Path, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(meta, probabilities) of a cache's validation patches through the model's ONNX graph,
    normalised as the estimator normalises patches."""
    from fastdefocus.backends.cpu import PatchClassifier
    from fastdefocus.train.training import normalize_u8

    cache = Path(cache)
    meta = np.load(cache / "val_meta.npy")
    patches = np.load(cache / "val_patches.npy", mmap_mode="r")
    classifier = PatchClassifier(info, device="cpu", backend="onnxruntime")
    out = [classifier.probabilities(normalize_u8(patches[i:i + batch], info.std_floor))
           for i in range(0, len(patches), batch)]
    return meta, np.concatenate(out)


def _kind_names(summary: dict) -> tuple:
    from fastdefocus.train.training import IDEAL_KINDS

    return tuple(summary.get("kinds") or IDEAL_KINDS)


def recalibrate(weights: Path, cache: Path | None = None, ideal_cache: Path | None = None, n: int = 30_000,
                seed: int = 0, workers: int = 2, write: bool = True, log=print,
                camera: CameraConfig = CALIBRATION_CAMERA, docs: Path | None = None) -> dict:
    """Fit the calibration of the model in ``weights`` on the camera-model calibration set
    (``camera``: :data:`CALIBRATION_CAMERA`, other configs for ablations) and measure the
    calibrations on its held-out half (and on ``ideal_cache``'s); with ``write``, also rewrite the
    held-out section of the model card ``docs`` (:func:`rewrite_card`). Returns
    ``{"knots", "calibration", "sets": {name: {"before" | "camera_fit" | "after": tables}}}``."""
    from fastdefocus.stages.classify import METADATA_NAME, expected_sigma_raw, load_model_info
    from fastdefocus.train.training import fit_calibration, heldout_metrics

    weights = Path(weights)
    cache = default_cache(seed) if cache is None else Path(cache)
    info = load_model_info(weights)
    summary = calibration_set(cache, n, seed, workers, log, camera)
    meta, probs = validation_probabilities(info, cache)
    fit = (meta["source"] % 2 == 0) & ~meta["flat"]
    camera_knots = fit_calibration(expected_sigma_raw(probs, info.levels)[fit], meta["sigma"][fit], info.levels)
    previous = info.metadata["calibration"]
    ideal_knots = np.asarray(previous.get("ideal_knots", previous["knots"]), np.float64)
    knots = lower_envelope(ideal_knots, camera_knots)
    sets = {"camera": (meta, probs, _kind_names(summary))}
    if ideal_cache is not None:
        ideal_summary = json.loads((Path(ideal_cache) / "summary.json").read_text())
        if ideal_summary.get("camera"):
            raise ValueError(f"--ideal-cache {ideal_cache} holds camera-model patches; give the cache of "
                             "fastdefocus train without --camera")
        m, p = validation_probabilities(info, ideal_cache)
        sets["ideal"] = (m, p, _kind_names(ideal_summary))
    report = {name: {"before": heldout_metrics(info.levels, m, p, info.calibration, kinds),
                     "camera_fit": heldout_metrics(info.levels, m, p, camera_knots, kinds),
                     "after": heldout_metrics(info.levels, m, p, knots, kinds)}
              for name, (m, p, kinds) in sets.items()}
    calibration = {
        "kind": CALIBRATION_KIND,
        "fitted_on": (f"{int(fit.sum())} textured patches of the even-id sources of {n} camera-model validation "
                      f"patches (seed {seed})"),
        "generator": {"camera": summary["camera"], "kinds": summary["kinds"], "n_val": summary["n_val"],
                      "seed": summary["seed"], "val_photos": summary["val_photos"]},
        "rule": "lower envelope of the training generator's and the camera model's quantile mappings",
        "knots": knots.tolist(),
        "ideal_knots": ideal_knots.tolist(),
        "camera_knots": camera_knots.tolist(),
    }
    unchanged = knots.shape == info.calibration.shape and np.allclose(knots, info.calibration)
    if write:
        meta_path = weights / METADATA_NAME
        model_meta = json.loads(meta_path.read_text())
        model_meta["calibration"] = calibration
        model_meta["metrics_heldout_camera"] = {
            "measured_on": "camera-model validation sources with odd id (never in training or calibration)",
            **report["camera"]["after"]}
        if "ideal" in report:
            model_meta["metrics_heldout"] = {
                "measured_on": "validation sources with odd id of the training generator (never in training "
                               "or calibration)", **report["ideal"]["after"]}
        elif not unchanged:  # not re-measured: say so rather than show old
            model_meta["metrics_heldout"]["measured_on"] = (  # figures as the new calibration's
                "validation sources with odd id of the training generator, measured under the calibration "
                "before this one (recalibrate --ideal-cache re-measures them)")
        if "metrics_heldout_int8" in model_meta and not unchanged:  # its MAEs depend on the calibration
            model_meta["metrics_heldout_int8"]["stale"] = ("measured under an earlier calibration: re-run "
                                                          "python -m fastdefocus.train.quantize")
        partial = meta_path.with_name(meta_path.name + ".tmp")
        partial.write_text(json.dumps(model_meta, indent=1) + "\n")
        os.replace(partial, meta_path)
        if docs is not None:
            rewrite_card(docs, model_meta)
    return {"knots": knots, "calibration": calibration, "sets": report}


def comparison_markdown(report: dict) -> str:
    """Held-out textured patches under the model's previous calibration, the camera-model fit
    alone and the envelope: all levels, and levels 0-2 (0-0.48 px). Within one level is the
    classifier's top level, the same under every calibration."""
    lines = ["| held-out set | calibration | within one level | MAE px | MAE px, levels 0-2 | bias px, levels 0-2 |",
             "|---|---|---:|---:|---:|---:|"]
    for name, both in report["sets"].items():
        for when, label in (("before", "previous"), ("camera_fit", "camera-model fit alone"),
                            ("after", "envelope (new)")):
            rows = both[when]["textured"]
            low = [r for r in rows if r["level"] != "all" and r["level"] <= 2]
            n = sum(r["n"] for r in low)
            mae = sum(r["mae"] * r["n"] for r in low) / n
            bias = sum(r["bias"] * r["n"] for r in low) / n
            lines.append(f"| {name} | {label} | {rows[-1]['within1']:.3f} | {rows[-1]['mae']:.3f} | {mae:.3f} | "
                         f"{bias:+.3f} |")
    return "\n".join(lines)


def rewrite_card(card: Path, metadata: dict) -> None:
    """Replace a model card's held-out section (from :data:`HELDOUT_HEADING` to the end) with the
    one :func:`fastdefocus.train.training.heldout_card` makes of ``metadata``."""
    from fastdefocus.train.training import heldout_card

    text = Path(card).read_text()
    at = text.find(HELDOUT_HEADING)
    if at < 0:
        raise ValueError(f"{card} has no '{HELDOUT_HEADING}' section to rewrite")
    partial = Path(card).with_name(Path(card).name + ".tmp")
    partial.write_text(text[:at] + heldout_card(metadata))
    os.replace(partial, card)


def main(argv=None) -> int:
    from fastdefocus.stages.classify import WEIGHTS_DIR

    ap = argparse.ArgumentParser(prog="python -m fastdefocus.train.recalibrate",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="model folder (default: the shipped one)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder of the calibration set, made once (default ~/.cache/fastdefocus/"
                         "calibration_camera_gaussian_seed<seed>)")
    ap.add_argument("--ideal-cache", type=Path, default=None,
                    help="a fastdefocus train cache (ideal lens) to measure too; its tables become the card's")
    ap.add_argument("--patches", type=int, default=30_000, help="patches of the calibration set")
    ap.add_argument("--seed", type=int, default=0, help="seed of the calibration set (the training seed)")
    ap.add_argument("--workers", type=int, default=2, help="processes generating the calibration set")
    ap.add_argument("--docs", type=Path, default=None, help="model card whose held-out section is rewritten")
    ap.add_argument("--dry-run", action="store_true", help="measure only; write nothing")
    args = ap.parse_args(argv)
    if args.ideal_cache is not None and not (args.ideal_cache / "val_patches.npy").exists():
        print(f"error: --ideal-cache {args.ideal_cache} has no val_patches.npy (make it with fastdefocus train "
              "--cache ...)", file=sys.stderr)
        return 2
    if args.patches < 1000:
        print(f"error: --patches must be at least 1000, got {args.patches}", file=sys.stderr)
        return 2
    report = recalibrate(args.weights, args.cache, args.ideal_cache, args.patches, args.seed, args.workers,
                         write=not args.dry_run, log=lambda m: print(m, file=sys.stderr, flush=True), docs=args.docs)
    print(comparison_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
