// fastdefocus/stages.hpp - the estimator's stages one by one (what Estimator::estimate
// chains), each the twin of a Python function named beside it.  Images are single-channel,
// row-major float32 (h rows, w columns); outputs must not overlap inputs unless said.
// `threads` as in filters.hpp (0: default_threads(), 1 for small images).
// Invalid sizes and arguments throw std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "fastdefocus/estimator.hpp"
#include "fastdefocus/filters.hpp"

namespace fastdefocus {
namespace stages {

// ---------------------------------------------------------------- ingest

// Rec. 601 luminance in [0, 1] of an image (stages/ingest.py to_luminance), float32 math in
// the same order as NumPy's: (r * 0.299f + g * 0.587f) + b * 0.114f, times 1/255 (1/65535),
// clipped.  Gray (1 or 2 channels): the first channel.  Validates the view (null data,
// sizes, channels, row stride, non-finite float samples).  out: height * width floats.
void luminance(const ImageView& image, float* out, int threads = 0);

// Discrete Gaussian kernel with variance exactly sigma^2 (blur.py gaussian_kernel1d): odd
// length 2 * ceil(4 sigma + 1) + 1, normalised; {1} for sigma <= 0.
std::vector<double> gaussian_kernel1d(double sigma);

// Separable discrete Gaussian blur, reflect-101 borders (blur.py gaussian_blur, i.e.
// cv2.sepFilter2D with the kernel in float32).  dst may not overlap src.
void gaussian_blur(const float* src, float* dst, std::int64_t h, std::int64_t w, double sigma,
                   int threads = 0);

// src (h x w) reflect-padded (reflect-101, repeated) at the bottom and right to ph x pw
// (refine.py pad_to).  ph >= h, pw >= w.
void pad_reflect(const float* src, std::int64_t h, std::int64_t w, float* dst, std::int64_t ph,
                 std::int64_t pw);

// ---------------------------------------------------------------- resize (cv2.resize)

// Bilinear resize with OpenCV's INTER_LINEAR (float32) semantics: source coordinate
// (d + 0.5) * src / dst - 0.5, clamped at the borders.
void resize_linear(const float* src, std::int64_t sh, std::int64_t sw, float* dst, std::int64_t dh,
                   std::int64_t dw, int threads = 0);

// INTER_AREA for integer shrink factors (sh = f * dh, sw = g * dw): block means.
void resize_area(const float* src, std::int64_t sh, std::int64_t sw, float* dst, std::int64_t dh,
                 std::int64_t dw, int threads = 0);

// ---------------------------------------------------------------- patches / splat

// Tent weight of each of the k = patch / stride cells of a patch (_geometry.tent_weights).
std::vector<double> tent_weights(std::int64_t patch, std::int64_t stride);

// Offsets of the half-patch windows a patch compares (_geometry.window_offsets).
std::vector<std::int64_t> window_offsets(std::int64_t patch);

// Per patch of the (ny, nx) grid of a padded image ((ny + k - 1) * stride rows, likewise
// columns), from one pass over it (stages/splat.py patch_statistics and sharpness_maps):
struct PatchStatistics {
    std::int64_t ny = 0, nx = 0;          // the patch grid
    std::int64_t cy = 0, cx = 0;          // the cell grid: ny + k - 1, nx + k - 1
    std::vector<double> texture;          // ny * nx: luminance std of the patch
    std::vector<double> mean;             // ny * nx: its mean luminance (the flat fill's guide)
    std::vector<double> agreement;        // ny * nx: in (0, 1]
    std::vector<double> patch_sharpness;  // ny * nx: log sharpness of the patch
    std::vector<double> cell_sharpness;   // cy * cx: log sharpness of each stride x stride cell
};
PatchStatistics patch_statistics(const float* padded, std::int64_t ph, std::int64_t pw, std::int64_t ny,
                                 std::int64_t nx, std::int64_t patch, std::int64_t stride,
                                 double flat_std, int threads = 0);

// Sum over the covering patches of tent weight x value (splat.py tent_sum): (ny + k - 1) x
// (nx + k - 1) doubles.
std::vector<double> tent_sum(const double* values, std::int64_t ny, std::int64_t nx, std::int64_t patch,
                             std::int64_t stride);

struct SplatResult {
    std::vector<float> values;   // (ny + k - 1) x (nx + k - 1)
    std::vector<float> weights;  // same
};
// splat.py splat with the lift and, when patch_sharpness and cell_sharpness are given (both
// or neither), the cell match.
SplatResult splat(const float* values, const double* weights, std::int64_t ny, std::int64_t nx,
                  std::int64_t patch, std::int64_t stride, double lift, const double* patch_sharpness,
                  const double* cell_sharpness, double match_tau = params::kMatchTau, double eps = 1e-6,
                  int threads = 0);

// ---------------------------------------------------------------- classify

// probabilities . levels (classify.py expected_sigma_raw), in double.
double expected_sigma_raw(const float* probabilities, const std::vector<double>& levels);

// np.interp(raw, knots x, knots y) (classify.py apply_calibration, before the float32 cast).
double apply_calibration(double raw, const std::vector<std::array<double, 2>>& knots);

// Probability mass within one level of the most likely one (classify.py confidence_from_probs).
float confidence_from_probs(const float* probabilities, std::int64_t levels);

// ---------------------------------------------------------------- refine / snap

// Pixels per working-grid pixel (refine.py working_scale): min(stride, 4).
std::int64_t working_scale(std::int64_t stride);

// refine.py refine: the cell map (hc x wc) -> a dense map of (hc * stride) x (wc * stride),
// guided by luminance_padded of that size.
void refine(const float* cell_values, const float* cell_weights, std::int64_t hc, std::int64_t wc,
            const float* luminance_padded, std::int64_t stride, double radius, double eps, int iterations,
            float* dense, int threads = 0, double upsample_radius = params::kUpsampleRadius,
            double upsample_eps = params::kUpsampleEps);

// snap.py snap_evidence: log((E_blurred + floor) / (E + floor)) per pixel.
void snap_evidence(const float* luminance, std::int64_t h, std::int64_t w, float* out, int threads = 0);

// snap.py snap_boundaries (radius 0: a copy).  out may equal sigma.
void snap_boundaries(const float* sigma, const float* luminance, std::int64_t h, std::int64_t w,
                     int radius, float* out, int threads = 0);

// Minimum and maximum over the (2r+1) x (2r+1) window, pixels outside the image ignored
// (cv2.erode / cv2.dilate with a rectangle).
void min_max_filter(const float* src, std::int64_t h, std::int64_t w, std::int64_t radius, float* lo,
                    float* hi, int threads = 0);

// ---------------------------------------------------------------- coarse levels (stages/coarse.py)

// (start, full) of level `level`'s saturation gate (coarse.py gate), px of the input.
std::array<double, 2> coarse_gate(int level);

// The rows [y0, y1) and columns [x0, x1) a coarse level of shrink `factor` works on
// (coarse.py coarse_region); empty() when fewer than min_area pixels of sigma exceed lo.
struct CoarseRegion {
    std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
    bool empty() const { return y1 <= y0 || x1 <= x0; }
};
CoarseRegion coarse_region(const float* sigma, std::int64_t h, std::int64_t w, double lo, std::int64_t factor,
                           std::int64_t margin, std::int64_t min_area = params::kCoarseMinArea);

// coarse.py merge on an rh x rw region: sigma and confidence rows row_stride apart, the
// coarse maps coarse_stride apart; the coarse sigma is multiplied by `scale` (the shrink
// factor) and its confidence clipped to [0, 1] as they are read.
void merge_coarse(float* sigma, float* confidence, std::int64_t row_stride, std::int64_t rh, std::int64_t rw,
                  const float* coarse_sigma, const float* coarse_conf, std::int64_t coarse_stride, float scale,
                  double lo, double hi, double conf_full = params::kCoarseConf);

// ---------------------------------------------------------------- flat fill (stages/fill.py)

// Spatial sigma (patches) of each iteration of the fill's domain transform (fill.py pass_sigmas).
std::vector<double> fill_pass_sigmas(std::int64_t stride, double sigma, int iterations = params::kFillIterations);

// Patch values (ny x nx) with every patch of weight <= 0 replaced by the weight-weighted,
// edge-aware mean of the values around it: a normalised domain-transform recursive filter
// (guide: the patch means, PatchStatistics::mean; per iteration rows then columns, each a causal then an anti-causal
// pass; spatial sigma `sigma` px, 0: a copy), its own value a prior of weight kFillPrior
// (fill.py fill_flat).  Writes out (may be values).  Weights must be finite and >= 0, the guide
// finite.
void fill_flat(const float* values, const double* weights, const double* guide, std::int64_t ny, std::int64_t nx,
               std::int64_t stride, double sigma, float* out);

// ---------------------------------------------------------------- temporal filter (stages/temporal.py)

// The running state of one stream's temporal filter (DefocusEstimator.stream(stable=True)):
// per pixel, a confidence-weighted running mean of the maps, kept where the luminance did not
// change since the previous frame and restarted at a cut.  One filter per stream.
class TemporalFilter {
  public:
    void reset();
    // Filters one frame's map (h x w luminance in [0, 1], sigma, confidence) into sigma_out /
    // conf_out (which may be the inputs); true when the frame was taken as a cut (the first
    // frame, a new size, or most pixels changed).
    bool update(const float* luminance, const float* sigma, const float* confidence, std::int64_t h,
                std::int64_t w, float* sigma_out, float* conf_out, int threads = 0);
    std::int64_t frames() const noexcept { return frames_; }

  private:
    std::int64_t h_ = 0, w_ = 0, frames_ = 0;
    std::vector<float> sigma_, conf_, weight_, reference_;
};

}  // namespace stages
}  // namespace fastdefocus
