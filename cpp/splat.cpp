// Patch statistics, sharpness maps and the splat (stages/splat.py, _geometry.py).
//
// patch_statistics reads every window sum it needs (luminance, luminance^2 and the gradient
// energies of the image and of its 1-px blur) from block sums on a g x g grid, g dividing
// the stride and the half-patch window offsets, instead of full-resolution integral images:
// one pass over the pixels, little memory, and sums at least as exact as Python's.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
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

void check_patch_stride(int64_t patch, int64_t stride) {
    if (patch < 1 || stride < 1 || patch % stride != 0)
        throw std::invalid_argument("stride must divide the patch size: patch " + std::to_string(patch) +
                                    ", stride " + std::to_string(stride));
}

// Per block of g x g pixels: sums of the luminance, its square, and the squared neighbour
// differences of the image and of its blur.  *_dx: pairs (x, x + 1) starting in the block,
// *_dx_last: those starting in its last column (they leave the block); likewise *_dy.
enum Quantity { kLum, kLum2, kFineDx, kFineDy, kCoarseDx, kCoarseDy, kNumTables };

struct BlockTables {
    int64_t g = 1, bh = 0, bw = 0;
    // 2-D inclusive prefix sums, (bh + 1) x (bw + 1) each
    std::vector<double> table[kNumTables];
    // prefix sums of the *_dx_last block values down each block column: (bh + 1) x bw
    std::vector<double> fine_dx_last, coarse_dx_last;
    // prefix sums of the *_dy_last block values along each block row: bh x (bw + 1)
    std::vector<double> fine_dy_last, coarse_dy_last;

    double rect(int q, int64_t by0, int64_t bx0, int64_t by1, int64_t bx1) const {
        const std::vector<double>& t = table[q];
        const int64_t s = bw + 1;
        return t[by1 * s + bx1] - t[by0 * s + bx1] - t[by1 * s + bx0] + t[by0 * s + bx0];
    }
    // Sum of squared differences of pixel pairs inside the size x size window at (y, x).
    double energy(bool fine, int64_t y, int64_t x, int64_t size) const {
        const int64_t by0 = y / g, bx0 = x / g, by1 = (y + size) / g, bx1 = (x + size) / g;
        const std::vector<double>& dxl = fine ? fine_dx_last : coarse_dx_last;
        const std::vector<double>& dyl = fine ? fine_dy_last : coarse_dy_last;
        const double sx = rect(fine ? kFineDx : kCoarseDx, by0, bx0, by1, bx1) -
                          (dxl[by1 * bw + (bx1 - 1)] - dxl[by0 * bw + (bx1 - 1)]);
        const double sy = rect(fine ? kFineDy : kCoarseDy, by0, bx0, by1, bx1) -
                          (dyl[(by1 - 1) * (bw + 1) + bx1] - dyl[(by1 - 1) * (bw + 1) + bx0]);
        return sx + sy;
    }
    // Mean and population standard deviation of the luminance in the window.
    double mean(int64_t y, int64_t x, int64_t size) const {
        const double n = static_cast<double>(size) * static_cast<double>(size);
        return rect(kLum, y / g, x / g, (y + size) / g, (x + size) / g) / n;
    }
    double std(int64_t y, int64_t x, int64_t size) const {
        const int64_t by0 = y / g, bx0 = x / g, by1 = (y + size) / g, bx1 = (x + size) / g;
        const double n = static_cast<double>(size) * static_cast<double>(size);
        const double m = mean(y, x, size);
        return std::sqrt(std::max(rect(kLum2, by0, bx0, by1, bx1) / n - m * m, 0.0));
    }
};

