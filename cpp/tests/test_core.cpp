// Smoke test of the C++ core against direct (naive) window sums.
// Build with -DFASTDEFOCUS_BUILD_TESTS=ON (and -DFASTDEFOCUS_SANITIZE=ON for
// ASan/UBSan), then run ctest.
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

#include "../parallel.hpp"
#include "fastdefocus/filters.hpp"

using fastdefocus::reflect_index;
using std::int64_t;

static int failures = 0;

static void expect_close(double got, double want, double tol, const char* what, int64_t h, int64_t w,
                         int64_t r) {
    if (!(std::fabs(got - want) <= tol)) {
        if (failures < 20)
            std::printf("FAIL %s h=%lld w=%lld r=%lld: got %.9g want %.9g\n", what, (long long)h,
                        (long long)w, (long long)r, got, want);
        ++failures;
    }
}

static std::vector<double> naive_box(const std::vector<double>& a, int64_t h, int64_t w, int64_t r) {
    std::vector<double> out(static_cast<size_t>(h * w));
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
            double s = 0;
            for (int64_t dy = -r; dy <= r; ++dy)
                for (int64_t dx = -r; dx <= r; ++dx)
                    s += a[static_cast<size_t>(reflect_index(y + dy, h) * w + reflect_index(x + dx, w))];
            out[static_cast<size_t>(y * w + x)] = s / double((2 * r + 1) * (2 * r + 1));
        }
    return out;
}

