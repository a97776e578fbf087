// Internal helpers of the estimator stages (not installed).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.hpp"

namespace fastdefocus {
namespace detail {

// Throws std::invalid_argument unless p is non-null and h, w >= 1 with h * w representable.
inline void require_image(const void* p, const char* name, std::int64_t h, std::int64_t w) {
    if (p == nullptr) throw std::invalid_argument(std::string(name) + " must not be null");
    if (h < 1 || w < 1)
        throw std::invalid_argument(std::string(name) + " must be at least 1x1, got " + std::to_string(h) + "x" +
                                    std::to_string(w));
    if (h > std::numeric_limits<std::int64_t>::max() / 16 / w)
        throw std::invalid_argument(std::string(name) + " is too large: " + std::to_string(h) + "x" +
                                    std::to_string(w));
}

// body(y0, y1) over row ranges [y0, y1) of an h x w image, split between threads.
template <class Body>
void for_rows(int threads, std::int64_t h, std::int64_t w, Body&& body) {
    const int nt = resolve_threads(threads, h, h * w);
    const std::int64_t nchunks = nt == 1 ? 1 : std::min<std::int64_t>(h, 4 * static_cast<std::int64_t>(nt));
    parallel_for(nt, nchunks, [&](std::int64_t c) {
        const std::int64_t y0 = h * c / nchunks, y1 = h * (c + 1) / nchunks;
        if (y0 < y1) body(y0, y1);
    });
}

}  // namespace detail
}  // namespace fastdefocus
