// The refine stage (stages/refine.py) and the boundary snap (stages/snap.py), float32 math in
// NumPy's order; the box filters are filters.cpp's (double sums, reflect-101, as cv2.blur's).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/stages.hpp"
#include "internal.hpp"
#include "scratch.hpp"

namespace fastdefocus {
namespace stages {

using std::int64_t;

namespace {

// planes from the thread's scratch pool (scratch.hpp), uninitialised
using Buffer = detail::Scratch<float>;
Buffer buffer(int64_t n) { return Buffer(static_cast<std::size_t>(n)); }

// Python's round() of a non-negative double (half to even), as an int64.
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

}  // namespace

int64_t working_scale(int64_t stride) { return std::min<int64_t>(stride, 4); }

void refine(const float* cell_values, const float* cell_weights, int64_t hc, int64_t wc,
            const float* luminance_padded, int64_t stride, double radius, double eps, int iterations, float* dense,
            int threads, double upsample_radius, double upsample_eps) {
    detail::require_image(cell_values, "refine: cell_values", hc, wc);
    detail::require_image(cell_weights, "refine: cell_weights", hc, wc);
    if (stride < 1) throw std::invalid_argument("refine: stride must be >= 1");
    const int64_t full_h = hc * stride, full_w = wc * stride;
    detail::require_image(luminance_padded, "refine: luminance_padded", full_h, full_w);
    detail::require_image(dense, "refine: dense", full_h, full_w);
    if (iterations < 0) throw std::invalid_argument("refine: iterations must be >= 0");
    if (iterations == 0) {  // bilinear interpolation of the cells
        resize_linear(cell_values, hc, wc, dense, full_h, full_w, threads);
        return;
    }
    if (!(radius >= 0) || !std::isfinite(radius) || !(upsample_radius >= 0) || !std::isfinite(upsample_radius))
        throw std::invalid_argument("refine: radii must be finite and >= 0");
    const int64_t scale = working_scale(stride);
    const int64_t work_h = full_h / scale, work_w = full_w / scale, nwork = work_h * work_w;
    Buffer guide = buffer(nwork), values = buffer(nwork), weights = buffer(nwork);
    resize_area(luminance_padded, full_h, full_w, guide.get(), work_h, work_w, threads);
    resize_linear(cell_values, hc, wc, values.get(), work_h, work_w, threads);
    resize_linear(cell_weights, hc, wc, weights.get(), work_h, work_w, threads);
    for (int64_t i = 0; i < nwork; ++i) weights[i] = std::max(weights[i], 0.0f);
    const double dscale = static_cast<double>(scale);
    const int64_t r_work = std::max<int64_t>(1, round_half_even(radius / dscale));
    iterative_guided_filter(values.get(), guide.get(), weights.get(), values.get(), work_h, work_w, r_work, eps,
                            iterations, threads);
    const int64_t r_up = std::max<int64_t>(1, round_half_even(upsample_radius / dscale));
    Buffer coef_a = buffer(nwork), coef_b = buffer(nwork);
    guided_coefficients(values.get(), guide.get(), nullptr, coef_a.get(), coef_b.get(), work_h, work_w, r_up,
                        upsample_eps, threads);
    // dense = resize(A) * luminance + resize(B), each product and sum rounded to float
    resize_linear(coef_a.get(), work_h, work_w, dense, full_h, full_w, threads);
    Buffer big_b = buffer(full_h * full_w);
    resize_linear(coef_b.get(), work_h, work_w, big_b.get(), full_h, full_w, threads);
    detail::for_rows(threads, full_h, full_w, [&](int64_t y0, int64_t y1) {
        for (int64_t i = y0 * full_w; i < y1 * full_w; ++i) {
            const float p = dense[i] * luminance_padded[i];
            dense[i] = p + big_b[i];
        }
    });
}

// ------------------------------------------------------------------ snap

namespace {

// Running minimum of src_lo and maximum of src_hi over windows of k = 2r + 1 consecutive
// "rows" of `lanes` floats each (van Herk / Gil-Werman: prefix and suffix extrema within
// blocks of k, three operations per element whatever r).  The sources have n rows `stride`
// floats apart; output row j (`out_stride` apart) is the extremum over rows [j - r, j + r]
// inside [0, n) (outside ignored).  g_*, h_*: (n + 2r) * lanes floats of scratch each.
void running_min_max(const float* src_lo, const float* src_hi, int64_t n, int64_t lanes, int64_t stride, int64_t r,
                     float* lo, float* hi, int64_t out_stride, float* g_lo, float* g_hi, float* h_lo, float* h_hi) {
    const float inf = std::numeric_limits<float>::infinity();
    const int64_t m = n + 2 * r, k = 2 * r + 1;
    for (int64_t j = 0; j < m; ++j) {  // forward, restarting at each block start
        float* __restrict gl = g_lo + j * lanes;
        float* __restrict gh = g_hi + j * lanes;
        const bool inside = j >= r && j < r + n;
        const float* __restrict vl = inside ? src_lo + (j - r) * stride : nullptr;
        const float* __restrict vh = inside ? src_hi + (j - r) * stride : nullptr;
        if (j % k == 0) {
            if (inside) {
                std::copy(vl, vl + lanes, gl);
                std::copy(vh, vh + lanes, gh);
            } else {
                std::fill(gl, gl + lanes, inf);
                std::fill(gh, gh + lanes, -inf);
            }
        } else if (inside) {
            const float* __restrict pl = gl - lanes;
            const float* __restrict ph = gh - lanes;
            for (int64_t x = 0; x < lanes; ++x) {
                gl[x] = vl[x] < pl[x] ? vl[x] : pl[x];
                gh[x] = vh[x] > ph[x] ? vh[x] : ph[x];
            }
        } else {
            std::copy(gl - lanes, gl, gl);
            std::copy(gh - lanes, gh, gh);
        }
    }
    for (int64_t j = m - 1; j >= 0; --j) {  // backward, restarting at each block end
        float* __restrict hl = h_lo + j * lanes;
        float* __restrict hh = h_hi + j * lanes;
        const bool inside = j >= r && j < r + n;
        const float* __restrict vl = inside ? src_lo + (j - r) * stride : nullptr;
        const float* __restrict vh = inside ? src_hi + (j - r) * stride : nullptr;
        if (j % k == k - 1 || j == m - 1) {
            if (inside) {
                std::copy(vl, vl + lanes, hl);
                std::copy(vh, vh + lanes, hh);
            } else {
                std::fill(hl, hl + lanes, inf);
                std::fill(hh, hh + lanes, -inf);
            }
        } else if (inside) {
            const float* __restrict nl = hl + lanes;
            const float* __restrict nh = hh + lanes;
            for (int64_t x = 0; x < lanes; ++x) {
                hl[x] = vl[x] < nl[x] ? vl[x] : nl[x];
                hh[x] = vh[x] > nh[x] ? vh[x] : nh[x];
            }
        } else {
            std::copy(hl + lanes, hl + 2 * lanes, hl);
            std::copy(hh + lanes, hh + 2 * lanes, hh);
        }
    }
    for (int64_t j = 0; j < n; ++j) {  // window [j, j + 2r] of the padded sequence
        const float* __restrict a_l = h_lo + j * lanes;
        const float* __restrict a_h = h_hi + j * lanes;
        const float* __restrict b_l = g_lo + (j + 2 * r) * lanes;
        const float* __restrict b_h = g_hi + (j + 2 * r) * lanes;
        float* __restrict ol = lo + j * out_stride;
        float* __restrict oh = hi + j * out_stride;
        for (int64_t x = 0; x < lanes; ++x) {
            ol[x] = b_l[x] < a_l[x] ? b_l[x] : a_l[x];
            oh[x] = b_h[x] > a_h[x] ? b_h[x] : a_h[x];
        }
    }
}

// Minimum and maximum of each window [x - r, x + r] of one row of w floats, outside ignored, by
// doubling (a sparse table): after k passes a[i] is the extremum of the 2^k values from i on, and
// a window of L = 2r + 1 values is the union of the two of length P (the largest power of two
// <= L) that start at its two ends.  log2(L) + 1 contiguous passes, each one vectorised (the van
// Herk passes above vectorise across lanes, and a row is one lane).  a_*, b_*: w + 2r floats each.
void row_min_max(const float* src, int64_t w, int64_t r, float* lo, float* hi, float* a_lo, float* a_hi,
                 float* b_lo, float* b_hi) {
    const float inf = std::numeric_limits<float>::infinity();
    const int64_t m = w + 2 * r, len = 2 * r + 1;
    std::fill(a_lo, a_lo + r, inf);
    std::fill(a_hi, a_hi + r, -inf);
    std::copy(src, src + w, a_lo + r);
    std::copy(src, src + w, a_hi + r);
    std::fill(a_lo + r + w, a_lo + m, inf);
    std::fill(a_hi + r + w, a_hi + m, -inf);
    int64_t span = 1;  // a_*[i]: the extremum of [i, i + span)
    for (; 2 * span <= len; span *= 2) {
        const float* __restrict sl = a_lo;
        const float* __restrict sh = a_hi;
        float* __restrict dl = b_lo;
        float* __restrict dh = b_hi;
        const int64_t n = m - 2 * span + 1;  // the entries whose [i, i + 2 span) is inside
        for (int64_t i = 0; i < n; ++i) {
            const float l0 = sl[i], l1 = sl[i + span], h0 = sh[i], h1 = sh[i + span];
            dl[i] = l1 < l0 ? l1 : l0;
            dh[i] = h1 > h0 ? h1 : h0;
        }
        std::swap(a_lo, b_lo);
        std::swap(a_hi, b_hi);
    }
    const int64_t shift = len - span;  // the second window starts where the first would end, less the overlap
    const float* __restrict sl = a_lo;
    const float* __restrict sh = a_hi;
    for (int64_t x = 0; x < w; ++x) {
        const float l0 = sl[x], l1 = sl[x + shift], h0 = sh[x], h1 = sh[x + shift];
        lo[x] = l1 < l0 ? l1 : l0;
        hi[x] = h1 > h0 ? h1 : h0;
    }
}

}  // namespace

void min_max_filter(const float* src, int64_t h, int64_t w, int64_t radius, float* lo, float* hi, int threads) {
    detail::require_image(src, "min_max_filter: src", h, w);
    if (lo == nullptr || hi == nullptr) throw std::invalid_argument("min_max_filter: outputs must not be null");
    if (radius < 0) throw std::invalid_argument("min_max_filter: radius must be >= 0");
    // a radius of the row length (column length) already spans every row (column)
    const int64_t rx = std::min(radius, w), ry = std::min(radius, h);
    Buffer rmin = buffer(h * w), rmax = buffer(h * w);
    // along each row (contiguous, so every pass vectorises), by doubling: row_min_max
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        const int64_t m = w + 2 * rx;
        detail::Scratch<float> sc(static_cast<std::size_t>(4 * m));  // uninitialised, kept per thread
        for (int64_t y = y0; y < y1; ++y)
            row_min_max(src + y * w, w, rx, rmin.get() + y * w, rmax.get() + y * w, sc.data(), sc.data() + m,
                        sc.data() + 2 * m, sc.data() + 3 * m);
    });
    // along the columns: image rows of `lanes` columns, in bands of columns between threads
    const int nt = detail::resolve_threads(threads, w, h * w);
    const int64_t band = std::min<int64_t>(w, std::max<int64_t>(256, (w + nt - 1) / nt));
    const int64_t nbands = (w + band - 1) / band;
    detail::parallel_for(nt, nbands, [&](int64_t c) {
        const int64_t x0 = c * band, lanes = std::min(band, w - x0);
        const int64_t m = (h + 2 * ry) * lanes;
        detail::Scratch<float> sc(static_cast<std::size_t>(4 * m));  // uninitialised, kept per thread
        running_min_max(rmin.get() + x0, rmax.get() + x0, h, lanes, w, ry, lo + x0, hi + x0, w, sc.data(),
                        sc.data() + m, sc.data() + 2 * m, sc.data() + 3 * m);
    });
}

