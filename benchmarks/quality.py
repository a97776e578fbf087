"""Quality of the defocus maps against exact truth and masks, with the peers in the same run.

    python benchmarks/quality.py [--data DIR] [--sections syndof scenes dbd fusion] [-o OUT_DIR]
                                 [--json OUT.json] [--limit 100] [--no-peers] [estimator options]

Same as ``fastdefocus eval``. Sections (each skipped, saying what is missing, without its data):

- syndof: SYNDOF exact per-pixel Gaussian sigma (blur_map PNG value / 10 = sigma px):
  mean absolute error, RMSE, share within 0.5 px, Spearman rank correlation; for us and
  for the official method's structure (its map in px, before its [0, 1] rescaling).
- scenes: each sharp photo of --scenes (default BSDS500 val, never used in training),
  downscaled by 2 with area averaging as the training sources were, blurred with a seeded
  sigma map of depth layers with hard edges over a smooth ramp. Errors on textured pixels,
  separately far from and within 8 px of focus boundaries.
- dbd: detection masks (eval/dbd/cuhk320, white = in focus): F-beta max, adaptive F-beta,
  MAE at 320 x 320; us (fixed logistic of sigma), the official structure and HiFST
  (`pip install scikit-image && pip install --no-deps blur-detector`, or --install-peers).
- fusion: the multi-focus pairs through benchmarks/fusion.py.

Data folders default to $FASTDEFOCUS_DATA (or ../shared/data). The logic lives in
fastdefocus.benchmarking; the full report (quality and speed) is benchmarks/report.py.
"""
import sys

from fastdefocus.benchmarking import quality_main

if __name__ == "__main__":
    sys.exit(quality_main())
