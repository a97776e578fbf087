// Box filter and (weighted, iterative) guided filter kernels.
//
// Scheme: every output row y gets the vertical window sums of K per-pixel
// quantities in a double "column sum" row (initialised once per thread chunk
// from per-source-row multiplicities, then slid one row at a time: + row
// y+r, - row y-r-1, folded by reflection), a double prefix sum along x, and
// the horizontal window sum from two prefix values (or, at the left/right
// borders and for windows wider than the image, from a precomputed
// decomposition into whole reflection periods plus partial prefix sums).
// Work per pixel is therefore independent of the radius.
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

#include "parallel.hpp"
#include "scratch.hpp"

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

constexpr int64_t kMaxRadius = int64_t(1) << 40;

int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

// F(m) = sum of the first m entries (negative m: minus the sum of the m
// entries before 0) of the reflect-extended sequence, expressed through the
// prefix sums S[0..n] of the original sequence:
//   F(m) = qn*S[n] + qn1*S[n-1] + q1*S[1] + s*S[i].
struct PrefixTerm {
    int64_t qn, qn1, q1, s, i;
};

PrefixTerm prefix_term(int64_t m, int64_t n) {
    if (n == 1) return PrefixTerm{m, 0, 0, 0, 0};  // F(m) = m * x0 = m * S[1]
    const int64_t period = 2 * (n - 1);          // period sum T = S[n]+S[n-1]-S[1]
    const int64_t q = floordiv(m, period);
    const int64_t mp = m - q * period;  // in [0, period)
    if (mp <= n) return PrefixTerm{q, q, -q, 1, mp};
    // entries n..mp-1 mirror back onto x[P-mp+1 .. n-2]
    return PrefixTerm{q + 1, q + 1, -q, -1, period - mp + 1};
}

// Window sum F(x+r+1) - F(x-r) for a border pixel x.
struct BorderWindow {
    int64_t x;
    double cn, cn1, c1, s1, s2;
    int64_t i1, i2;
};

struct HorizontalPlan {
    int64_t n = 0, r = 0;
    int64_t ib = 0, ie = 0;  // interior [ib, ie): plain S[x+r+1] - S[x-r]
    std::vector<BorderWindow> border;
};

HorizontalPlan make_horizontal_plan(int64_t n, int64_t r) {
    HorizontalPlan hp;
    hp.n = n;
    hp.r = r;
    hp.ib = std::min(r, n);
    hp.ie = std::max(hp.ib, n - r);
    auto add = [&](int64_t x) {
        const PrefixTerm hi = prefix_term(x + r + 1, n);
        const PrefixTerm lo = prefix_term(x - r, n);
        hp.border.push_back(BorderWindow{x, static_cast<double>(hi.qn - lo.qn),
                                         static_cast<double>(hi.qn1 - lo.qn1),
                                         static_cast<double>(hi.q1 - lo.q1),
                                         static_cast<double>(hi.s), static_cast<double>(-lo.s),
                                         hi.i, lo.i});
    };
    for (int64_t x = 0; x < hp.ib; ++x) add(x);
    for (int64_t x = hp.ie; x < n; ++x) add(x);
    return hp;
}

// Multiplicity of every source index in the extended window [a, b].
void window_counts(int64_t a, int64_t b, int64_t n, std::vector<double>& cnt) {
    cnt.assign(static_cast<std::size_t>(n), 0.0);
    const int64_t len = b - a + 1;
    if (n == 1) {
        cnt[0] = static_cast<double>(len);
        return;
    }
    const int64_t period = 2 * (n - 1);
    const int64_t q = len / period;
    const int64_t rem = len - q * period;
    if (q > 0) {
        for (int64_t k = 0; k < n; ++k)
            cnt[static_cast<std::size_t>(k)] = static_cast<double>((k == 0 || k == n - 1) ? q : 2 * q);
    }
    const int64_t start = a + q * period;
    for (int64_t j = start; j < start + rem; ++j) cnt[static_cast<std::size_t>(reflect_index(j, n))] += 1.0;
}

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

