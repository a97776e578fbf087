"""Which flat fill? The variants of docs/experiments/flat_fill_and_edges.md, each run through the
quality report with the NumPy pipeline (``fastdefocus.stages.pipeline.estimate_numpy``).

    python benchmarks/fill_ablation.py VARIANT [fastdefocus eval options]

    e.g. python benchmarks/fill_ablation.py box --sections dbd dbdgen scenes sharp --no-peers \\
             --limit 40 --dbdgen-n 60 --sharp-limit 40 --no-speed -o /tmp/box

VARIANT (all at the spatial sigma of ``--fill-sigma``, 64 px by default):

- ``shipped``: the flat fill as shipped (edge-aware, flat patches only);
- ``none``: no fill (the maps of ``--fill-sigma 0``);
- ``edge:R``: the shipped fill with range sigma R instead of FILL_SIGMA_R;
- ``box``: flat patches only, edge-blind Gaussian weights on the patch grid;
- ``cells``: no patch fill; after the splat every cell is blended with the Gaussian-weighted mean
  of the cells by its splat weight w, as w / (w + 1e-6);
- ``blend-box`` / ``blend-edge:T``: every patch blended with the (edge-blind / edge-aware) fill by
  clip(texture confidence / T, 0, 1) (T = 1 for blend-box), so textured patches move too;
- ``edges``: re-blur edge evidence (Zhuo and Sim, Pattern Recognition 2011) fused with the
  classifier's value before the shipped fill: at Canny edges with gradient > 0.05, sigma =
  1 / sqrt(R^2 - 1), R the gradient ratio of the image and the image blurred by 1 px; per patch
  the median over the edge pixels of its central 16 x 16, weight min(edges / 20, 1).

Swaps stages in this process only; nothing of the package changes.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

import fastdefocus.stages.fill as fill_mod
import fastdefocus.stages.pipeline as P
from fastdefocus import estimator as E
from fastdefocus._params import FILL_PRIOR
from fastdefocus.result import DefocusResult

STATE = {}


def _spy(name, fn, key):
    def wrapped(*a, **k):
        out = fn(*a, **k)
        STATE[key] = out
        return out
    setattr(P, name, wrapped)


def _texture_conf(flat_std):
    return np.clip((STATE["stats"][0] - 0.5 * flat_std) / (1.5 * flat_std), 0.0, 1.0)


def _gauss_mean(num, den, sigma_cells):
    g = dict(ksize=(0, 0), sigmaX=sigma_cells, borderType=cv2.BORDER_REFLECT_101)
    return cv2.GaussianBlur(np.asarray(num, np.float64), **g), cv2.GaussianBlur(np.asarray(den, np.float64), **g)


def _edge_sigma(image):
    img = np.asarray(image, np.float32)

    def grad(a):
        gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101) / 8
        gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101) / 8
        return np.hypot(gx, gy)

    g0, g1 = grad(img), grad(cv2.GaussianBlur(img, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT_101))
    edges = cv2.Canny(np.clip(img * 255, 0, 255).astype(np.uint8), 40, 100) > 0
    ratio = g0 / np.maximum(g1, 1e-6)
    ok = edges & (g0 > 0.05) & (ratio > 1.0001)
    return np.minimum(np.where(ok, 1.0 / np.sqrt(np.maximum(ratio * ratio - 1, 1e-8)), np.nan), 6.0), ok


def install(variant: str, sigma: float, flat_std: float):
    name, _, arg = variant.partition(":")
    real_fill, real_splat = fill_mod.fill_flat, P.splat
    _spy("patch_statistics", P.patch_statistics, "stats")
    _spy("confidence_from_probs", P.confidence_from_probs, "conf")
    _spy("pad_to", P.pad_to, "padded")  # the last pad before the splat is the padded source
    if name == "shipped":
        return
    if name == "edge":
        fill_mod.FILL_SIGMA_R = float(arg)
        return
    P.fill_flat = lambda values, weights, guide, stride, s: np.asarray(values, np.float32).copy()
    if name == "none":
        return

    def patch_fill(values, patch, stride, edge_aware):
        """(the patches' fill weights, the fill of every patch) at this grid."""
        conf = STATE["conf"].reshape(values.shape) * _texture_conf(flat_std)
        if edge_aware:
            guide = fill_mod.patch_means(STATE["padded"], values.shape, patch, stride)
            num, den = fill_mod.edge_aware_mean(conf * values, conf, guide, stride, sigma)
        else:
            num, den = _gauss_mean(conf * values, conf, sigma / stride)
        return conf, (num + FILL_PRIOR * values.astype(np.float64)) / (den + FILL_PRIOR)

    def splat(values, weights, patch, stride, **kw):
        values = np.asarray(values, np.float32)
        if name in ("box", "blend-box", "blend-edge"):
            conf, filled = patch_fill(values, patch, stride, name == "blend-edge")
            if name == "box":
                a = (conf > 0).astype(np.float64)
            else:
                a = np.clip(_texture_conf(flat_std) / (float(arg) if arg else 1.0), 0.0, 1.0)
            values = (a * values + (1 - a) * filled).astype(np.float32)
        elif name == "edges":
            sig, ok = _edge_sigma(STATE["padded"])
            ny, nx = values.shape
            ve, ce = np.zeros((ny, nx), np.float32), np.zeros((ny, nx))
            for i in range(ny):
                for j in range(nx):
                    win = np.s_[i * stride + 8:i * stride + patch - 8, j * stride + 8:j * stride + patch - 8]
                    n = ok[win].sum()
                    if n:
                        ve[i, j], ce[i, j] = np.median(sig[win][ok[win]]), min(n / 20.0, 1.0)
            conf = STATE["conf"].reshape(values.shape) * _texture_conf(flat_std)
            fused = np.where(ce > 0, (conf * values + ce * ve) / np.maximum(conf + ce, 1e-12), values)
            guide = fill_mod.patch_means(STATE["padded"], values.shape, patch, stride)
            values = real_fill(fused.astype(np.float32), np.maximum(conf, ce), guide, stride, sigma)
        cells, cell_weights = real_splat(values, weights, patch, stride, **kw)
        if name == "cells":
            num, den = _gauss_mean(cell_weights * cells, cell_weights, sigma / stride)
            filled = (num + 1e-5 * cells) / (den + 1e-5)
            a = cell_weights / (cell_weights + 1e-6)
            cells = (a * cells + (1 - a) * filled).astype(np.float32)
        return cells, cell_weights

    if name not in ("box", "cells", "blend-box", "blend-edge", "edges"):
        raise SystemExit(f"unknown variant {variant!r}")
    P.splat = splat


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit(__doc__)
    variant = argv.pop(0)
    sigma = float(argv[argv.index("--fill-sigma") + 1]) if "--fill-sigma" in argv else 64.0
    install(variant, sigma, 0.02)

    def estimate_cpu(self, image, channel_order, cache=None):
        sigma_map, conf, timings = P.estimate_numpy(self, image, channel_order=channel_order)
        return DefocusResult(sigma=sigma_map, confidence=conf, sigma_max=self.sigma_max, timings=timings)

    E.DefocusEstimator._estimate_cpu = estimate_cpu
    from fastdefocus.cli import main as cli
    return cli(["eval", *argv])


if __name__ == "__main__":
    sys.exit(main())
