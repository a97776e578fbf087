"""Tuned constants of the estimator, each defined once with the measurement behind it.

Every stage (the CPU stages, the CUDA kernels in ``fastdefocus.kernels``, the native C++ code
through its arguments) reads these; no module keeps its own copy. Options a user may change
(stride, radius, eps, ...) are not here: they are the fields of :class:`fastdefocus.config.EstimatorConfig`.
"""
from __future__ import annotations

# --------------------------------------------------------------------------- ingest

#: Rec. 601 luma weights of R, G, B (the luminance every stage works on).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: The fixed scale (px) of the map's pictures (``DefocusResult.normalized``, ``colorize``, the colour
#: bars of the command line): the estimator's range, at most this much. With the default two
#: coarse levels the range is 26 px and the pictures show 0-16 px, which covers the blur that
#: phones and DSLRs give backgrounds at full resolution and keeps 1-6 px apart.
VIEW_SIGMA_MAX = 16.0

#: A pixel counts as in focus at sigma <= this many px: ``DefocusResult.in_focus()`` and
#: ``summary()["in_focus_fraction"]``, the batch job's ``in_focus_fraction`` column and the
#: centre of the DBD in-focus score (:func:`fastdefocus.metrics.defocus.in_focus_score`).
IN_FOCUS_SIGMA = 1.0

# --------------------------------------------------------------------------- patches

#: A patch whose standard deviation (intensity in [0, 1]) is below this carries almost no blur
#: information ("flat"): training keeps such patches out, the estimator gives them low weight,
#: and per-patch normalisation divides by at least this (``std_floor``). The shipped model
#: stores the value it was trained with (``data.flat_std`` / ``input.std_floor``); this is the
#: default for models that do not.
FLAT_STD = 0.02

# --------------------------------------------------------------------------- splat

#: Soft-max strength of the splat, per px of sigma (see :func:`splat`). A patch that
#: straddles a focus boundary looks as sharp as its sharp side, so among the patches
#: covering a cell the higher values are the more trustworthy ones near a boundary;
#: exp(lift * value) favours them. Chosen on 25 layered scenes from BSDS500 val (with
#: the 9-window agreement, tau 0.2): textured / near-boundary MAE 0.437 / 0.689 px at
#: 0, 0.428 / 0.676 at 0.5, 0.432 / 0.678 at 0.7, 0.441 / 0.686 at 1.0 (guided-filter
#: refinement). With bilinear refinement (iterations 0): 0.416 / 0.644 at 0.5, 0.417 / 0.631
#: at 1.0, 0.422 / 0.630 at 1.5; with the cell match too (MATCH_TAU 0.2): 0.407 / 0.622 at
#: 0.5, 0.412 / 0.619 at 1.0, 0.419 / 0.623 at 1.5.
SPLAT_LIFT = 1.0

#: Cap of the lift exponent (no overflow whatever the values).
LIFT_EXP_MAX = 80.0

#: Log sharpness excess of a patch over a cell at which the patch's weight in that cell falls
#: to 1/e (see :func:`splat` and :func:`sharpness_maps`). Chosen on 25 layered scenes from
#: BSDS500 val with SPLAT_LIFT 1.0 and bilinear refinement (textured / near-boundary MAE,
#: px): 0.417 / 0.631 without the match, 0.415 / 0.623 at 0.1, 0.412 / 0.619 at 0.2.
MATCH_TAU = 0.2

#: Floor added to the gradient energy sums before their log ratio (luminance^2 units): flat
#: windows read as blurred (ratio 1), so they do not veto sharp patches by noise.
SHARPNESS_FLOOR = 1e-6

#: Log sharpness ratio between a patch's windows at which its weight falls to 1/e. Chosen on
#: 25 layered scenes from BSDS500 val (near-boundary MAE, px). Four quadrants, before the
#: window sums were kept inside their windows: 0.714 without agreement, 0.705 at log(2),
#: 0.691 at log(1.5), 0.684 at log(1.25). Nine windows (with the soft-max splat,
#: SPLAT_LIFT 0.5): 0.679 at 0.15, 0.676 at 0.2, 0.690 at 0.3.
AGREEMENT_TAU = 0.2