namespace {

// The 3 x 3 mean, reflect-101 at the borders, each window summed in double (box_filter's
// radius-1 result to float rounding; a third of its passes over the plane).
void box3_mean(const float* src, float* dst, int64_t h, int64_t w, int threads) {
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        std::vector<double> col(static_cast<std::size_t>(w + 2));
        for (int64_t y = y0; y < y1; ++y) {
            const float* a = src + reflect_index(y - 1, h) * w;
            const float* b = src + y * w;
            const float* c = src + reflect_index(y + 1, h) * w;
            double* v = col.data() + 1;
            for (int64_t x = 0; x < w; ++x)
                v[x] = static_cast<double>(a[x]) + static_cast<double>(b[x]) + static_cast<double>(c[x]);
            v[-1] = v[reflect_index(-1, w)];
            v[w] = v[reflect_index(w, w)];
            float* o = dst + y * w;
            for (int64_t x = 0; x < w; ++x) o[x] = static_cast<float>((v[x - 1] + v[x] + v[x + 1]) * (1.0 / 9.0));
        }
    });
}

// log(x) for normal x > 0, within a few ulp of std::log: x = m 2^e with m in [sqrt(1/2),
// sqrt(2)), log(m) = log1p(m - 1) by the minimax polynomial of Cephes' logf; branch-free, so
// that loops over planes vectorise (std::log is a call per pixel).
inline float log_positive(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    std::int32_t e = static_cast<std::int32_t>(bits >> 23) - 127;
    bits = (bits & 0x007fffffu) | 0x3f800000u;  // the mantissa as a float in [1, 2)
    float m;
    std::memcpy(&m, &bits, sizeof m);
    const bool high = m > 1.41421356f;
    m = high ? 0.5f * m : m;
    e = high ? e + 1 : e;
    const float f = m - 1.0f, z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    const float ef = static_cast<float>(e);
    y = y - 2.12194440e-4f * ef;  // log(2) = 0.693359375 - 2.12194440e-4, in two parts
    y = y - 0.5f * z;
    return (f + y) + 0.693359375f * ef;
}

