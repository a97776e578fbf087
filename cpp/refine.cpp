// The refine stage (stages/refine.py) and the boundary snap (stages/snap.py), float32 math in
// NumPy's order; the box filters are filters.cpp's (double sums, reflect-101, as cv2.blur's).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "box_engine.hpp"
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

}  // namespace

void min_max_filter(const float* src, int64_t h, int64_t w, int64_t radius, float* lo, float* hi, int threads) {
    detail::require_image(src, "min_max_filter: src", h, w);
    if (lo == nullptr || hi == nullptr) throw std::invalid_argument("min_max_filter: outputs must not be null");
    if (radius < 0) throw std::invalid_argument("min_max_filter: radius must be >= 0");
    const int64_t r = std::min(radius, std::max(h, w));
    Buffer rmin = buffer(h * w), rmax = buffer(h * w);
    // along each row: blocks of up to 8 image rows, transposed so that each pixel column of
    // the block is one "row" of up to 8 lanes (vectorised like the column pass below)
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        constexpr int64_t kBlock = 8;
        const int64_t m = w + 2 * r;
        std::vector<float> in(static_cast<std::size_t>(kBlock * w)), out_lo(in.size()), out_hi(in.size());
        std::vector<float> sc(static_cast<std::size_t>(4 * m * kBlock));
        for (int64_t yb = y0; yb < y1; yb += kBlock) {
            const int64_t lanes = std::min(kBlock, y1 - yb);
            for (int64_t j = 0; j < lanes; ++j) {
                const float* row = src + (yb + j) * w;
                for (int64_t x = 0; x < w; ++x) in[static_cast<std::size_t>(x * lanes + j)] = row[x];
            }
            const int64_t ml = m * lanes;
            running_min_max(in.data(), in.data(), w, lanes, lanes, r, out_lo.data(), out_hi.data(), lanes,
                            sc.data(), sc.data() + ml, sc.data() + 2 * ml, sc.data() + 3 * ml);
            for (int64_t j = 0; j < lanes; ++j) {
                float* lo_row = rmin.get() + (yb + j) * w;
                float* hi_row = rmax.get() + (yb + j) * w;
                for (int64_t x = 0; x < w; ++x) {
                    lo_row[x] = out_lo[static_cast<std::size_t>(x * lanes + j)];
                    hi_row[x] = out_hi[static_cast<std::size_t>(x * lanes + j)];
                }
            }
        }
    });
    // along the columns: image rows of `lanes` columns, in bands of columns between threads
    const int nt = detail::resolve_threads(threads, w, h * w);
    const int64_t band = std::min<int64_t>(w, std::max<int64_t>(256, (w + nt - 1) / nt));
    const int64_t nbands = (w + band - 1) / band;
    detail::parallel_for(nt, nbands, [&](int64_t c) {
        const int64_t x0 = c * band, lanes = std::min(band, w - x0);
        const int64_t m = (h + 2 * r) * lanes;
        std::vector<float> sc(static_cast<std::size_t>(4 * m));
        running_min_max(rmin.get() + x0, rmax.get() + x0, h, lanes, w, r, lo + x0, hi + x0, w, sc.data(),
                        sc.data() + m, sc.data() + 2 * m, sc.data() + 3 * m);
    });
}

