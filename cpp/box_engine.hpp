// The box-sum engine of filters.cpp (internal, not installed): K per-pixel double quantities
// summed over (2r+1)^2 windows, reflect-101 at the borders, in work per pixel independent of r.
//
// Scheme: every output row y gets the vertical window sums of K per-pixel
// quantities in a double "column sum" row (initialised once per thread chunk
// from per-source-row multiplicities, then slid one row at a time: + row
// y+r, - row y-r-1, folded by reflection), a double prefix sum along x, and
// the horizontal window sum from two prefix values (or, at the left/right
// borders and for windows wider than the image, from a precomputed
// decomposition into whole reflection periods plus partial prefix sums).
//
// A Source has `static constexpr int K` and row(k), an accessor for source row k whose
// operator()(x, q) fills q[0..K); a Sink has row(y), an accessor for output row y whose
// operator()(x, s) takes the K window sums s[0..K).  run_single(nt, source, sink, h, w, r, plan)
// runs them over chunks of rows shared between threads.  Stages with their own per-pixel
// quantities (refine.cpp's snap) define their own sources and sinks and fuse their elementwise
// work into them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "fastdefocus/filters.hpp"
#include "parallel.hpp"

namespace fastdefocus {
namespace detail {
namespace box {

using std::int64_t;

inline int64_t floordiv(int64_t a, int64_t b) {
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

inline PrefixTerm prefix_term(int64_t m, int64_t n) {
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

inline HorizontalPlan make_horizontal_plan(int64_t n, int64_t r) {
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
inline void window_counts(int64_t a, int64_t b, int64_t n, std::vector<double>& cnt) {
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

inline double inverse_window_size(int64_t r) {
    const double side = 2.0 * static_cast<double>(r) + 1.0;
    return 1.0 / (side * side);
}

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
inline int64_t chunk_rows(int nt, int64_t h, int64_t overhead) {
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

}  // namespace box
}  // namespace detail
}  // namespace fastdefocus