// Squared forward differences to the right and down neighbours (0 beyond the last column /
// row), summed over a 3 x 3 box (snap.py _pair_energy).
void pair_energy(const float* lum, int64_t h, int64_t w, float* out, int threads) {
    Buffer e = buffer(h * w);
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        for (int64_t y = y0; y < y1; ++y) {
            const float* l = lum + y * w;
            float* o = e.get() + y * w;
            for (int64_t x = 0; x + 1 < w; ++x) {
                const float d = l[x + 1] - l[x];
                o[x] = d * d;
            }
            o[w - 1] = 0.0f;
            if (y + 1 < h) {
                const float* l1 = l + w;
                for (int64_t x = 0; x < w; ++x) {
                    const float d = l1[x] - l[x];
                    const float d2 = d * d;
                    o[x] = o[x] + d2;
                }
            }
        }
    });
    box3_mean(e.get(), out, h, w, threads);
}


struct SnapConstants {
    float tiny, min_span, ref_lo, ref_hi, band_lo, band_hi, min_share, min_contrast;
};

// pos, the reference masks near_lo / near_hi and q times them, for pixels [b, e).
void snap_sides(const float* __restrict sigma, const float* __restrict q, const float* __restrict lo,
                const float* __restrict hi, float* __restrict pos, float* __restrict near_lo,
                float* __restrict near_hi, float* __restrict q_lo, float* __restrict q_hi, int64_t b, int64_t e,
                SnapConstants k) {
    for (int64_t i = b; i < e; ++i) {
        const float span = hi[i] - lo[i];
        const float d = sigma[i] - lo[i];
        const float p = d / (span > k.tiny ? span : k.tiny);
        const float zone = span > k.min_span ? 1.0f : 0.0f;
        const float a = p < k.ref_lo ? zone : 0.0f;
        const float c = p > k.ref_hi ? zone : 0.0f;
        pos[i] = p;
        near_lo[i] = a;
        near_hi[i] = c;
        q_lo[i] = q[i] * a;
        q_hi[i] = q[i] * c;
    }
}