namespace {

// The snap's window means run on the box-sum engine (box_engine.hpp) with sources and sinks
// that compute the snap's per-pixel quantities on the fly (the NumPy stage's float32 math in
// its order; the window sums in double, as box_filter's): no intermediate planes.

// Squared forward differences to the right and down neighbours (0 beyond the last column /
// row) of the luminance and of its blur (snap.py _pair_energy before its 3 x 3 mean).
struct PairEnergySource {
    static constexpr int K = 2;
    const float* lum;
    const float* blurred;
    int64_t h, w;
    struct Row {
        const float* __restrict l;
        const float* __restrict l1;  // the next row, or nullptr on the last
        const float* __restrict b;
        const float* __restrict b1;
        int64_t w;
        static inline float energy(const float* r, const float* r1, int64_t x, int64_t w) {
            float e = 0.0f;
            if (x + 1 < w) {
                const float d = r[x + 1] - r[x];
                e = d * d;
            }
            if (r1 != nullptr) {
                const float d = r1[x] - r[x];
                const float d2 = d * d;
                e = e + d2;
            }
            return e;
        }
        inline void operator()(int64_t x, double* q) const {
            q[0] = energy(l, l1, x, w);
            q[1] = energy(b, b1, x, w);
        }
    };
    Row row(int64_t k) const {
        const bool last = k + 1 >= h;
        return Row{lum + k * w, last ? nullptr : lum + (k + 1) * w, blurred + k * w,
                   last ? nullptr : blurred + (k + 1) * w, w};
    }
};

// q = log((blurred energy + floor) / (energy + floor)) from the 3 x 3 means.
struct EvidenceSink {
    float* out;
    int64_t w;
    double inv_count;
    float floor;
    struct Row {
        float* __restrict out;
        double inv_count;
        float floor;
        inline void operator()(int64_t x, const double* s) const {
            const float energy = static_cast<float>(s[0] * inv_count);
            const float blurred = static_cast<float>(s[1] * inv_count);
            out[x] = std::log((blurred + floor) / (energy + floor));
        }
    };
    Row row(int64_t y) const { return Row{out + y * w, inv_count, floor}; }
};

struct SnapConstants {
    float tiny, min_span, ref_lo, ref_hi, band_lo, band_hi, min_share, min_contrast;
};

// Position of sigma in its window's [lo, hi] (0 where the span is below tiny).
inline float snap_position(float sigma, float lo, float hi, const SnapConstants& k) {
    const float span = hi - lo;
    const float d = sigma - lo;
    return d / (span > k.tiny ? span : k.tiny);
}

// The reference masks near_lo / near_hi and q times them (before their window means).
struct SnapSidesSource {
    static constexpr int K = 4;
    const float* sigma;
    const float* q;
    const float* lo;
    const float* hi;
    int64_t w;
    SnapConstants k;
    struct Row {
        const float* __restrict sigma;
        const float* __restrict q;
        const float* __restrict lo;
        const float* __restrict hi;
        SnapConstants k;
        inline void operator()(int64_t x, double* out) const {
            const float p = snap_position(sigma[x], lo[x], hi[x], k);
            const float zone = hi[x] - lo[x] > k.min_span ? 1.0f : 0.0f;
            const float a = p < k.ref_lo ? zone : 0.0f;
            const float c = p > k.ref_hi ? zone : 0.0f;
            out[0] = a;
            out[1] = c;
            out[2] = q[x] * a;
            out[3] = q[x] * c;
        }
    };
    Row row(int64_t r) const { return Row{sigma + r * w, q + r * w, lo + r * w, hi + r * w, k}; }
};

// From the window means of the masks: t (before its 3 x 3 mean) and the snap condition (1 / 0).
struct SnapWeightsSink {
    const float* sigma;
    const float* q;
    const float* lo;
    const float* hi;
    float* t;
    float* cond;
    int64_t w;
    double inv_count;
    SnapConstants k;
    struct Row {
        const float* __restrict sigma;
        const float* __restrict q;
        const float* __restrict lo;
        const float* __restrict hi;
        float* __restrict t;
        float* __restrict cond;
        double inv_count;
        SnapConstants k;
        inline void operator()(int64_t x, const double* s) const {
            const float n_lo = static_cast<float>(s[0] * inv_count);
            const float n_hi = static_cast<float>(s[1] * inv_count);
            const float m_lo = static_cast<float>(s[2] * inv_count);
            const float m_hi = static_cast<float>(s[3] * inv_count);
            const float ql = m_lo / (n_lo > k.tiny ? n_lo : k.tiny);
            const float qh = m_hi / (n_hi > k.tiny ? n_hi : k.tiny);
            const float c = qh - ql;
            const float v = (q[x] - ql) / (c > k.tiny ? c : k.tiny);
            t[x] = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
            const float pos = snap_position(sigma[x], lo[x], hi[x], k);
            float ok = hi[x] - lo[x] > k.min_span ? 1.0f : 0.0f;
            ok = n_lo > k.min_share ? ok : 0.0f;
            ok = n_hi > k.min_share ? ok : 0.0f;
            ok = c > k.min_contrast ? ok : 0.0f;
            ok = pos > k.band_lo ? ok : 0.0f;
            ok = pos < k.band_hi ? ok : 0.0f;
            cond[x] = ok;
        }
    };
    Row row(int64_t y) const {
        const int64_t o = y * w;
        return Row{sigma + o, q + o, lo + o, hi + o, t + o, cond + o, inv_count, k};
    }
};

struct PlaneSource {
    static constexpr int K = 1;
    const float* p;
    int64_t w;
    struct Row {
        const float* __restrict p;
        inline void operator()(int64_t x, double* q) const { q[0] = p[x]; }
    };
    Row row(int64_t k) const { return Row{p + k * w}; }
};

// out = cond ? lo + mean3x3(t) * (hi - lo) : sigma (out may be sigma: each pixel reads its own).
struct SnapApplySink {
    const float* sigma;
    const float* lo;
    const float* hi;
    const float* cond;
    float* out;
    int64_t w;
    double inv_count;
    struct Row {
        const float* sigma;
        const float* __restrict lo;
        const float* __restrict hi;
        const float* __restrict cond;
        float* out;
        double inv_count;
        inline void operator()(int64_t x, const double* s) const {
            const float t = static_cast<float>(s[0] * inv_count);
            const float span = hi[x] - lo[x];
            const float d = t * span;
            const float snapped = lo[x] + d;
            const float v = sigma[x];
            out[x] = cond[x] != 0.0f ? snapped : v;
        }
    };
    Row row(int64_t y) const {
        const int64_t o = y * w;
        return Row{sigma + o, lo + o, hi + o, cond + o, out + o, inv_count};
    }
};

template <class Source, class Sink>
void box_sums(const Source& src, const Sink& sink, int64_t h, int64_t w, int64_t r, int threads) {
    const detail::box::HorizontalPlan hp = detail::box::make_horizontal_plan(w, r);
    detail::box::run_single(detail::resolve_threads(threads, h, h * w), src, sink, h, w, r, hp);
}

}  // namespace

