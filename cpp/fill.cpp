// The flat fill (stages/fill.py): patches of weight 0 take the weighted mean of their
// neighbourhood; double math in the reference's order (three box means in y then x).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/stages.hpp"

namespace fastdefocus {
namespace stages {

using std::int64_t;

int fill_radius(int64_t stride, double sigma) {
    if (stride < 1) throw std::invalid_argument("fill_radius: stride must be >= 1, got " + std::to_string(stride));
    const double q = sigma / static_cast<double>(stride);
    return std::max(1, static_cast<int>(std::floor(std::sqrt(q * q + 0.25))));
}

namespace {

// Mean over 2r+1 along one axis (zeros outside), as the reference's cumulative sums.
void box_mean(const std::vector<double>& src, std::vector<double>& dst, int64_t ny, int64_t nx, int r, bool along_y) {
    const int64_t n = along_y ? ny : nx, lines = along_y ? nx : ny;
    const int64_t step = along_y ? nx : 1, line_step = along_y ? 1 : nx;
    const double inv = 1.0 / static_cast<double>(2 * r + 1);
    std::vector<double> c(static_cast<std::size_t>(n + 1));
    for (int64_t l = 0; l < lines; ++l) {
        const double* in = src.data() + l * line_step;
        double* out = dst.data() + l * line_step;
        c[0] = 0.0;
        for (int64_t i = 0; i < n; ++i) c[static_cast<std::size_t>(i + 1)] = c[static_cast<std::size_t>(i)] + in[i * step];
        for (int64_t i = 0; i < n; ++i) {
            const int64_t hi = std::min(i + r + 1, n), lo = std::max(i - r, int64_t{0});
            out[i * step] = (c[static_cast<std::size_t>(hi)] - c[static_cast<std::size_t>(lo)]) * inv;
        }
    }
}

void neighbourhood_mean(std::vector<double>& x, int64_t ny, int64_t nx, int r) {
    std::vector<double> tmp(x.size());
    for (int pass = 0; pass < 3; ++pass) {
        box_mean(x, tmp, ny, nx, r, true);
        box_mean(tmp, x, ny, nx, r, false);
    }
}

}  // namespace

void fill_flat(const float* values, const double* weights, int64_t ny, int64_t nx, int radius, float* out,
               double prior) {
    if (values == nullptr || weights == nullptr || out == nullptr) throw std::invalid_argument("fill_flat: null array");
    if (ny < 1 || nx < 1) throw std::invalid_argument("fill_flat: empty patch grid");
    if (radius < 1) throw std::invalid_argument("fill_flat: radius must be >= 1, got " + std::to_string(radius));
    const int64_t n = ny * nx;
    bool any_flat = false;
    for (int64_t i = 0; i < n; ++i) {
        if (!(weights[i] >= 0.0) || !std::isfinite(weights[i]))
            throw std::invalid_argument("fill_flat: weights must be finite and >= 0");
        any_flat = any_flat || weights[i] <= 0.0;
    }
    if (!any_flat) {
        if (out != values) std::copy_n(values, n, out);
        return;
    }
    std::vector<double> num(static_cast<std::size_t>(n)), den(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        num[static_cast<std::size_t>(i)] = weights[i] * static_cast<double>(values[i]);
        den[static_cast<std::size_t>(i)] = weights[i];
    }
    neighbourhood_mean(num, ny, nx, radius);
    neighbourhood_mean(den, ny, nx, radius);
    for (int64_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(values[i]);
        if (weights[i] <= 0.0)
            out[i] = static_cast<float>((num[static_cast<std::size_t>(i)] + prior * v) /
                                        (den[static_cast<std::size_t>(i)] + prior));
        else
            out[i] = values[i];
    }
}

}  // namespace stages
}  // namespace fastdefocus