BlockTables block_tables(const float* fine, const float* coarse, int64_t ph, int64_t pw, int64_t g,
                         int threads) {
    BlockTables bt;
    bt.g = g;
    bt.bh = ph / g;
    bt.bw = pw / g;
    const int64_t bh = bt.bh, bw = bt.bw;
    // block values first (in the tables' interior), then the prefix sums
    for (auto& t : bt.table) t.assign(static_cast<std::size_t>((bh + 1) * (bw + 1)), 0.0);
    bt.fine_dx_last.assign(static_cast<std::size_t>((bh + 1) * bw), 0.0);
    bt.coarse_dx_last.assign(static_cast<std::size_t>((bh + 1) * bw), 0.0);
    bt.fine_dy_last.assign(static_cast<std::size_t>(bh * (bw + 1)), 0.0);
    bt.coarse_dy_last.assign(static_cast<std::size_t>(bh * (bw + 1)), 0.0);
    detail::for_rows(threads, bh, pw * g, [&](int64_t b0, int64_t b1) {
        std::vector<double> acc(static_cast<std::size_t>(pw) * 6);
        for (int64_t by = b0; by < b1; ++by) {
            std::fill(acc.begin(), acc.end(), 0.0);
            // per column: lum, lum2, fine dx, coarse dx, fine dy, coarse dy (summed over the block's rows)
            double* a_lum = acc.data();
            double* a_lum2 = a_lum + pw;
            double* a_fdx = a_lum2 + pw;
            double* a_cdx = a_fdx + pw;
            double* a_fdy = a_cdx + pw;
            double* a_cdy = a_fdy + pw;
            const int64_t ylast = by * g + g - 1;
            for (int64_t y = by * g; y <= ylast; ++y) {
                const float* f = fine + y * pw;
                const float* c = coarse + y * pw;
                for (int64_t x = 0; x < pw; ++x) {
                    const double v = f[x];
                    a_lum[x] += v;
                    a_lum2[x] += v * v;
                }
                for (int64_t x = 0; x + 1 < pw; ++x) {
                    const double df = static_cast<double>(f[x + 1]) - static_cast<double>(f[x]);
                    const double dc = static_cast<double>(c[x + 1]) - static_cast<double>(c[x]);
                    a_fdx[x] += df * df;
                    a_cdx[x] += dc * dc;
                }
                if (y + 1 < ph) {  // pairs (y, y + 1); those of the last row leave the block
                    const float* f1 = f + pw;
                    const float* c1 = c + pw;
                    double* fdy = a_fdy;
                    double* cdy = a_cdy;
                    for (int64_t x = 0; x < pw; ++x) {
                        const double df = static_cast<double>(f1[x]) - static_cast<double>(f[x]);
                        const double dc = static_cast<double>(c1[x]) - static_cast<double>(c[x]);
                        fdy[x] += df * df;
                        cdy[x] += dc * dc;
                    }
                    if (y == ylast) {
                        for (int64_t bx = 0; bx < bw; ++bx) {
                            double sf = 0, sc = 0;
                            for (int64_t x = bx * g; x < bx * g + g; ++x) {
                                const double df = static_cast<double>(f1[x]) - static_cast<double>(f[x]);
                                const double dc = static_cast<double>(c1[x]) - static_cast<double>(c[x]);
                                sf += df * df;
                                sc += dc * dc;
                            }
                            bt.fine_dy_last[by * (bw + 1) + bx + 1] = sf;
                            bt.coarse_dy_last[by * (bw + 1) + bx + 1] = sc;
                        }
                    }
                }
            }
            for (int64_t bx = 0; bx < bw; ++bx) {
                double s[kNumTables] = {0, 0, 0, 0, 0, 0};
                for (int64_t x = bx * g; x < bx * g + g; ++x) {
                    s[kLum] += a_lum[x];
                    s[kLum2] += a_lum2[x];
                    s[kFineDx] += a_fdx[x];
                    s[kCoarseDx] += a_cdx[x];
                    s[kFineDy] += a_fdy[x];
                    s[kCoarseDy] += a_cdy[x];
                }
                const std::size_t at = static_cast<std::size_t>((by + 1) * (bw + 1) + bx + 1);
                for (int q = 0; q < kNumTables; ++q) bt.table[q][at] = s[q];
                const int64_t xl = bx * g + g - 1;  // the block's last column
                bt.fine_dx_last[(by + 1) * bw + bx] = xl + 1 < pw ? a_fdx[xl] : 0.0;
                bt.coarse_dx_last[(by + 1) * bw + bx] = xl + 1 < pw ? a_cdx[xl] : 0.0;
            }
        }
    });
    // prefix sums
    for (auto& t : bt.table) {
        for (int64_t by = 1; by <= bh; ++by) {
            double run = 0;
            for (int64_t bx = 1; bx <= bw; ++bx) {
                run += t[by * (bw + 1) + bx];
                t[by * (bw + 1) + bx] = t[(by - 1) * (bw + 1) + bx] + run;
            }
        }
    }
    for (auto* v : {&bt.fine_dx_last, &bt.coarse_dx_last})
        for (int64_t by = 1; by <= bh; ++by)
            for (int64_t bx = 0; bx < bw; ++bx) (*v)[by * bw + bx] += (*v)[(by - 1) * bw + bx];
    for (auto* v : {&bt.fine_dy_last, &bt.coarse_dy_last})
        for (int64_t by = 0; by < bh; ++by)
            for (int64_t bx = 1; bx <= bw; ++bx) (*v)[by * (bw + 1) + bx] += (*v)[by * (bw + 1) + bx - 1];
    return bt;
}

}  // namespace