// t (before its 3 x 3 mean) and the snap condition (1 or 0) for pixels [b, e).
void snap_weights(const float* __restrict q, const float* __restrict lo, const float* __restrict hi,
                  const float* __restrict pos, const float* __restrict n_lo, const float* __restrict n_hi,
                  const float* __restrict m_lo, const float* __restrict m_hi, float* __restrict t,
                  float* __restrict cond, int64_t b, int64_t e, SnapConstants k) {
    for (int64_t i = b; i < e; ++i) {
        const float ql = m_lo[i] / (n_lo[i] > k.tiny ? n_lo[i] : k.tiny);
        const float qh = m_hi[i] / (n_hi[i] > k.tiny ? n_hi[i] : k.tiny);
        const float c = qh - ql;
        const float v = (q[i] - ql) / (c > k.tiny ? c : k.tiny);
        t[i] = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
        const float span = hi[i] - lo[i];
        float ok = span > k.min_span ? 1.0f : 0.0f;
        ok = n_lo[i] > k.min_share ? ok : 0.0f;
        ok = n_hi[i] > k.min_share ? ok : 0.0f;
        ok = c > k.min_contrast ? ok : 0.0f;
        ok = pos[i] > k.band_lo ? ok : 0.0f;
        ok = pos[i] < k.band_hi ? ok : 0.0f;
        cond[i] = ok;
    }
}

