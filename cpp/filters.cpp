// Box filter and (weighted, iterative) guided filter kernels, on the box-sum engine of
// box_engine.hpp
// (double sums, reflect-101 as cv2.blur; work per pixel independent of the radius).
#include "fastdefocus/filters.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "box_engine.hpp"
#include "scratch.hpp"
#include "parallel.hpp"

#if defined(__linux__)
#include <sched.h>
#endif

namespace fastdefocus {

using std::int64_t;

std::int64_t reflect_index(std::int64_t j, std::int64_t n) noexcept {
    if (n <= 1) return 0;
    const int64_t period = 2 * (n - 1);
    int64_t m = j % period;
    if (m < 0) m += period;
    return m < n ? m : period - m;
}

bool built_with_openmp() noexcept {
#ifdef FASTDEFOCUS_USE_OPENMP
    return true;
#else
    return false;
#endif
}

int default_threads() noexcept {
    for (const char* name : {"FASTDEFOCUS_NUM_THREADS", "OMP_NUM_THREADS"}) {
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0') continue;
        char* end = nullptr;
        const long n = std::strtol(value, &end, 10);
        if (end != value && n >= 1) return static_cast<int>(std::min(n, 1024L));
    }
#ifdef FASTDEFOCUS_USE_OPENMP
    return std::max(1, omp_get_max_threads());
#else
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    const unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(std::min(hc, 1024u));
#endif
}

namespace detail {

int resolve_threads(int threads, int64_t items, int64_t pixels) noexcept {
    int nt = threads;
    if (nt <= 0) nt = pixels < kMinParallelPixels ? 1 : default_threads();  // explicit counts are kept
    if (items < nt) nt = static_cast<int>(std::max<int64_t>(items, 1));
    return std::max(nt, 1);
}

ScanResult scan_values(const float* data, int64_t n, int threads) {
    const int nt = resolve_threads(threads, n, n);
    const int64_t nchunks = nt;
    std::vector<unsigned> bad(static_cast<std::size_t>(nchunks) * 16, 0u);
    parallel_for(nt, nchunks, [&](int64_t t) {
        const int64_t b = n * t / nchunks, e = n * (t + 1) / nchunks;
        unsigned nonfinite = 0, negative = 0;
        for (int64_t i = b; i < e; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, data + i, sizeof bits);
            nonfinite |= static_cast<unsigned>((bits & 0x7f800000u) == 0x7f800000u);
            negative |= static_cast<unsigned>((bits >> 31) & static_cast<unsigned>((bits & 0x7fffffffu) != 0u));
        }
        bad[static_cast<std::size_t>(t) * 16] = nonfinite | (negative << 1);
    });
    unsigned all = 0;
    for (int64_t t = 0; t < nchunks; ++t) all |= bad[static_cast<std::size_t>(t) * 16];
    return ScanResult{(all & 1u) == 0u, (all & 2u) != 0u};
}

namespace {

using namespace box;

constexpr int64_t kMaxRadius = int64_t(1) << 40;

void check_image(const void* p, const char* name, int64_t h, int64_t w) {
    if (p == nullptr) throw std::invalid_argument(std::string(name) + " must not be null");
    if (h < 1 || w < 1)
        throw std::invalid_argument("image must be at least 1x1, got " + std::to_string(h) + "x" +
                                    std::to_string(w));
    if (h > std::numeric_limits<int64_t>::max() / w)
        throw std::invalid_argument("image too large");
}

void check_radius(int64_t r) {
    if (r < 0 || r > kMaxRadius)
        throw std::invalid_argument("radius must be in [0, 2**40], got " + std::to_string(r));
}

// ---------------------------------------------------------------- sources
// A source yields K double quantities per pixel; row(k) gives an accessor
// for source row k whose operator()(x, q) fills q[0..K).

struct BoxSource {
    static constexpr int K = 1;
    const float* p;
    int64_t w;
    struct Row {
        const float* __restrict p;
        inline void operator()(int64_t x, double* q) const { q[0] = p[x]; }
    };
    Row row(int64_t k) const { return Row{p + k * w}; }
};

struct GuidedSource {
    static constexpr int K = 4;
    const float* guide;
    const float* p;
    int64_t w;
    struct Row {
        const float* __restrict g;
        const float* __restrict p;
        inline void operator()(int64_t x, double* q) const {
            const double gv = g[x], pv = p[x];
            q[0] = gv;
            q[1] = pv;
            q[2] = gv * pv;
            q[3] = gv * gv;
        }
    };
    Row row(int64_t k) const { return Row{guide + k * w, p + k * w}; }
};

struct WeightedGuidedSource {
    static constexpr int K = 5;
    const float* guide;
    const float* p;
    const float* weight;
    int64_t w;
    struct Row {
        const float* __restrict g;
        const float* __restrict p;
        const float* __restrict wt;
        inline void operator()(int64_t x, double* q) const {
            const double gv = g[x], pv = p[x];
            const double we = static_cast<double>(wt[x]) + kWeightFloor;
            const double wg = we * gv;
            q[0] = we;
            q[1] = wg;
            q[2] = we * pv;
            q[3] = wg * pv;
            q[4] = wg * gv;
        }
    };
    Row row(int64_t k) const { return Row{guide + k * w, p + k * w, weight + k * w}; }
};

// Coefficients a, b of source row k kept in slot k % slots of a ring buffer.
struct CoefRingSource {
    static constexpr int K = 2;
    const float* a;
    const float* b;
    int64_t w;
    int64_t slots;
    struct Row {
        const float* __restrict a;
        const float* __restrict b;
        inline void operator()(int64_t x, double* q) const {
            q[0] = a[x];
            q[1] = b[x];
        }
    };
    Row row(int64_t k) const {
        const int64_t off = (k % slots) * w;
        return Row{a + off, b + off};
    }
};

// ------------------------------------------------------------------ sinks
// A sink consumes the K window sums of every pixel; row(y) gives an accessor
// for output row y whose operator()(x, s) takes s[0..K).

struct BoxSink {
    float* out;
    int64_t w;
    double inv_count;
    struct Row {
        float* __restrict out;
        double inv_count;
        inline void operator()(int64_t x, const double* s) const {
            out[x] = static_cast<float>(s[0] * inv_count);
        }
    };
    Row row(int64_t y) const { return Row{out + y * w, inv_count}; }
};

inline void store_coefficients(double mi, double mp, double ip, double ii, double eps, float* a,
                               float* b) {
    const double cov = ip - mi * mp;
    double var = ii - mi * mi;
    var = var > 0.0 ? var : 0.0;
    const double ak = cov / (var + eps);
    *a = static_cast<float>(ak);
    *b = static_cast<float>(mp - ak * mi);
}

struct CoefRingSink {
    float* a;
    float* b;
    int64_t w;
    int64_t slots;
    double inv_count, eps;
    struct Row {
        float* __restrict a;
        float* __restrict b;
        double inv_count, eps;
        inline void operator()(int64_t x, const double* s) const {
            store_coefficients(s[0] * inv_count, s[1] * inv_count, s[2] * inv_count, s[3] * inv_count,
                               eps, a + x, b + x);
        }
    };
    Row row(int64_t y) const {
        const int64_t off = (y % slots) * w;
        return Row{a + off, b + off, inv_count, eps};
    }
};

struct WeightedCoefRingSink {
    float* a;
    float* b;
    int64_t w;
    int64_t slots;
    double eps;
    struct Row {
        float* __restrict a;
        float* __restrict b;
        double eps;
        inline void operator()(int64_t x, const double* s) const {
            const double iw = 1.0 / s[0];
            store_coefficients(s[1] * iw, s[2] * iw, s[3] * iw, s[4] * iw, eps, a + x, b + x);
        }
    };
    Row row(int64_t y) const {
        const int64_t off = (y % slots) * w;
        return Row{a + off, b + off, eps};
    }
};

// Final sinks of the guided filter: they take the window sums of a and b.
// OutputSink applies the mean coefficients to the guide (q = A I + B, fused);
// MeanCoefSink stores A and B themselves.

struct OutputSink {
    const float* guide;
    float* out;
    int64_t w;
    double inv_count;
    struct Row {
        const float* __restrict g;
        float* __restrict out;
        double inv_count;
        inline void operator()(int64_t x, const double* s) const {
            out[x] = static_cast<float>((s[0] * g[x] + s[1]) * inv_count);
        }
    };
    Row row(int64_t y) const { return Row{guide + y * w, out + y * w, inv_count}; }
};

struct MeanCoefSink {
    float* a;
    float* b;
    int64_t w;
    double inv_count;
    struct Row {
        float* __restrict a;
        float* __restrict b;
        double inv_count;
        inline void operator()(int64_t x, const double* s) const {
            a[x] = static_cast<float>(s[0] * inv_count);
            b[x] = static_cast<float>(s[1] * inv_count);
        }
    };
    Row row(int64_t y) const { return Row{a + y * w, b + y * w, inv_count}; }
};

// Guided filter, fused: each thread computes the coefficients a, b of the
// rows its output rows need (its own rows plus a halo of r rows each side)
// into a ring buffer of min(2r+2, h) rows, and box-filters them right away
// into `out` (a final sink: OutputSink or MeanCoefSink).
// For output row y the ring holds rows [min(h-1, y+r) - slots + 1,
// min(h-1, y+r)], which contains every (reflected) row of the window of y
// and the row leaving it.
template <class Stage1, class MakeCoefSink, class FinalSink>
void run_guided(int nt, const Stage1& stage1, MakeCoefSink make_coef_sink, const FinalSink& out,
                int64_t h, int64_t w, int64_t r, const HorizontalPlan& hp) {
    const int64_t slots = std::min<int64_t>(2 * r + 2, h);
    // a chunk recomputes up to 2r coefficient rows of its neighbours
    const int64_t rows = chunk_rows(nt, h, std::min(2 * r, h));
    const int64_t nchunks = (h + rows - 1) / rows;
    using CoefSink = decltype(make_coef_sink(static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                                             int64_t(1)));
    struct State {
        std::unique_ptr<float[]> coef;  // ring buffers of a and b
        CoefSink sink;
        RowBoxer<Stage1> boxer1;
        RowBoxer<CoefRingSource> boxer2;
    };
    parallel_chunks(
        nt, nchunks,
        [&] {
            const std::size_t ring = static_cast<std::size_t>(slots * w);
            std::unique_ptr<float[]> coef(new float[2 * ring]);
            float* const a = coef.get();
            float* const b = a + ring;
            return State{std::move(coef), make_coef_sink(a, b, slots), RowBoxer<Stage1>(stage1, h, w, r, hp),
                         RowBoxer<CoefRingSource>(CoefRingSource{a, b, w, slots}, h, w, r, hp)};
        },
        [&](State& st, int64_t chunk) {
            const int64_t y0 = chunk * rows, y1 = std::min(h, y0 + rows);
            const int64_t first = std::max<int64_t>(0, y0 - r);  // first coefficient row needed
            int64_t next = first;                                // next coefficient row to compute
            for (int64_t y = y0; y < y1; ++y) {
                const int64_t need = std::min(h - 1, y + r);
                for (; next <= need; ++next) {
                    if (next == first)
                        st.boxer1.init(next);
                    else
                        st.boxer1.advance();
                    st.boxer1.emit(st.sink);
                }
                if (y == y0)
                    st.boxer2.init(y);
                else
                    st.boxer2.advance();
                st.boxer2.emit(out);
            }
        });
}

// One guided filter pass of `src` (the only code computing the coefficients
// a, b): the window sums of a and b go to `out`, a final sink.
template <class FinalSink>
void guided_pass(int nt, const float* src, const float* guide, const float* weights, const FinalSink& out,
                 int64_t h, int64_t w, int64_t r, double eps, const HorizontalPlan& hp) {
    if (weights != nullptr) {
        run_guided(
            nt, WeightedGuidedSource{guide, src, weights, w},
            [&](float* a, float* b, int64_t slots) { return WeightedCoefRingSink{a, b, w, slots, eps}; }, out, h,
            w, r, hp);
    } else {
        const double inv = inverse_window_size(r);
        run_guided(
            nt, GuidedSource{guide, src, w},
            [&](float* a, float* b, int64_t slots) { return CoefRingSink{a, b, w, slots, inv, eps}; }, out, h, w,
            r, hp);
    }
}

void check_guided_args(const float* src, const float* guide, int64_t h, int64_t w, int64_t radius,
                       double eps) {
    check_image(src, "src", h, w);
    check_image(guide, "guide", h, w);
    check_radius(radius);
    if (!(eps > 0.0) || !std::isfinite(eps))
        throw std::invalid_argument("eps must be a finite number > 0, got " + std::to_string(eps));
}

}  // namespace
}  // namespace detail