double inverse_window_size(int64_t r) {
    const double side = 2.0 * static_cast<double>(r) + 1.0;
    return 1.0 / (side * side);
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

// ----------------------------------------------------------------- engine

// Independent partial-sum chains used by the prefix sum (latency hiding).
template <int K>
constexpr int prefix_chains() {
    return K >= 4 ? 2 : (K == 2 ? 4 : 8);
}

// pre[(x+1)*K + c] = sum of col[c*w + x'] over x' in [0, x]; pre[c] = 0
// (col is channel-major, pre pixel-major).  The row is cut into G segments
// summed in one interleaved loop (independent dependency chains), then the
// segment offsets are added.
template <int K>
void prefix_sums(const double* __restrict col, double* __restrict pre, int64_t w) {
    constexpr int G = prefix_chains<K>();
    for (int c = 0; c < K; ++c) pre[c] = 0.0;
    const int64_t len = w / G;
    if (len < 16) {
        for (int64_t x = 0; x < w; ++x)
            for (int c = 0; c < K; ++c) pre[(x + 1) * K + c] = pre[x * K + c] + col[c * w + x];
        return;
    }
    double acc[G][K];
    for (int g = 0; g < G; ++g)
        for (int c = 0; c < K; ++c) acc[g][c] = 0.0;
    for (int64_t j = 0; j < len; ++j) {
        for (int g = 0; g < G; ++g) {
            const int64_t x = g * len + j;
            for (int c = 0; c < K; ++c) {
                acc[g][c] += col[c * w + x];
                pre[(x + 1) * K + c] = acc[g][c];
            }
        }
    }
    for (int64_t x = G * len; x < w; ++x)
        for (int c = 0; c < K; ++c) {
            acc[G - 1][c] += col[c * w + x];
            pre[(x + 1) * K + c] = acc[G - 1][c];
        }
    for (int g = 1; g < G; ++g) {
        const int64_t begin = g * len;  // pre[begin] is already global
        const int64_t end = (g == G - 1) ? w : (g + 1) * len;
        double off[K];
        for (int c = 0; c < K; ++c) off[c] = pre[begin * K + c];
        for (int64_t x = begin + 1; x <= end; ++x)
            for (int c = 0; c < K; ++c) pre[x * K + c] += off[c];
    }
}

// Vertical window sums ("column sums") of K quantities for one output row at
// a time, sliding down, plus the horizontal window sums.
template <class Source>
class RowBoxer {
  public:
    static constexpr int K = Source::K;

    RowBoxer(const Source& src, int64_t h, int64_t w, int64_t r, const HorizontalPlan& hp)
        : src_(src), h_(h), w_(w), r_(r), hp_(hp),
          buffer_(new double[static_cast<std::size_t>(w) * K + static_cast<std::size_t>(w + 1) * K]) {}

    // Column sums of the window of output row y, from source-row multiplicities.
    void init(int64_t y) {
        double* const __restrict col = buffer_.get();
        std::fill(col, col + w_ * K, 0.0);
        window_counts(y - r_, y + r_, h_, cnt_);
        for (int64_t k = 0; k < h_; ++k) {
            const double c = cnt_[static_cast<std::size_t>(k)];
            if (c == 0.0) continue;
            const typename Source::Row row = src_.row(k);
            for (int64_t x = 0; x < w_; ++x) {
                double q[K];
                row(x, q);
                for (int i = 0; i < K; ++i) col[i * w_ + x] += c * q[i];
            }
        }
        y_ = y;
    }

    // Slides the column sums from row y-1 to row y (y == current + 1).
    void advance() {
        const int64_t y = ++y_;
        const int64_t ra = reflect_index(y + r_, h_), rs = reflect_index(y - r_ - 1, h_);
        if (ra == rs) return;
        double* const __restrict col = buffer_.get();
        const typename Source::Row add = src_.row(ra), sub = src_.row(rs);
        for (int64_t x = 0; x < w_; ++x) {
            double qa[K], qs[K];
            add(x, qa);
            sub(x, qs);
            for (int i = 0; i < K; ++i) col[i * w_ + x] += qa[i] - qs[i];
        }
    }

    // Horizontal window sums of the current row, fed to sink.row(y).
    template <class Sink>
    void emit(const Sink& sink) {
        const double* const __restrict col = buffer_.get();
        double* const __restrict pre = buffer_.get() + w_ * K;
        prefix_sums<K>(col, pre, w_);
        const typename Sink::Row out = sink.row(y_);
        const int64_t n = w_;
        for (const BorderWindow& bw : hp_.border) {
            double s[K];
            for (int c = 0; c < K; ++c)
                s[c] = bw.cn * pre[n * K + c] + bw.cn1 * pre[(n - 1) * K + c] + bw.c1 * pre[K + c] +
                       bw.s1 * pre[bw.i1 * K + c] + bw.s2 * pre[bw.i2 * K + c];
            out(bw.x, s);
        }
        if (hp_.ib < hp_.ie) {  // interior: ib == r, so x - r starts at 0
            const double* const __restrict hi = pre + (hp_.ib + r_ + 1) * K;
            const double* const __restrict lo = pre + (hp_.ib - r_) * K;
            const int64_t len = hp_.ie - hp_.ib;
            for (int64_t j = 0; j < len; ++j) {
                double s[K];
                for (int c = 0; c < K; ++c) s[c] = hi[j * K + c] - lo[j * K + c];
                out(hp_.ib + j, s);
            }
        }
    }

  private:
    Source src_;
    int64_t h_, w_, r_;
    const HorizontalPlan& hp_;
    std::unique_ptr<double[]> buffer_;  // col[K][w] (channel-major) then pre[w+1][K]
    std::vector<double> cnt_;
    int64_t y_ = std::numeric_limits<int64_t>::min() / 2;
};

// Rows per work chunk.  Chunks are claimed dynamically (up to 4 per thread,
// so a late thread does not hold the others up), but each costs about
// `overhead` extra rows of work, kept to <= 1/8 of a chunk, or <= 1/2 while
// that still gives every thread a chunk.
int64_t chunk_rows(int nt, int64_t h, int64_t overhead) {
    if (nt <= 1) return h;
    const int64_t unit = std::max<int64_t>(overhead, 1);
    int64_t n = std::min<int64_t>(4 * static_cast<int64_t>(nt), h / (8 * unit));
    n = std::max(n, std::min<int64_t>(nt, h / (2 * unit)));
    n = std::max<int64_t>(n, 1);
    return (h + n - 1) / n;
}

// Single-stage filter: chunks of rows shared between threads.
template <class Source, class Sink>
void run_single(int nt, const Source& src, const Sink& sink, int64_t h, int64_t w, int64_t r,
                const HorizontalPlan& hp) {
    // a chunk starts with min(2r+1, h) rows of column-sum initialisation,
    // about half as costly as full rows
    const int64_t rows = chunk_rows(nt, h, std::min(2 * r + 1, h) / 2);
    const int64_t nchunks = (h + rows - 1) / rows;
    parallel_chunks(
        nt, nchunks, [&] { return RowBoxer<Source>(src, h, w, r, hp); },
        [&](RowBoxer<Source>& boxer, int64_t chunk) {
            const int64_t y0 = chunk * rows, y1 = std::min(h, y0 + rows);
            boxer.init(y0);
            boxer.emit(sink);
            for (int64_t y = y0 + 1; y < y1; ++y) {
                boxer.advance();
                boxer.emit(sink);
            }
        });
}

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
