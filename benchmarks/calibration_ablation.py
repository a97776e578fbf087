"""Which calibration? The variants of docs/experiments/camera_calibration.md, each run through the
quality report with a copy of the shipped model whose calibration is swapped.

    python benchmarks/calibration_ablation.py VARIANT [--cal-seed S] [fastdefocus eval options]

    e.g. python benchmarks/calibration_ablation.py no-sharpen --no-peers --sections dbd dbdgen \\
             syndof scenes sharp largeblur --limit 100 --sharp-limit 100 --largeblur-limit 20 \\
             --dbdgen-n 60 -o /tmp/no-sharpen

VARIANT:

- ``ideal``: the training generator's fit alone (the calibration shipped before the camera model);
- ``shipped``: the shipped calibration (the same as ``gaussian``);
- NAME or NAME:alone, NAME one of :data:`VARIANTS`: the camera model's calibration set with one
  change from :data:`fastdefocus.train.recalibrate.CALIBRATION_CAMERA` (``gaussian``: none), fitted
  by ``python -m fastdefocus.train.recalibrate``'s code; as the shipped rule (the lower envelope
  with the training generator's fit) or, with ``:alone``, the camera-model fit alone.

``--cal-seed`` (default 0) seeds the calibration set. Each set (30,000 patches, about 1 minute on
2 cores) is cached under ``~/.cache/fastdefocus/calibration_ablation/``; needs the training
photos (``$FASTDEFOCUS_DATA``). Nothing of the package changes: the swapped model lives in a
temporary folder.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fastdefocus.cli.main import main as cli
from fastdefocus.stages.classify import METADATA_NAME, WEIGHTS_DIR
from fastdefocus.train.camera import PSF_NAMES, CameraConfig
from fastdefocus.train.recalibrate import CACHE_ROOT as CALIBRATION_CACHE_ROOT
from fastdefocus.train.recalibrate import CALIBRATION_CAMERA, recalibrate

#: One change each from the shipped calibration camera.
VARIANTS = {
    "gaussian": {},
    "psf-mix": {"psf_probs": CameraConfig().psf_probs},  # the camera model's default mix of PSF shapes
    "no-camera": {"camera_prob": 0.0},  # lens in linear light, ideal sensor: no mosaic, sharpening
    "no-sharpen": {"sharpen_prob": 0.0},
    "no-jpeg": {"jpeg_prob": 0.0},
    "no-downscale": {"downscale_prob": 0.0},
}
CACHE_ROOT = CALIBRATION_CACHE_ROOT / "calibration_ablation"


def _set_knots(weights: Path, key: str) -> None:
    path = weights / METADATA_NAME
    meta = json.loads(path.read_text())
    meta["calibration"]["knots"] = meta["calibration"][key]
    path.write_text(json.dumps(meta, indent=1) + "\n")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    variant = argv.pop(0)
    seed = 0
    if "--cal-seed" in argv:
        at = argv.index("--cal-seed")
        if at + 1 >= len(argv) or not argv[at + 1].isdigit():
            print("--cal-seed needs a non-negative integer", file=sys.stderr)
            return 2
        seed = int(argv[at + 1])
        del argv[at:at + 2]
    name, _, mode = variant.partition(":")
    if name not in ("ideal", "shipped", *VARIANTS) or mode not in ("", "alone") or (mode and name not in VARIANTS):
        print(f"unknown variant {variant!r}: ideal, shipped, or one of {', '.join(VARIANTS)} with an optional "
              f":alone", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights"
        shutil.copytree(WEIGHTS_DIR, weights)
        if name == "ideal":
            _set_knots(weights, "ideal_knots")
        elif name in VARIANTS:
            camera = dataclasses.replace(CALIBRATION_CAMERA, **VARIANTS[name])
            assert len(camera.psf_probs) == len(PSF_NAMES)
            recalibrate(weights, CACHE_ROOT / f"{name}_seed{seed}", seed=seed, camera=camera,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
            if mode == "alone":
                _set_knots(weights, "camera_knots")
        knots = np.asarray(json.loads((weights / METADATA_NAME).read_text())["calibration"]["knots"])
        x = np.array([0.2, 0.3, 0.4, 0.5, 0.8, 1.5, 3.0])
        print(f"{variant}: raw {x.tolist()} -> sigma {np.round(np.interp(x, knots[:, 0], knots[:, 1]), 3).tolist()}",
              file=sys.stderr)
        return cli(["eval", "--weights", str(weights), *argv])


if __name__ == "__main__":
    sys.exit(main())
