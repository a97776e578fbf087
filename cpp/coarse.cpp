// The coarse levels' stages (stages/coarse.py): where a level runs, and its merge.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fastdefocus/stages.hpp"

namespace fastdefocus {
namespace stages {

using std::int64_t;

std::array<double, 2> coarse_gate(int level) {
    if (level < 1) throw std::invalid_argument("coarse level must be >= 1, got " + std::to_string(level));
    const double scale = static_cast<double>(int64_t{1} << (level - 1));
    return {scale * params::kCoarseGate[0], scale * params::kCoarseGate[1]};
}

CoarseRegion coarse_region(const float* sigma, int64_t h, int64_t w, double lo, int64_t factor, int64_t margin,
                           int64_t min_area) {
    if (h < 1 || w < 1 || factor < 1 || margin < 0)
        throw std::invalid_argument("coarse_region: bad sizes (h " + std::to_string(h) + ", w " + std::to_string(w) +
                                    ", factor " + std::to_string(factor) + ", margin " + std::to_string(margin) + ")");
    const float lof = static_cast<float>(lo);
    int64_t count = 0, y_min = h, y_max = -1, x_min = w, x_max = -1;
    for (int64_t y = 0; y < h; ++y) {
        const float* row = sigma + y * w;
        int64_t first = -1, last = -1, n = 0;
        for (int64_t x = 0; x < w; ++x) {
            if (row[x] > lof) {
                if (first < 0) first = x;
                last = x;
                ++n;
            }
        }
        if (n == 0) continue;
        count += n;
        y_min = std::min(y_min, y);
        y_max = y;
        x_min = std::min(x_min, first);
        x_max = std::max(x_max, last);
    }
    CoarseRegion r;
    if (count < min_area || count == 0) return r;
    r.y0 = std::max<int64_t>(0, y_min - margin) / factor * factor;
    r.x0 = std::max<int64_t>(0, x_min - margin) / factor * factor;
    r.y1 = std::min(h, y_max + 1 + margin);
    r.x1 = std::min(w, x_max + 1 + margin);
    return r;
}

void merge_coarse(float* sigma, float* confidence, int64_t row_stride, int64_t rh, int64_t rw,
                  const float* coarse_sigma, const float* coarse_conf, int64_t coarse_stride, float scale, double lo,
                  double hi, double conf_full) {
    if (!(hi > lo) || !(conf_full > 0))
        throw std::invalid_argument("merge_coarse: needs hi > lo and conf_full > 0");
    const float lof = static_cast<float>(lo), inv = static_cast<float>(1.0 / (hi - lo));
    const float kinv = static_cast<float>(1.0 / conf_full);
    for (int64_t y = 0; y < rh; ++y) {
        float* s = sigma + y * row_stride;
        float* c = confidence + y * row_stride;
        const float* cs = coarse_sigma + y * coarse_stride;
        const float* cc = coarse_conf + y * coarse_stride;
        for (int64_t x = 0; x < rw; ++x) {
            const float g = std::min(std::max((s[x] - lof) * inv, 0.0f), 1.0f);
            const float conf = std::min(std::max(cc[x], 0.0f), 1.0f);
            const float k = std::min(conf * kinv, 1.0f);
            const float wgt = g * k;
            const float up = std::max(cs[x] * scale - s[x], 0.0f);
            if (wgt > 0.0f && up > 0.0f) {
                s[x] = s[x] + wgt * up;
                c[x] = std::max(c[x], wgt * conf);
            }
        }
    }
}

}  // namespace stages
}  // namespace fastdefocus