# --------------------------------------------------------------------------- flat fill
#
# A patch too flat to carry blur evidence (texture confidence 0: luminance std below half of
# flat_std) has weight 0 in the map, but where no textured patch covers a cell the splat falls
# back to the plain mean of the covering patches' values, so the inside of a textureless
# surface read what the classifier says of a flat patch (about 5 px): a flat in-focus square of
# 48-128 px inside a sharp photo read 2.7-4.5 px. Such patches now take the confidence-weighted,
# edge-aware mean of the patch values around them (:mod:`fastdefocus.stages.fill`). Chosen on
# generated DBD-like sets (seed 0, 60 images; seed 1, 100 images), CUHK (5, reported, not tuned
# to), 40 layered scenes and 40 sharp photos (F-beta max seed 0 / seed 1 / CUHK; layered
# textured / near-boundary MAE px; sharp photos median px), NumPy pipeline with the stage swapped:
#   no fill                                0.854 /   -   / 0.804; 0.419 / 0.618; 0.326
#   box weights, sigma 64 px (no edges)    0.900 / 0.907 / 0.803; 0.420 / 0.618; 0.326
#   edge-aware, sigma_r 0.05 / 0.2 (seed 1 only): 0.947 / 0.931
#   edge-aware, sigma_r 0.1 (the default)  0.935 / 0.940 / 0.803; 0.419 / 0.618; 0.326
# The box fill gave a flat in-focus object in front of a blurred background the background's
# value (most textured patches around it are the background's); the edge-aware one gives it
# its outline's. Tried and worse: filling every cell of low splat weight (0.885 / - / 0.801,
# layered 0.425 / 0.613, sharp 0.348: real textures have tiny splat weights too), or blending
# every patch with the fill by its texture confidence (box: 0.855 / - / 0.814, layered 0.429 /
# 0.625; edge-aware: 0.924 / - / 0.817, layered 0.423 / 0.622; with the confidence / 0.5: 0.930 /
# - / 0.805, 0.421 / 0.619): the CUHK pairs gain where skin reads blurred, the generated set
# and the layered scenes lose. Each row: ``python benchmarks/fill_ablation.py VARIANT ...``
# (docs/experiments/flat_fill_and_edges.md has the commands and the full table).

#: Range sigma (mean patch luminance, [0, 1]): a change of this much between neighbouring
#: patches counts as one spatial sigma (``EstimatorConfig.fill_sigma``, 64 px) of extra distance.
FILL_SIGMA_R = 0.1
#: Range of ``EstimatorConfig.fill_sigma`` besides 0 (px): below 1 px the fill reaches no
#: neighbour; far above an image's size its weights stop respecting edges and the prior dilutes.
MIN_FILL_SIGMA = 1.0
MAX_FILL_SIGMA = 1e4
#: Iterations of the domain transform (each a horizontal and a vertical pair of passes).
FILL_ITERATIONS = 3
#: Weight of a flat patch's own value against the filtered confidence of its neighbourhood
#: (a mean of confidences, up to 1): it wins only far from any textured patch.
FILL_PRIOR = 1e-3

# --------------------------------------------------------------------------- refine

#: Radius (px of the input) and regularisation of the last guided filter whose coefficients
#: are upsampled to full resolution (guided upsampling, He and Sun 2015).
UPSAMPLE_RADIUS = 4.0
UPSAMPLE_EPS = 1e-2
#: Added to every confidence weight of the weighted guided filter (w_e = w + floor), so a
#: window of zero weight still has a defined mean; the same value in cpp/filters.cpp
#: (tested equal: tests/test_params.py).
WEIGHT_FLOOR = 1e-6
#: Sigma (px) of the extra blur whose removed gradient energy is the sharpness evidence of
#: the splat's cell match and of the boundary snap.
SHARPNESS_BLUR = 1.0

# --------------------------------------------------------------------------- boundary snap
#
# A 32-px patch near a focus boundary sees both sides, so the splatted map turns a sharp
# step of sigma into a ramp some 20 px wide. Inside such a ramp each pixel is put back on
# one side, from evidence at its own scale: how much gradient energy a further 1-px blur
# removes in its 3 x 3 neighbourhood (``SNAP_EVIDENCE``: about 0 where the image is already
# blurred, strongly negative where it is sharp). The settings below were chosen on the first
# 40 layered scenes of the quality benchmark (BSDS500 val, default options): near-boundary MAE
# 0.678 -> 0.612 px, textured 0.424 -> 0.402 px; on the other 60 scenes 0.658 -> 0.578 and
# 0.396 -> 0.370. With the retrained classifier (photos downscaled by 4) SNAP_REFERENCE was
# re-chosen on the same 40 scenes (0.25 -> 0.35: near-boundary 0.627 -> 0.616 px; 0.687 off);
# over all 100 the snap then takes it from 0.672 (off) to 0.594 px, on the other 60 from 0.662
# to 0.579 (benchmarks/quality.py --sections scenes --limit 40 / 100, --snap 0 / 10).
# With the true side of every pixel instead of this evidence the same snap
# reaches 0.44 px: the evidence, not the plateau values, is what limits it. Tried and not
# better: wider windows (14-20 px), 1x1 or 5x5 evidence windows, snapping along the map's
# gradient, an energy-weighted or dilated evidence, hard (0/1) sides, a second pass.