std::vector<double> tent_weights(int64_t patch, int64_t stride) {
    check_patch_stride(patch, stride);
    const int64_t k = patch / stride;
    const double half = static_cast<double>(patch) / 2.0;
    std::vector<double> w(static_cast<std::size_t>(k));
    for (int64_t i = 0; i < k; ++i) {
        const double centre = (static_cast<double>(i) + 0.5) * static_cast<double>(stride);
        w[i] = std::max(1.0 - std::fabs(centre - half) / half, 1.0 / static_cast<double>(2 * k));
    }
    return w;
}

std::vector<int64_t> window_offsets(int64_t patch) {
    std::vector<int64_t> v = {0, patch / 4, patch / 2};
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

PatchStatistics patch_statistics(const float* padded, int64_t ph, int64_t pw, int64_t ny, int64_t nx,
                                 int64_t patch, int64_t stride, double flat_std, int threads) {
    check_patch_stride(patch, stride);
    detail::require_image(padded, "patch_statistics: padded", ph, pw);
    const int64_t k = patch / stride;
    if (ny < 1 || nx < 1 || ph != (ny + k - 1) * stride || pw != (nx + k - 1) * stride)
        throw std::invalid_argument("patch_statistics: the padded image must be (ny + k - 1) * stride by "
                                    "(nx + k - 1) * stride");
    PatchStatistics st;
    st.ny = ny;
    st.nx = nx;
    st.cy = ny + k - 1;
    st.cx = nx + k - 1;
    const int64_t half = patch / 2;
    const std::vector<int64_t> offsets = window_offsets(patch);
    int64_t g = std::gcd(stride, patch);
    for (int64_t o : offsets) g = std::gcd(g, o);
    if (half > 0) g = std::gcd(g, half);

    detail::Scratch<float> coarse(static_cast<std::size_t>(ph * pw));
    gaussian_blur(padded, coarse.get(), ph, pw, params::kSharpnessBlur, threads);
    const BlockTables bt = block_tables(padded, coarse.get(), ph, pw, g, threads);

    const std::size_t n = static_cast<std::size_t>(ny * nx);
    st.texture.resize(n);
    st.mean.resize(n);
    st.agreement.resize(n);
    st.patch_sharpness.resize(n);
    st.cell_sharpness.resize(static_cast<std::size_t>(st.cy * st.cx));
    const double floor = params::kSharpnessFloor;
    const double textured_std = 2.0 * flat_std;
    detail::for_rows(threads, ny, nx * 64, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            for (int64_t j = 0; j < nx; ++j) {
                const int64_t y = i * stride, x = j * stride;
                const std::size_t at = static_cast<std::size_t>(i * nx + j);
                st.texture[at] = bt.std(y, x, patch);
                st.mean[at] = bt.mean(y, x, patch);
                st.patch_sharpness[at] =
                    std::log((bt.energy(true, y, x, patch) + floor) / (bt.energy(false, y, x, patch) + floor));
                if (half < 2) {  // no differences inside a window: nothing to compare
                    st.agreement[at] = 1.0;
                    continue;
                }
                double hi = -std::numeric_limits<double>::infinity(), lo = std::numeric_limits<double>::infinity();
                int textured = 0;
                for (int64_t dy : offsets) {
                    for (int64_t dx : offsets) {
                        if (!(bt.std(y + dy, x + dx, half) >= textured_std)) continue;
                        const double ef = bt.energy(true, y + dy, x + dx, half);
                        const double ec = bt.energy(false, y + dy, x + dx, half);
                        const double s = std::log(std::max(ef, 1e-12) / std::max(ec, 1e-12));
                        hi = std::max(hi, s);
                        lo = std::min(lo, s);
                        ++textured;
                    }
                }
                const double ratio = textured >= 2 ? hi - lo : 0.0;
                const double z = ratio / params::kAgreementTau;
                st.agreement[at] = std::exp(-(z * z));
            }
        }
    });
    for (int64_t i = 0; i < st.cy; ++i)
        for (int64_t j = 0; j < st.cx; ++j) {
            const int64_t y = i * stride, x = j * stride;
            st.cell_sharpness[static_cast<std::size_t>(i * st.cx + j)] =
                std::log((bt.energy(true, y, x, stride) + floor) / (bt.energy(false, y, x, stride) + floor));
        }
    return st;
}

