// Patch extraction on a reflect-padded grid.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/filters.hpp"
#include "parallel.hpp"

namespace fastdefocus {

using std::int64_t;

PatchGrid patch_grid(int64_t h, int64_t w, int64_t size, int64_t stride) {
    if (h < 1 || w < 1)
        throw std::invalid_argument("image must be at least 1x1, got " + std::to_string(h) + "x" +
                                    std::to_string(w));
    if (size < 1) throw std::invalid_argument("size must be >= 1, got " + std::to_string(size));
    if (stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(stride));
    auto count = [&](int64_t n) {
        const int64_t extra = std::max<int64_t>(n - size, 0);
        return (extra + stride - 1) / stride + 1;
    };
    return PatchGrid{count(h), count(w)};
}

void extract_patches(const float* gray, int64_t h, int64_t w, int64_t size, int64_t stride, bool normalize,
                     double std_floor, float* out, int threads) {
    const PatchGrid g = patch_grid(h, w, size, stride);
    extract_patch_range(gray, h, w, size, stride, normalize, std_floor, 0, g.ny * g.nx, out, threads);
}

namespace {

// The patches index_of(0), ..., index_of(count - 1) of the grid (row-major grid indices).
template <class IndexOf>
void extract_indexed(const float* gray, int64_t h, int64_t w, int64_t size, int64_t stride, bool normalize,
                     double std_floor, int64_t count, IndexOf index_of, float* out, int threads) {
    const PatchGrid g = patch_grid(h, w, size, stride);
    const int64_t npatch = count;
    const int64_t area = size * size;
    if (npatch > std::numeric_limits<int64_t>::max() / area) throw std::invalid_argument("too many patches");

    // Source column of every column of the padded image (the grid needs
    // (nx-1)*stride + size columns); reflect-101 at the right.
    const int64_t wp = (g.nx - 1) * stride + size;
    std::vector<int64_t> colsrc(static_cast<std::size_t>(wp));
    for (int64_t x = 0; x < wp; ++x) colsrc[static_cast<std::size_t>(x)] = reflect_index(x, w);

    const int nt = detail::resolve_threads(threads, npatch, npatch * area);
    const int64_t nchunks = nt == 1 ? 1 : std::min<int64_t>(npatch, 4 * nt);
    detail::parallel_for(nt, nchunks, [&](int64_t chunk) {
        const int64_t b = npatch * chunk / nchunks, e = npatch * (chunk + 1) / nchunks;
        for (int64_t p = b; p < e; ++p) {
            const int64_t at = index_of(p);
            const int64_t iy = at / g.nx, ix = at % g.nx;
            const int64_t y0 = iy * stride, x0 = ix * stride;
            float* const dst = out + p * area;
            const bool inside_x = x0 + size <= w;
            for (int64_t i = 0; i < size; ++i) {
                const float* const row = gray + reflect_index(y0 + i, h) * w;
                float* const d = dst + i * size;
                if (inside_x) {
                    std::memcpy(d, row + x0, static_cast<std::size_t>(size) * sizeof(float));
                } else {
                    const int64_t* const cs = colsrc.data() + x0;
                    for (int64_t j = 0; j < size; ++j) d[j] = row[cs[j]];
                }
            }
            if (normalize) {
                // mean and population std in double, 8 partial sums each (independent
                // dependency chains: the adds pipeline instead of waiting on each other)
                float* const __restrict v = dst;
                double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int64_t k = 0;
                for (; k + 8 <= area; k += 8)
                    for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(v[k + j]);
                for (; k < area; ++k) part[0] += static_cast<double>(v[k]);
                const double sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
                const double mean = sum / static_cast<double>(area);
                double sq[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (k = 0; k + 8 <= area; k += 8)
                    for (int j = 0; j < 8; ++j) {
                        const double d = static_cast<double>(v[k + j]) - mean;
                        sq[j] += d * d;
                    }
                for (; k < area; ++k) {
                    const double d = static_cast<double>(v[k]) - mean;
                    sq[0] += d * d;
                }
                const double ss = ((sq[0] + sq[1]) + (sq[2] + sq[3])) + ((sq[4] + sq[5]) + (sq[6] + sq[7]));
                const double sd = std::sqrt(ss / static_cast<double>(area));
                const double inv = 1.0 / std::max(sd, std_floor);
                for (k = 0; k < area; ++k) v[k] = static_cast<float>((static_cast<double>(v[k]) - mean) * inv);
            }
        }
    });
}

void check_extract(const float* gray, float* out, bool normalize, double std_floor, int64_t size) {
    if (gray == nullptr || out == nullptr) throw std::invalid_argument("gray and out must not be null");
    if (normalize && !(std_floor > 0.0 && std::isfinite(std_floor)))
        throw std::invalid_argument("std_floor must be a finite number > 0");
    if (size > (int64_t(1) << 31)) throw std::invalid_argument("size must be < 2**31");
}

}  // namespace

void extract_patch_range(const float* gray, int64_t h, int64_t w, int64_t size, int64_t stride, bool normalize,
                         double std_floor, int64_t first, int64_t count, float* out, int threads) {
    check_extract(gray, out, normalize, std_floor, size);
    const PatchGrid g = patch_grid(h, w, size, stride);
    const int64_t total = g.ny * g.nx;
    if (first < 0 || count < 0 || first > total || count > total - first)
        throw std::invalid_argument("patch range [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                                    std::to_string(count) + ") is outside the grid of " + std::to_string(total) +
                                    " patches");
    extract_indexed(gray, h, w, size, stride, normalize, std_floor, count, [first](int64_t p) { return first + p; },
                    out, threads);
}

void extract_patch_list(const float* gray, int64_t h, int64_t w, int64_t size, int64_t stride, bool normalize,
                        double std_floor, const int64_t* indices, int64_t count, float* out, int threads) {
    check_extract(gray, out, normalize, std_floor, size);
    if (count > 0 && indices == nullptr) throw std::invalid_argument("indices must not be null");
    const PatchGrid g = patch_grid(h, w, size, stride);
    const int64_t total = g.ny * g.nx;
    for (int64_t p = 0; p < count; ++p)
        if (indices[p] < 0 || indices[p] >= total)
            throw std::invalid_argument("patch index " + std::to_string(indices[p]) + " is outside the grid of " +
                                        std::to_string(total) + " patches");
    extract_indexed(gray, h, w, size, stride, normalize, std_floor, count, [indices](int64_t p) { return indices[p]; },
                    out, threads);
}

}  // namespace fastdefocus