#: Half-width (px) of the window whose minimum and maximum of the map are the two sides.
SNAP_RADIUS = 10
#: Smallest max - min of the map in that window (px) for a pixel to be snapped.
SNAP_MIN_SPAN = 0.3
#: Pixels in the outer share of [min, max] on each side are that side's references; the
#: pixels within SNAP_BAND of either end are left as they are.
SNAP_REFERENCE = 0.35
SNAP_BAND = 0.1
#: Extra half-width of the window the references are averaged over.
SNAP_REFERENCE_MARGIN = 4
#: Gradient-energy floor of the evidence (luminance^2 per pixel pair).
SNAP_ENERGY_FLOOR = 1e-4
#: Least share of each side's reference pixels in the window, and least evidence contrast
#: between the sides, for a pixel to be snapped.
SNAP_MIN_SHARE = 0.02
SNAP_MIN_CONTRAST = 0.05

# --------------------------------------------------------------------------- coarse levels
#
# The classifier's levels stop at 6 px, so larger blur saturates there: 20 BSDS500 val photos
# blurred with Gaussians of 8 / 12 px read 6.31 / 6.27 px and discs of radius 16 / 24 px
# (sigma 8 / 12) 5.24 / 5.49 px (median over photos; ``fastdefocus eval --sections largeblur
# --largeblur-limit 20 --coarse-levels 0``). Coarse levels estimate the same image halved
# (level 1) and quartered (level 2), where such blur is back in range, and may only raise the
# finer map, only where it saturates and only as far as the coarse estimate is confident
# (:mod:`fastdefocus.stages.coarse`). Level L reads gate from 2**(L-1) * COARSE_GATE[0] px
# (weight 0) to 2**(L-1) * COARSE_GATE[1] px (weight 1) of the map so far, so that disc blur,
# which saturates lower than Gaussian blur, is raised too; below 6 px a coarse level reads
# about what the fine one does, so the ramp's start costs little. The prototype of a
# naive pyramid (the coarse level wherever the map is above 4 px, unweighted) lost DBD
# accuracy: at coarse scales textureless areas read as strong blur, which the confidence
# weight keeps out.

#: Map values (px, at level 1; doubled per level) where a coarse level starts to count and
#: where it counts fully.
COARSE_GATE = (4.0, 5.0)
#: Coarse confidence at which the coarse value counts fully (weight conf / COARSE_CONF, at most 1).
COARSE_CONF = 0.4
#: Fewest pixels past the gate's full point for a coarse level to run at all (a 32 x 32 area).
COARSE_MIN_AREA = 1024

# --------------------------------------------------------------------------- temporal filter
#
# ``stream(..., stable=True)``: a per-pixel recursive filter of the maps of a video
# (:mod:`fastdefocus.stages.temporal`). Each frame's estimate joins a running weighted mean,
# weighted by its confidence; the running mean's weight is kept where the (slightly blurred)
# luminance did not change since the previous frame and dropped where it did (motion, a
# focus change that shows in the image), and the whole state is dropped at a cut.

#: Sigma (px) of the blur of the luminance the frames are compared on (noise and sub-pixel
#: shimmer do not count as change).
TEMPORAL_LUMA_BLUR = 2.0
#: Change of that luminance (in [0, 1]) at which the running mean keeps 1/e of its weight.
TEMPORAL_MOTION_TAU = 0.03
#: A cut: more than this share of the pixels changed by more than TEMPORAL_MOTION_TAU.
TEMPORAL_CUT_SHARE = 0.5
#: Most weight the running mean may hold, in frames of full confidence: its memory, about
#: that many frames (flicker of a static scene falls to about a third; a focus pull lags about
#: this many frames behind).
TEMPORAL_MAX_WEIGHT = 3.0
#: Least weight of a new frame's estimate (where its confidence is 0).
TEMPORAL_MIN_WEIGHT = 0.05

#: The fast model's network (backends.networks.StridedCNN): (channels, stride) per 3x3
#: convolution. Of the variants of a short pilot (depthwise-separable and residual stacks, a 5x5
#: stem, a 1x1 head, narrower channels), the second convolution at 8x8 learned best for its cost;
#: docs/model_fast/MODEL.md. The default of StridedCNN and of fastdefocus train --layers.
STRIDED_CNN_LAYERS = ((16, 2), (32, 2), (32, 1), (64, 2), (128, 2))

# --------------------------------------------------------------------------- test-time views
#
# ``EstimatorConfig.tta``: each patch is classified in this many of its eight dihedral views
# (mirrors, rotations by 90 degrees, transposes) and the probabilities are averaged
# (:func:`fastdefocus.stages.classify.dihedral_probabilities`). The classifier was trained on
# patches in random dihedral views but is not exactly invariant; the mean of its views is. The
# first 2 are the patch and its mirror, the first 4 the group of the two mirrors and the 180-degree
# rotation, 8 all of them. Measured on the quality report's sections (default model, 2026-12-02,
# CUHK F-beta max / generated DBD / SYNDOF MAE px / layered textured and near-boundary MAE px /
# sharp photos median px):
#   1 view     0.805 / 0.937 / 0.752 / 0.396, 0.587 / 0.164
#   8 views    0.825 / 0.938 / 0.736 / 0.387, 0.580 / 0.167
TTA_VIEWS = (1, 2, 4, 8)
