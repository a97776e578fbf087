// The temporal filter of a stream's maps (stages/temporal.py TemporalFilter), float32 math in
// NumPy's order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/stages.hpp"
#include "internal.hpp"

namespace fastdefocus {
namespace stages {

using std::int64_t;

void TemporalFilter::reset() {
    h_ = w_ = frames_ = 0;
    sigma_.clear();
    conf_.clear();
    weight_.clear();
    reference_.clear();
}

bool TemporalFilter::update(const float* lum, const float* sigma, const float* confidence, int64_t h, int64_t w,
                            float* sigma_out, float* conf_out, int threads) {
    if (lum == nullptr || sigma == nullptr || confidence == nullptr || sigma_out == nullptr || conf_out == nullptr)
        throw std::invalid_argument("TemporalFilter::update: null map");
    if (h < 1 || w < 1)
        throw std::invalid_argument("TemporalFilter::update: maps must be at least 1 x 1, got " + std::to_string(h) +
                                    " x " + std::to_string(w));
    const std::size_t n = static_cast<std::size_t>(h * w);
    std::vector<float> smooth(n);
    gaussian_blur(lum, smooth.data(), h, w, params::kTemporalLumaBlur, threads);
    const float tau = static_cast<float>(params::kTemporalMotionTau);
    const float inv_tau = static_cast<float>(1.0 / params::kTemporalMotionTau);
    const float min_w = static_cast<float>(params::kTemporalMinWeight);
    const float max_w = static_cast<float>(params::kTemporalMaxWeight);
    bool cut = reference_.empty() || h != h_ || w != w_;
    if (!cut) {
        int64_t changed = 0;
        for (std::size_t i = 0; i < n; ++i) changed += std::fabs(smooth[i] - reference_[i]) > tau;
        cut = static_cast<double>(changed) > params::kTemporalCutShare * static_cast<double>(n);
    }
    if (cut) {
        sigma_.assign(sigma, sigma + n);
        conf_.assign(confidence, confidence + n);
        weight_.resize(n);
        for (std::size_t i = 0; i < n; ++i) weight_[i] = std::min(confidence[i] + min_w, max_w);
        h_ = h;
        w_ = w;
    } else {
        detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
            for (std::size_t i = static_cast<std::size_t>(y0 * w); i < static_cast<std::size_t>(y1 * w); ++i) {
                const float z = std::fabs(smooth[i] - reference_[i]) * inv_tau;
                const float w_prev = weight_[i] * std::exp(-(z * z));
                const float w_new = confidence[i] + min_w;
                const float total = w_prev + w_new;
                sigma_[i] = (w_prev * sigma_[i] + w_new * sigma[i]) / total;
                conf_[i] = (w_prev * conf_[i] + w_new * confidence[i]) / total;
                weight_[i] = std::min(total, max_w);
            }
        });
    }
    reference_.swap(smooth);
    ++frames_;
    std::copy(sigma_.begin(), sigma_.end(), sigma_out);
    std::copy(conf_.begin(), conf_.end(), conf_out);
    return cut;
}

}  // namespace stages
}  // namespace fastdefocus
