"""Quality of the defocus maps against exact truth.

    python benchmarks/quality.py [--syndof DIR] [--scenes DIR] [--json OUT.json] [estimator options]

- SYNDOF (exact per-pixel Gaussian sigma; blur_map PNG value / 10 = sigma px):
  mean absolute error, RMSE, share within 0.5 px, Spearman rank correlation.
- Layered scenes: each sharp photo of --scenes (default BSDS500 val, never used in
  training), downscaled by 2 with area averaging as the training sources were, blurred
  with a seeded sigma map of depth layers with hard edges over a smooth ramp. Errors on
  textured pixels, separately far from and within 8 px of focus boundaries.

Data folders default to $FASTDEFOCUS_DATA (or ../shared/data); a missing folder is
reported and skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import fastdefocus
from fastdefocus.evaluation import boundary_mask, map_errors, textured_mask
from fastdefocus.scenes import blur_by_map, layered_sigma_map


def default_data() -> Path:
    env = os.environ.get("FASTDEFOCUS_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def syndof(est, folder: Path) -> dict:
    images = sorted((folder / "image").glob("*.png"))
    rows = []
    for path in images:
        truth_raw = cv2.imread(str(folder / "blur_map" / path.name), cv2.IMREAD_UNCHANGED)
        if truth_raw is None:
            continue
        truth = truth_raw[..., 0].astype(np.float32) / 10.0 if truth_raw.ndim == 3 else truth_raw / 10.0
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        result = est.estimate(rgb)
        rows.append({"image": path.name, **map_errors(result.sigma, truth)})
    return summarise(rows)


def scenes(est, folder: Path, limit: int, seed: int) -> dict:
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:limit]
    rows = []
    for i, path in enumerate(photos):
        bgr = cv2.imread(str(path))
        h, w = bgr.shape[:2]
        sharp = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w // 2, h // 2),
                           interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        truth = layered_sigma_map(sharp.shape[0], sharp.shape[1], np.random.default_rng([seed, i]))
        blurred = np.clip(blur_by_map(sharp, truth) * 255 + 0.5, 0, 255).astype(np.uint8)
        result = est.estimate(blurred)
        lum = sharp @ np.array([0.299, 0.587, 0.114], np.float32)
        tex = textured_mask(lum)
        near = boundary_mask(truth)
        rows.append({"image": path.name,
                     "textured": map_errors(result.sigma, truth, tex),
                     "far": map_errors(result.sigma, truth, tex & ~near),
                     "near_boundary": map_errors(result.sigma, truth, tex & near),
                     "all": map_errors(result.sigma, truth)})
    out = {"images": len(rows)}
    for key in ("textured", "far", "near_boundary", "all"):
        out[key] = summarise([r[key] for r in rows if r[key].get("pixels")])
    return out


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    return {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


def main(argv=None) -> int:
    data = default_data()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--syndof", type=Path, default=data / "eval" / "syndof")
    ap.add_argument("--scenes", type=Path, default=data / "train" / "bsds500" / "val")
    ap.add_argument("--limit", type=int, default=100, help="photos used for layered scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--radius", type=float, default=None)
    ap.add_argument("--eps", type=float, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    options = {k: getattr(args, k) for k in ("stride", "radius", "eps", "iterations", "weights")
               if getattr(args, k) is not None}
    est = fastdefocus.DefocusEstimator(**options)
    report = {"estimator": repr(est), "options": options}
    t0 = time.time()
    if args.syndof.is_dir():
        report["syndof"] = syndof(est, args.syndof)
    else:
        print(f"SYNDOF folder missing: {args.syndof} (set FASTDEFOCUS_DATA or --syndof); skipped", file=sys.stderr)
    if args.scenes.is_dir():
        report["scenes"] = scenes(est, args.scenes, args.limit, args.seed)
    else:
        print(f"scene photos missing: {args.scenes} (--scenes); skipped", file=sys.stderr)
    report["seconds"] = round(time.time() - t0, 1)
    print(f"# Quality ({est!r})\n")
    if "syndof" in report:
        s = report["syndof"]
        print(f"SYNDOF ({s['n']} images): MAE {s['mae']:.3f} px, RMSE {s['rmse']:.3f} px, "
              f"within 0.5 px {100 * s['within_0_5']:.1f}%, Spearman {s['spearman']:.3f}\n")
    if "scenes" in report:
        s = report["scenes"]
        print(f"Layered scenes ({s['images']} photos of {args.scenes.name}, downscaled by 2):\n")
        print("| pixels | MAE px | RMSE px | bias px | within 0.5 px | Spearman |\n|---|---|---|---|---|---|")
        for key in ("textured", "far", "near_boundary", "all"):
            r = s[key]
            print(f"| {key} | {r['mae']:.3f} | {r['rmse']:.3f} | {r['bias']:+.3f} | {100 * r['within_0_5']:.1f}% | "
                  f"{r['spearman']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
