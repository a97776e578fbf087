"""DefocusResult: a defocus map, its confidence, and the views derived from them."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fastdefocus._params import IN_FOCUS_SIGMA, VIEW_SIGMA_MAX

#: The keys of :meth:`DefocusResult.summary`, in order: the per-image columns of
#: ``fastdefocus estimate --summary`` (which adds ``path``, ``ms`` and ``error``).
SUMMARY_KEYS = ("height", "width", "median_sigma", "p10_sigma", "p90_sigma", "in_focus_fraction", "sharpness")


@dataclass
class DefocusResult:
    """A defocus map and its confidence.

    Attributes
    ----------
    sigma : float32 (H, W)
        Gaussian blur sigma in pixels of the input image (0 = in focus).
    confidence : float32 (H, W)
        How much to trust ``sigma`` at each pixel, in [0, 1] (low on flat, textureless areas).
    sigma_max : float
        The largest sigma the estimator can report: the model's top level's bin edge (6.49 px),
        doubled by each coarse level (26 px with the default two).
    timings : dict
        Seconds spent in each stage.
    counts : dict
        ``patches``, ``classified`` and ``coarse_levels`` of the estimate (CPU).
    """
    sigma: np.ndarray
    confidence: np.ndarray
    sigma_max: float
    timings: dict = field(default_factory=dict)
    #: What the estimate did: ``patches`` (of the grid), ``classified`` (the rest were gated as
    #: flat), ``coarse_levels`` (that ran); empty where the pipeline does not say.
    counts: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.sigma.shape

    @property
    def scale(self) -> float:
        """The fixed scale (px) of the views: ``sigma_max``, at most 16 px
        (:data:`fastdefocus._params.VIEW_SIGMA_MAX`), so maps of different images compare."""
        return float(min(self.sigma_max, VIEW_SIGMA_MAX))

    def normalized(self, vmax: float | None = None) -> np.ndarray:
        """sigma / vmax clipped to [0, 1] (float32); ``vmax`` defaults to :attr:`scale`,
        a fixed scale, so maps of different images stay comparable."""
        vmax = self.scale if vmax is None else float(vmax)
        if not vmax > 0:
            raise ValueError(f"vmax must be > 0, got {vmax}")
        return np.clip(self.sigma / vmax, 0.0, 1.0).astype(np.float32)

    def in_focus(self, threshold: float = IN_FOCUS_SIGMA) -> np.ndarray:
        """Boolean mask of pixels whose sigma is at most ``threshold`` px."""
        return self.sigma <= float(threshold)

    def colorize(self, vmax: float | None = None, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
        """RGB uint8 picture of the map (dark = sharp, bright = blurred) on a fixed scale."""
        gray = (self.normalized(vmax) * 255 + 0.5).astype(np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(gray, colormap), cv2.COLOR_BGR2RGB)

    def sharpness(self) -> float:
        """One score for the whole image in (0, 1]: 1 / (1 + s10), where s10 is the
        confidence-weighted 10th percentile of sigma (how sharp the sharpest tenth is).
        1.0 means perfectly in focus somewhere; 0.5 means its sharpest part has sigma 1 px."""
        weights = self.confidence.ravel().astype(np.float64)
        values = self.sigma.ravel().astype(np.float64)
        if weights.sum() <= 1e-9:
            weights = np.ones_like(weights)
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(weights[order])
        s10 = values[order][np.searchsorted(cum, 0.1 * cum[-1])]
        return float(1.0 / (1.0 + max(s10, 0.0)))

    def summary(self) -> dict:
        """Statistics of the map, one row of a table: ``height``, ``width`` (px), ``median_sigma``,
        ``p10_sigma``, ``p90_sigma`` (percentiles of sigma in px, NumPy's linear interpolation),
        ``in_focus_fraction`` (share of pixels with sigma <= 1 px, :data:`IN_FOCUS_SIGMA`) and
        ``sharpness`` (:meth:`sharpness`); plain Python numbers, in the order of
        :data:`SUMMARY_KEYS`. The command line's ``--summary`` files and the batch job's rows
        are made of these."""
        sigma = self.sigma
        p10, p90 = np.percentile(sigma, [10, 90])
        return {"height": int(sigma.shape[0]), "width": int(sigma.shape[1]), "median_sigma": float(np.median(sigma)),
                "p10_sigma": float(p10), "p90_sigma": float(p90),
                "in_focus_fraction": float(np.count_nonzero(sigma <= IN_FOCUS_SIGMA) / sigma.size),
                "sharpness": self.sharpness()}