int main() {
    std::mt19937 gen(1234);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    const int64_t shapes[][2] = {{1, 1}, {1, 7}, {6, 1}, {2, 2}, {5, 9}, {13, 8}, {40, 37}, {300, 11}};
    const int64_t radii[] = {0, 1, 2, 3, 5, 8, 20, 41};
    for (auto& sh : shapes) {
        const int64_t h = sh[0], w = sh[1], n = h * w;
        std::vector<float> p(static_cast<size_t>(n)), g(static_cast<size_t>(n)), wt(static_cast<size_t>(n));
        for (auto& v : p) v = uni(gen);
        for (auto& v : g) v = uni(gen);
        for (auto& v : wt) v = uni(gen) < 0.3f ? 0.0f : uni(gen);
        std::vector<double> pd(p.begin(), p.end()), gd(g.begin(), g.end()), wd(wt.begin(), wt.end());
        for (int64_t r : radii) {
            if (n * (2 * r + 1) * (2 * r + 1) > 4000000) continue;  // keep the naive sums quick
            std::vector<float> out(static_cast<size_t>(n));
            for (int threads : {1, 3, 5}) {
                fastdefocus::box_filter(p.data(), out.data(), h, w, r, threads);
                const auto ref = naive_box(pd, h, w, r);
                for (int64_t i = 0; i < n; ++i) expect_close(out[i], ref[i], 1e-5, "box", h, w, r);
            }
            // weighted guided filter, naive
            const double eps = 1e-2;
            std::vector<double> we(wd), wi(static_cast<size_t>(n)), wp(static_cast<size_t>(n)),
                wip(static_cast<size_t>(n)), wii(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) {
                we[i] += 1e-6;
                wi[i] = we[i] * gd[i];
                wp[i] = we[i] * pd[i];
                wip[i] = we[i] * gd[i] * pd[i];
                wii[i] = we[i] * gd[i] * gd[i];
            }
            const auto bw = naive_box(we, h, w, r), bi = naive_box(wi, h, w, r), bp = naive_box(wp, h, w, r),
                       bip = naive_box(wip, h, w, r), bii = naive_box(wii, h, w, r);
            std::vector<double> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) {
                const double mi = bi[i] / bw[i], mp = bp[i] / bw[i];
                a[i] = (bip[i] / bw[i] - mi * mp) / (bii[i] / bw[i] - mi * mi + eps);
                b[i] = mp - a[i] * mi;
            }
            const auto ba = naive_box(a, h, w, r), bb = naive_box(b, h, w, r);
            for (int threads : {1, 2, 4}) {
                fastdefocus::guided_filter(p.data(), g.data(), wt.data(), out.data(), h, w, r, eps, threads);
                for (int64_t i = 0; i < n; ++i) expect_close(out[i], ba[i] * gd[i] + bb[i], 1e-4, "wgf", h, w, r);
            }
            // mean coefficients A = box(a), B = box(b) (same code as the filter)
            {
                std::vector<float> ca(static_cast<size_t>(n)), cb(static_cast<size_t>(n));
                for (int threads : {1, 3}) {
                    fastdefocus::guided_coefficients(p.data(), g.data(), wt.data(), ca.data(), cb.data(), h, w,
                                                     r, eps, threads);
                    for (int64_t i = 0; i < n; ++i) {
                        expect_close(ca[i], ba[i], 1e-4, "coef A", h, w, r);
                        expect_close(cb[i], bb[i], 1e-4, "coef B", h, w, r);
                    }
                }
            }
            // in place, iterated twice
            std::vector<float> q(p);
            fastdefocus::iterative_guided_filter(q.data(), g.data(), wt.data(), q.data(), h, w, r, eps, 2, 3);
            fastdefocus::guided_filter(p.data(), g.data(), wt.data(), out.data(), h, w, r, eps, 1);
            fastdefocus::guided_filter(out.data(), g.data(), wt.data(), out.data(), h, w, r, eps, 1);
            for (int64_t i = 0; i < n; ++i) expect_close(q[i], out[i], 1e-6, "iter", h, w, r);
        }
        // patches
        for (int64_t size : {1, 4, 8}) {
            for (int64_t stride : {1, 3, 8}) {
                const auto grid = fastdefocus::patch_grid(h, w, size, stride);
                std::vector<float> pt(static_cast<size_t>(grid.ny * grid.nx * size * size));
                fastdefocus::extract_patches(p.data(), h, w, size, stride, false, 0.02f, pt.data(), 2);
                for (int64_t iy = 0; iy < grid.ny; ++iy)
                    for (int64_t ix = 0; ix < grid.nx; ++ix)
                        for (int64_t i = 0; i < size; ++i)
                            for (int64_t j = 0; j < size; ++j) {
                                const float want = p[static_cast<size_t>(reflect_index(iy * stride + i, h) * w +
                                                                         reflect_index(ix * stride + j, w))];
                                const float got = pt[static_cast<size_t>(((iy * grid.nx + ix) * size + i) * size + j)];
                                expect_close(got, want, 0.0, "patch", h, w, size);
                            }
            }
        }
    }
    // the helper pool (parallel.cpp): every chunk once, from nested regions and many in a row
    for (int round = 0; round < 50; ++round) {
        std::vector<int> hits(64 * 16, 0);
        fastdefocus::detail::parallel_for(4, 64, [&](int64_t i) {
            fastdefocus::detail::parallel_for(3, 16, [&](int64_t j) { hits[static_cast<size_t>(i * 16 + j)] += 1; });
        });
        for (int v : hits) expect_close(v, 1, 0, "pool chunk count", 64, 16, round);
    }
    // an exception in a chunk reaches the caller, and the pool still works after it
    {
        bool caught = false;
        try {
            fastdefocus::detail::parallel_for(3, 40, [&](int64_t i) {
                if (i == 17) throw std::runtime_error("chunk 17");
            });
        } catch (const std::runtime_error&) {
            caught = true;
        }
        expect_close(caught ? 1 : 0, 1, 0, "pool exception", 3, 40, 0);
        std::vector<int> hits(40, 0);
        fastdefocus::detail::parallel_for(3, 40, [&](int64_t i) { hits[static_cast<size_t>(i)] = 1; });
        for (int v : hits) expect_close(v, 1, 0, "pool after exception", 3, 40, 0);
    }
    std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
