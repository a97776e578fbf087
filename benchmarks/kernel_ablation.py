"""Does training on disc and mixed blur kernels help on real photos? (classifier issue)

    python benchmarks/kernel_ablation.py --cache CACHE --work DIR [--patches 240000] [--epochs 3]

From the training patch cache of ``fastdefocus train`` (``--cache``), two subsets of equal
size are drawn (seed 1): Gaussian-blurred patches only, and patches of every kernel in the
cache's proportions (Gaussian 0.6, disc 0.2, mixed 0.2). A classifier is trained on each
with the same settings and number of steps (``fastdefocus train`` with ``--epochs``), then
calibrated and measured as the shipped one is (held-out synthetic patches, by kernel), and
the estimator runs with each on the evaluation data: SYNDOF, the CUHK detection masks (real
photos), the multi-focus pairs (real photos) and the layered scenes. Prints a table and
writes ``DIR/kernel_ablation.json``. Takes about 30 minutes on 2 CPU cores at the defaults.

The budget is far below the shipped model's (20 epochs of 600,000 patches): the comparison
is between two short runs of equal cost, not of the shipped model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def make_subset(cache: Path, out: Path, name: str, n: int, seed: int = 1) -> Path:
    meta = np.load(cache / "train_meta.npy")
    patches = np.load(cache / "train_patches.npy", mmap_mode="r")
    pool = np.flatnonzero(meta["kind"] == 0) if name == "gaussian" else np.arange(len(meta))
    if len(pool) < n:
        raise SystemExit(f"the cache holds {len(pool)} {name} patches, fewer than --patches {n}")
    idx = np.sort(np.random.default_rng(seed).choice(pool, n, replace=False))
    d = out / f"cache_{name}"
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "train_patches.npy", np.asarray(patches[idx]))
    np.save(d / "train_meta.npy", meta[idx])
    for f in ("val_patches.npy", "val_meta.npy"):
        if not (d / f).exists():
            os.symlink((cache / f).resolve(), d / f)
    summary = json.loads((cache / "summary.json").read_text())
    summary.update(n_train=n, ablation=f"{name}: {n} patches of {cache} (seed {seed})")
    (d / "summary.json").write_text(json.dumps(summary, indent=1))
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="patch cache of fastdefocus train")
    ap.add_argument("--work", type=Path, required=True, help="folder for the subsets, runs and weights")
    ap.add_argument("--patches", type=int, default=240_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=40, help="layered scenes")
    args = ap.parse_args(argv)

    from fastdefocus.cli.eval import add_quality_arguments
    from fastdefocus.cli.options import estimator_from_args
    from fastdefocus.eval.quality import run_quality
    from fastdefocus.train.training import TrainConfig, finalize, train

    results = {}
    for name in ("gaussian", "all kernels"):
        key = name.split()[0]
        cache = make_subset(args.cache, args.work, key, args.patches)
        run, weights = args.work / f"run_{key}", args.work / f"weights_{key}"
        train(cache, run, TrainConfig(epochs=args.epochs, threads=args.threads))
        meta = finalize(cache, run, weights)
        qa = argparse.ArgumentParser()
        add_quality_arguments(qa)
        qargs = qa.parse_args(["--weights", str(weights), "--no-peers", "--limit", str(args.limit),
                               "--sections", "syndof", "dbd", "fusion", "scenes"])
        q = run_quality(qargs, estimator_from_args(qargs))
        held = meta["metrics_heldout"]
        results[name] = {
            "heldout_textured": {k: held["textured"][-1][k] for k in ("within1", "mae")},
            "heldout_by_kernel": {k: {m: v[m] for m in ("within1", "mae")} for k, v in held["per_kernel_textured"].items()},
            "syndof": {k: q["syndof"][k] for k in ("mae", "spearman")},
            "cuhk": {k: q["dbd"]["methods"]["fastdefocus"][k] for k in ("fbeta_max", "fbeta_adaptive", "mae")},
            "fusion_q_abf": q["fusion"]["summary"]["fastdefocus.fuse"]["q_abf"],
            "scenes": {k: q["scenes"][k]["mae"] for k in ("textured", "near_boundary")},
        }
    (args.work / "kernel_ablation.json").write_text(json.dumps(results, indent=1))
    print(f"\n{args.epochs} epochs of {args.patches} patches each\n")
    print("| trained on | held-out within 1 / MAE px | disc patches within 1 / MAE | SYNDOF MAE / Spearman "
          "| CUHK F-beta max / adaptive | fusion Q^AB/F | layered scenes textured / near boundary |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        d = r["heldout_by_kernel"]["disc"]
        print(f"| {name} | {r['heldout_textured']['within1']:.3f} / {r['heldout_textured']['mae']:.3f} "
              f"| {d['within1']:.3f} / {d['mae']:.3f} | {r['syndof']['mae']:.3f} / {r['syndof']['spearman']:.3f} "
              f"| {r['cuhk']['fbeta_max']:.3f} / {r['cuhk']['fbeta_adaptive']:.3f} | {r['fusion_q_abf']:.4f} "
              f"| {r['scenes']['textured']:.3f} / {r['scenes']['near_boundary']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