// out = cond ? lo + t * (hi - lo) : sigma for pixels [b, e) (out may be sigma).
void snap_apply(const float* sigma, const float* __restrict lo, const float* __restrict hi,
                const float* __restrict cond, const float* __restrict t, float* out, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
        const float span = hi[i] - lo[i];
        const float d = t[i] * span;
        const float snapped = lo[i] + d;
        const float s = sigma[i];
        out[i] = cond[i] != 0.0f ? snapped : s;
    }
}

}  // namespace

void snap_evidence(const float* lum, int64_t h, int64_t w, float* out, int threads) {
    detail::require_image(lum, "snap_evidence: luminance", h, w);
    detail::require_image(out, "snap_evidence: out", h, w);
    const int64_t n = h * w;
    Buffer energy = buffer(n), blurred = buffer(n), tmp = buffer(n);
    pair_energy(lum, h, w, energy.get(), threads);
    gaussian_blur(lum, tmp.get(), h, w, params::kSharpnessBlur, threads);
    pair_energy(tmp.get(), h, w, blurred.get(), threads);
    const float floor = static_cast<float>(params::kSnapEnergyFloor);
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        for (int64_t i = y0 * w; i < y1 * w; ++i) {
            const float num = blurred[i] + floor;
            const float den = energy[i] + floor;
            out[i] = log_positive(num / den);  // both >= the floor
        }
    });
}

void snap_boundaries(const float* sigma, const float* lum, int64_t h, int64_t w, int radius, float* out,
                     int threads) {
    detail::require_image(sigma, "snap_boundaries: sigma", h, w);
    detail::require_image(lum, "snap_boundaries: luminance", h, w);
    detail::require_image(out, "snap_boundaries: out", h, w);
    if (radius < 0) throw std::invalid_argument("snap_boundaries: radius must be >= 0, got " + std::to_string(radius));
    const int64_t n = h * w;
    if (radius == 0) {
        if (out != sigma) std::memcpy(out, sigma, static_cast<std::size_t>(n) * sizeof(float));
        return;
    }
    // scratch: q, lo, hi, pos, then four planes for the window means and their inputs
    Buffer scratch = buffer(8 * n);
    float* const q = scratch.get();
    float* const lo = q + n;
    float* const hi = lo + n;
    float* const pos = hi + n;
    float* const p0 = pos + n;  // near_lo, then its mean n_lo
    float* const p1 = p0 + n;   // near_hi, then n_hi
    float* const p2 = p1 + n;   // q * near_lo, then ...
    float* const p3 = p2 + n;   // q * near_hi
    snap_evidence(lum, h, w, q, threads);
    min_max_filter(sigma, h, w, radius, lo, hi, threads);
    // NumPy compares float32 arrays with Python floats in float32
    SnapConstants k;
    k.tiny = static_cast<float>(1e-6);
    k.min_span = static_cast<float>(params::kSnapMinSpan);
    k.ref_lo = static_cast<float>(params::kSnapReference);
    k.ref_hi = static_cast<float>(1.0 - params::kSnapReference);
    k.band_lo = static_cast<float>(params::kSnapBand);
    k.band_hi = static_cast<float>(1.0 - params::kSnapBand);
    k.min_share = static_cast<float>(params::kSnapMinShare);
    k.min_contrast = static_cast<float>(params::kSnapMinContrast);
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        snap_sides(sigma, q, lo, hi, pos, p0, p1, p2, p3, y0 * w, y1 * w, k);
    });
    const int64_t box_r = static_cast<int64_t>(radius) + params::kSnapReferenceMargin;
    Buffer more = buffer(3 * n);
    float* const n_lo = more.get();
    float* const n_hi = n_lo + n;
    float* const t = n_hi + n;
    box_filter(p0, n_lo, h, w, box_r, threads);
    box_filter(p1, n_hi, h, w, box_r, threads);
    float* const m_lo = p0;  // near_lo and near_hi are no longer needed
    float* const m_hi = p1;
    box_filter(p2, m_lo, h, w, box_r, threads);
    box_filter(p3, m_hi, h, w, box_r, threads);
    float* const cond = p2;
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        snap_weights(q, lo, hi, pos, n_lo, n_hi, m_lo, m_hi, t, cond, y0 * w, y1 * w, k);
    });
    float* const ts = p3;
    box3_mean(t, ts, h, w, threads);
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) { snap_apply(sigma, lo, hi, cond, ts, out, y0 * w, y1 * w); });
}

}  // namespace stages
}  // namespace fastdefocus