void box_filter(const float* src, float* dst, int64_t h, int64_t w, int64_t radius, int threads) {
    using namespace detail;
    check_image(src, "src", h, w);
    check_image(dst, "dst", h, w);
    check_radius(radius);
    const HorizontalPlan hp = make_horizontal_plan(w, radius);
    const int nt = resolve_threads(threads, h, h * w);
    run_single(nt, BoxSource{src, w}, BoxSink{dst, w, inverse_window_size(radius)}, h, w, radius, hp);
}

void iterative_guided_filter(const float* src, const float* guide, const float* weights, float* dst,
                             int64_t h, int64_t w, int64_t radius, double eps, int iterations,
                             int threads) {
    using namespace detail;
    check_guided_args(src, guide, h, w, radius, eps);
    check_image(dst, "dst", h, w);
    if (iterations < 1)
        throw std::invalid_argument("iterations must be >= 1, got " + std::to_string(iterations));

    const HorizontalPlan hp = make_horizontal_plan(w, radius);
    const int64_t npix = h * w;
    const int nt = resolve_threads(threads, h, npix);
    const double inv = inverse_window_size(radius);

    // A pass reads its source while other rows of its output are written, so
    // passes alternate between dst and a temporary such that the last one
    // lands in dst (and an in-place call goes through the temporary).
    detail::Scratch<float> tmp;  // from the thread's scratch pool (scratch.hpp)
    if (iterations > 1 || src == dst) tmp = detail::Scratch<float>(static_cast<std::size_t>(npix));
    const float* cur = src;
    for (int it = 0; it < iterations; ++it) {
        float* target = ((iterations - 1 - it) % 2 == 0) ? dst : tmp.get();
        if (target == cur) target = (target == dst) ? tmp.get() : dst;  // only when src == dst
        guided_pass(nt, cur, guide, weights, OutputSink{guide, target, w, inv}, h, w, radius, eps, hp);
        cur = target;
    }
    if (cur != dst) std::memcpy(dst, cur, static_cast<std::size_t>(npix) * sizeof(float));
}

void guided_filter(const float* src, const float* guide, const float* weights, float* dst, int64_t h,
                   int64_t w, int64_t radius, double eps, int threads) {
    iterative_guided_filter(src, guide, weights, dst, h, w, radius, eps, 1, threads);
}

void guided_coefficients(const float* src, const float* guide, const float* weights, float* a, float* b,
                         int64_t h, int64_t w, int64_t radius, double eps, int threads) {
    using namespace detail;
    check_guided_args(src, guide, h, w, radius, eps);
    check_image(a, "a", h, w);
    check_image(b, "b", h, w);
    const float* const inputs[] = {src, guide, weights};
    for (const float* in : inputs)
        if (in != nullptr && (in == a || in == b))
            throw std::invalid_argument("guided_coefficients: a and b must not be an input buffer");
    if (a == b) throw std::invalid_argument("guided_coefficients: a and b must be distinct buffers");
    const HorizontalPlan hp = make_horizontal_plan(w, radius);
    const int nt = resolve_threads(threads, h, h * w);
    guided_pass(nt, src, guide, weights, MeanCoefSink{a, b, w, inverse_window_size(radius)}, h, w, radius, eps,
                hp);
}

}  // namespace fastdefocus