void snap_evidence(const float* lum, int64_t h, int64_t w, float* out, int threads) {
    detail::require_image(lum, "snap_evidence: luminance", h, w);
    detail::require_image(out, "snap_evidence: out", h, w);
    Buffer blurred = buffer(h * w);
    gaussian_blur(lum, blurred.get(), h, w, params::kSharpnessBlur, threads);
    box_sums(PairEnergySource{lum, blurred.get(), h, w},
             EvidenceSink{out, w, detail::box::inverse_window_size(1), static_cast<float>(params::kSnapEnergyFloor)},
             h, w, 1, threads);
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
    Buffer scratch = buffer(5 * n);  // q, lo, hi, t, cond
    float* const q = scratch.get();
    float* const lo = q + n;
    float* const hi = lo + n;
    float* const t = hi + n;
    float* const cond = t + n;
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
    const int64_t box_r = static_cast<int64_t>(radius) + params::kSnapReferenceMargin;
    box_sums(SnapSidesSource{sigma, q, lo, hi, w, k},
             SnapWeightsSink{sigma, q, lo, hi, t, cond, w, detail::box::inverse_window_size(box_r), k}, h, w, box_r,
             threads);
    box_sums(PlaneSource{t, w}, SnapApplySink{sigma, lo, hi, cond, out, w, detail::box::inverse_window_size(1)}, h, w, 1,
             threads);
}

}  // namespace stages
}  // namespace fastdefocus
