// The flat fill (stages/fill.py): patches of weight 0 take the confidence-weighted, edge-aware
// mean of the values around them (a normalised domain-transform recursive filter on the patch
// grid); double math in the reference's order.
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

std::vector<double> fill_pass_sigmas(int64_t stride, double sigma, int iterations) {
    if (stride < 1) throw std::invalid_argument("fill_pass_sigmas: stride must be >= 1, got " + std::to_string(stride));
    const double s = sigma / static_cast<double>(stride);
    std::vector<double> out;
    for (int i = 0; i < iterations; ++i)
        out.push_back(s * std::sqrt(3.0) * std::pow(2.0, iterations - 1 - i) / std::sqrt(std::pow(4.0, iterations) - 1.0));
    return out;
}

namespace {

// One causal and one anti-causal pass along each line (in place).  Element (line l, position x)
// is at base[l * line_step + x * step].
void recursive_pass(double* num, double* den, const double* guide, int64_t lines, int64_t n, int64_t line_step,
                    int64_t step, double a, double ratio) {
    std::vector<double> w(static_cast<std::size_t>(n > 1 ? n - 1 : 0));
    for (int64_t l = 0; l < lines; ++l) {
        const int64_t b = l * line_step;
        for (int64_t x = 0; x + 1 < n; ++x)
            w[static_cast<std::size_t>(x)] =
                std::pow(a, 1.0 + ratio * std::abs(guide[b + (x + 1) * step] - guide[b + x * step]));
        for (int64_t x = 1; x < n; ++x) {
            const double wx = w[static_cast<std::size_t>(x - 1)];
            const int64_t i = b + x * step, j = i - step;
            num[i] += wx * (num[j] - num[i]);
            den[i] += wx * (den[j] - den[i]);
        }
        for (int64_t x = n - 2; x >= 0; --x) {
            const double wx = w[static_cast<std::size_t>(x)];
            const int64_t i = b + x * step, j = i + step;
            num[i] += wx * (num[j] - num[i]);
            den[i] += wx * (den[j] - den[i]);
        }
    }
}

}  // namespace

void fill_flat(const float* values, const double* weights, const double* guide, int64_t ny, int64_t nx, int64_t stride,
               double sigma, float* out) {
    if (values == nullptr || weights == nullptr || guide == nullptr || out == nullptr)
        throw std::invalid_argument("fill_flat: null array");
    if (ny < 1 || nx < 1) throw std::invalid_argument("fill_flat: empty patch grid");
    const int64_t n = ny * nx;
    bool any_flat = false;
    for (int64_t i = 0; i < n; ++i) {
        if (!(weights[i] >= 0.0) || !std::isfinite(weights[i]))
            throw std::invalid_argument("fill_flat: weights must be finite and >= 0");
        if (!std::isfinite(guide[i])) throw std::invalid_argument("fill_flat: the guide must be finite");
        any_flat = any_flat || weights[i] <= 0.0;
    }
    if (!(sigma >= 0.0) || !std::isfinite(sigma))
        throw std::invalid_argument("fill_flat: sigma must be finite and >= 0");
    if (!any_flat || sigma == 0.0) {
        if (out != values) std::copy(values, values + n, out);
        return;
    }
    std::vector<double> num(static_cast<std::size_t>(n)), den(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        num[static_cast<std::size_t>(i)] = weights[i] * static_cast<double>(values[i]);
        den[static_cast<std::size_t>(i)] = weights[i];
    }
    const double ratio = (sigma / static_cast<double>(stride)) / params::kFillSigmaR;
    for (double sig : fill_pass_sigmas(stride, sigma, params::kFillIterations)) {
        const double a = std::exp(-std::sqrt(2.0) / sig);
        recursive_pass(num.data(), den.data(), guide, ny, nx, nx, 1, a, ratio);  // along rows
        recursive_pass(num.data(), den.data(), guide, nx, ny, 1, nx, a, ratio);  // along columns
    }
    for (int64_t i = 0; i < n; ++i) {
        if (weights[i] <= 0.0) {
            const double v = static_cast<double>(values[i]);
            out[i] = static_cast<float>((num[static_cast<std::size_t>(i)] + params::kFillPrior * v) /
                                        (den[static_cast<std::size_t>(i)] + params::kFillPrior));
        } else {
            out[i] = values[i];
        }
    }
}

}  // namespace stages
}  // namespace fastdefocus