std::vector<double> tent_sum(const double* values, int64_t ny, int64_t nx, int64_t patch, int64_t stride) {
    const std::vector<double> w = tent_weights(patch, stride);
    const int64_t k = static_cast<int64_t>(w.size());
    if (values == nullptr || ny < 1 || nx < 1) throw std::invalid_argument("tent_sum: empty values");
    const int64_t cy = ny + k - 1, cx = nx + k - 1;
    std::vector<double> out(static_cast<std::size_t>(cy * cx), 0.0);
    for (int64_t a = 0; a < k; ++a)
        for (int64_t b = 0; b < k; ++b) {
            const double t = w[a] * w[b];
            for (int64_t i = 0; i < ny; ++i) {
                double* o = out.data() + (i + a) * cx + b;
                const double* v = values + i * nx;
                for (int64_t j = 0; j < nx; ++j) o[j] += t * v[j];
            }
        }
    return out;
}

SplatResult splat(const float* values, const double* weights, int64_t ny, int64_t nx, int64_t patch,
                  int64_t stride, double lift, const double* patch_sharpness, const double* cell_sharpness,
                  double match_tau, double eps, int threads) {
    if (values == nullptr || weights == nullptr) throw std::invalid_argument("splat: values and weights must not be null");
    if ((patch_sharpness == nullptr) != (cell_sharpness == nullptr))
        throw std::invalid_argument("splat: give both sharpness maps or neither");
    if (!(lift >= 0) || !std::isfinite(lift)) throw std::invalid_argument("splat: lift must be finite and >= 0");
    if (patch_sharpness != nullptr && !(match_tau > 0)) throw std::invalid_argument("splat: match_tau must be > 0");
    const std::vector<double> w = tent_weights(patch, stride);
    const int64_t k = static_cast<int64_t>(w.size());
    if (ny < 1 || nx < 1) throw std::invalid_argument("splat: empty grid");
    const int64_t cy = ny + k - 1, cx = nx + k - 1;
    const std::size_t n = static_cast<std::size_t>(ny * nx);
    std::vector<double> v64(n), mix(n), ones(n, 1.0);
    for (std::size_t i = 0; i < n; ++i) {
        v64[i] = values[i];
        mix[i] = lift > 0 ? weights[i] * std::exp(std::min(lift * v64[i], params::kLiftExpMax)) : weights[i];
    }
    const std::vector<double> coverage = tent_sum(ones.data(), ny, nx, patch, stride);
    const std::vector<double> plain = tent_sum(v64.data(), ny, nx, patch, stride);
    SplatResult out;
    out.values.resize(static_cast<std::size_t>(cy * cx));
    out.weights.resize(static_cast<std::size_t>(cy * cx));
    const double tiny = std::numeric_limits<double>::min();
    // every cell sums its covering patches in the order of Python's loops (a, then b)
    detail::for_rows(threads, cy, cx * k * k, [&](int64_t y0, int64_t y1) {
        for (int64_t Y = y0; Y < y1; ++Y) {
            for (int64_t X = 0; X < cx; ++X) {
                double den = 0, mix_den = 0, num = 0;
                const double cs = cell_sharpness ? cell_sharpness[Y * cx + X] : 0.0;
                for (int64_t a = 0; a < k; ++a) {
                    const int64_t i = Y - a;
                    if (i < 0 || i >= ny) continue;
                    for (int64_t b = 0; b < k; ++b) {
                        const int64_t j = X - b;
                        if (j < 0 || j >= nx) continue;
                        const std::size_t p = static_cast<std::size_t>(i * nx + j);
                        double t = w[a] * w[b];
                        if (patch_sharpness != nullptr) {
                            const double z = std::max(patch_sharpness[p] - cs, 0.0) / match_tau;
                            t = t * std::exp(-(z * z));
                            den += t * weights[p];
                            mix_den += t * mix[p];
                            num += t * mix[p] * v64[p];
                        } else {
                            den += t * weights[p];
                            mix_den += t * mix[p];
                            num += t * (mix[p] * v64[p]);
                        }
                    }
                }
                const std::size_t c = static_cast<std::size_t>(Y * cx + X);
                out.values[c] = static_cast<float>(den > eps ? num / std::max(mix_den, tiny) : plain[c] / coverage[c]);
                out.weights[c] = static_cast<float>(den / coverage[c]);
            }
        }
    });
    return out;
}

}  // namespace stages
}  // namespace fastdefocus
