// Tests of the C++ estimator: each stage against direct float64 computations or known
// analytic cases, the model reader, the whole pipeline with a classifier whose answer is
// known, and bad input.  The model folder comes from $FASTDEFOCUS_MODEL_DIR (set by ctest);
// nothing here depends on the trained weights' probabilities.
//
// Build with -DFASTDEFOCUS_BUILD_TESTS=ON (and -DFASTDEFOCUS_SANITIZE=ON), run ctest.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/estimator.hpp"
#include "fastdefocus/filters.hpp"
#include "fastdefocus/stages.hpp"

namespace fd = fastdefocus;
namespace st = fastdefocus::stages;
using std::int64_t;

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        ++checks;                                                                \
        if (!(cond)) {                                                           \
            ++failures;                                                          \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                        \
    } while (0)

#define CHECK_CLOSE(got, want, tol)                                                                       \
    do {                                                                                                  \
        ++checks;                                                                                         \
        const double g_ = (got), w_ = (want);                                                             \
        if (!(std::fabs(g_ - w_) <= (tol))) {                                                             \
            ++failures;                                                                                   \
            if (failures < 40)                                                                            \
                std::printf("FAIL %s:%d: %s = %.12g, want %.12g (tol %g)\n", __FILE__, __LINE__, #got, g_, \
                            w_, static_cast<double>(tol));                                                \
        }                                                                                                 \
    } while (0)

// The call throws E whose message contains `text`.
template <class E, class F>
static void expect_throw(F&& f, const std::string& text, int line) {
    ++checks;
    try {
        f();
    } catch (const E& e) {
        if (std::string(e.what()).find(text) == std::string::npos) {
            ++failures;
            std::printf("FAIL line %d: message '%s' lacks '%s'\n", line, e.what(), text.c_str());
        }
        return;
    } catch (const std::exception& e) {
        ++failures;
        std::printf("FAIL line %d: wrong exception type: %s\n", line, e.what());
        return;
    }
    ++failures;
    std::printf("FAIL line %d: no exception (expected '%s')\n", line, text.c_str());
}
#define EXPECT_THROW(E, expr, text) expect_throw<E>([&] { expr; }, text, __LINE__)

static std::vector<float> random_image(int64_t h, int64_t w, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(h * w));
    for (auto& x : v) x = u(gen);
    return v;
}

static std::string model_dir() {
    const char* env = std::getenv("FASTDEFOCUS_MODEL_DIR");
    return env ? env : fd::default_model_dir();
}

// ------------------------------------------------------------------ ingest

static void test_luminance() {
    const unsigned char rgb[6] = {10, 200, 30, 255, 0, 128};
    float out[2];
    st::luminance(fd::ImageView{rgb, 1, 2, 3}, out);
    for (int i = 0; i < 2; ++i) {  // float32 arithmetic in NumPy's order
        const float r = static_cast<float>(rgb[3 * i]) * 0.299f, g = static_cast<float>(rgb[3 * i + 1]) * 0.587f,
                    b = static_cast<float>(rgb[3 * i + 2]) * 0.114f;
        const float want = ((r + g) + b) * static_cast<float>(1.0 / 255.0);
        CHECK(out[i] == want);
        CHECK_CLOSE(out[i], (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]) / 255.0, 1e-6);
    }
    const unsigned char bgr[6] = {30, 200, 10, 128, 0, 255};
    float out_bgr[2];
    fd::ImageView v{bgr, 1, 2, 3};
    v.bgr = true;
    st::luminance(v, out_bgr);
    CHECK(out_bgr[0] == out[0] && out_bgr[1] == out[1]);
    // RGBA with a row stride: alpha and the padding ignored
    const unsigned char rgba[2 * 12] = {10, 200, 30, 7, 255, 0, 128, 9, 99, 99, 99, 99,
                                        255, 0, 128, 1, 10, 200, 30, 2, 99, 99, 99, 99};
    float out4[4];
    fd::ImageView v4{rgba, 2, 2, 4};
    v4.row_stride = 12;
    st::luminance(v4, out4);
    CHECK(out4[0] == out[0] && out4[1] == out[1] && out4[2] == out[1] && out4[3] == out[0]);
    // gray and gray + alpha: the first channel
    const unsigned char ga[4] = {51, 1, 255, 2};
    float og[2];
    st::luminance(fd::ImageView{ga, 1, 2, 2}, og);
    CHECK(og[0] == 51.0f * static_cast<float>(1.0 / 255.0) && og[1] == 1.0f);
    // uint16 and float
    const std::uint16_t g16[2] = {0, 65535};
    fd::ImageView v16{g16, 1, 2, 1};
    v16.type = fd::PixelType::u16;
    st::luminance(v16, og);
    CHECK(og[0] == 0.0f && og[1] == 1.0f);
    const float gf[3] = {-0.0005f, 0.25f, 1.0005f};
    fd::ImageView vf{gf, 1, 3, 1};
    vf.type = fd::PixelType::f32;
    float of[3];
    st::luminance(vf, of);
    CHECK(of[0] == 0.0f && of[1] == 0.25f && of[2] == 1.0f);  // clipped
    // bad views
    EXPECT_THROW(std::invalid_argument, st::luminance(fd::ImageView{nullptr, 1, 1, 1}, of), "data must not be null");
    EXPECT_THROW(std::invalid_argument, st::luminance(fd::ImageView{rgb, 0, 2, 3}, of), "at least 1 x 1");
    EXPECT_THROW(std::invalid_argument, st::luminance(fd::ImageView{rgb, 1, 2, 5}, of), "channels must be 1");
    fd::ImageView bad_stride{rgb, 2, 2, 3};
    bad_stride.row_stride = 5;
    EXPECT_THROW(std::invalid_argument, st::luminance(bad_stride, of), "row_stride (5 bytes) is smaller");
    const float nan_img[2] = {0.5f, std::nanf("")};
    fd::ImageView vn{nan_img, 1, 2, 1};
    vn.type = fd::PixelType::f32;
    EXPECT_THROW(std::invalid_argument, st::luminance(vn, of), "NaN or infinite");
    const float big[1] = {3.0f};
    fd::ImageView vb{big, 1, 1, 1};
    vb.type = fd::PixelType::f32;
    EXPECT_THROW(std::invalid_argument, st::luminance(vb, of), "expected [0, 1]");
    std::vector<std::uint16_t> misaligned(4);
    fd::ImageView vm{reinterpret_cast<const unsigned char*>(misaligned.data()) + 1, 1, 1, 1};
    vm.type = fd::PixelType::u16;
    EXPECT_THROW(std::invalid_argument, st::luminance(vm, of), "aligned");
    fd::ImageView vt{rgb, 1, 1, 1};
    vt.type = static_cast<fd::PixelType>(7);
    EXPECT_THROW(std::invalid_argument, st::luminance(vt, of), "image type");
}

static void test_gaussian() {
    // the discrete Gaussian: e^-t I_n(t) (t = sigma^2), normalised over its 2 ceil(4 sigma + 1) + 1 taps
    for (double sigma : {0.35, 0.5, 1.0, 2.5, 6.0}) {
        const std::vector<double> k = st::gaussian_kernel1d(sigma);
        const int64_t r = static_cast<int64_t>(std::ceil(4 * sigma + 1));
        CHECK(static_cast<int64_t>(k.size()) == 2 * r + 1);
        double sum = 0, var = 0;
        for (int64_t i = 0; i <= 2 * r; ++i) {
            sum += k[i];
            var += k[i] * double(i - r) * double(i - r);
            CHECK(k[i] == k[2 * r - i]);
            const double exact = std::exp(-sigma * sigma) * std::cyl_bessel_i(std::fabs(double(i - r)), sigma * sigma);
            CHECK_CLOSE(k[i], exact, 2e-3 * exact + 1e-12);
        }
        CHECK_CLOSE(sum, 1.0, 1e-12);
        CHECK_CLOSE(var, sigma * sigma, 2e-3 * sigma * sigma);
    }
    // NumPy's FFT-based values (blur.py gaussian_kernel1d)
    const std::vector<double> k1 = st::gaussian_kernel1d(1.0);
    CHECK_CLOSE(k1[5], 0.465767898462498, 1e-15);
    CHECK_CLOSE(k1[6], 0.20791411631037504, 1e-15);
    CHECK_CLOSE(k1[7], 0.04993966584174794, 1e-15);
    CHECK_CLOSE(k1[10], 9.986749179638774e-05, 1e-16);
    const std::vector<double> k05 = st::gaussian_kernel1d(0.5);
    CHECK(k05.size() == 7);
    CHECK_CLOSE(k05[3], 0.7910300558457879, 1e-15);
    CHECK_CLOSE(k05[4], 0.09811422794888464, 1e-15);
    CHECK(st::gaussian_kernel1d(0.0).size() == 1);
    EXPECT_THROW(std::invalid_argument, st::gaussian_kernel1d(std::nan("")), "sigma must be finite");

    // the blur: an impulse gives the kernel's outer product; constants stay; reflect-101 borders
    const int64_t h = 23, w = 29;
    std::vector<float> img(h * w, 0.0f), out(h * w);
    img[11 * w + 14] = 1.0f;
    st::gaussian_blur(img.data(), out.data(), h, w, 1.0, 1);
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
            const int64_t dy = y - 11, dx = x - 14;
            const double want = (std::abs(dy) <= 5 && std::abs(dx) <= 5) ? k1[dy + 5] * k1[dx + 5] : 0.0;
            CHECK_CLOSE(out[y * w + x], want, 1e-7);
        }
    std::fill(img.begin(), img.end(), 0.375f);
    st::gaussian_blur(img.data(), out.data(), h, w, 2.5, 3);
    for (float v : out) CHECK_CLOSE(v, 0.375, 1e-6);
    // a 1 x 1 image and windows wider than the image
    float one = 0.7f, one_out = 0;
    st::gaussian_blur(&one, &one_out, 1, 1, 3.0);
    CHECK_CLOSE(one_out, 0.7, 1e-6);
    const std::vector<float> small = random_image(3, 4, 5);
    std::vector<float> so(12);
    st::gaussian_blur(small.data(), so.data(), 3, 4, 2.0, 1);
    const std::vector<double> k2 = st::gaussian_kernel1d(2.0);
    const int64_t r2 = static_cast<int64_t>(k2.size() / 2);
    for (int64_t y = 0; y < 3; ++y)
        for (int64_t x = 0; x < 4; ++x) {
            double s = 0;
            for (int64_t i = -r2; i <= r2; ++i)
                for (int64_t j = -r2; j <= r2; ++j)
                    s += k2[i + r2] * k2[j + r2] * small[fd::reflect_index(y + i, 3) * 4 + fd::reflect_index(x + j, 4)];
            CHECK_CLOSE(so[y * 4 + x], s, 1e-6);
        }
    EXPECT_THROW(std::invalid_argument, st::gaussian_blur(img.data(), img.data(), h, w, 1.0), "must not be src");
}

static void test_pad_and_resize() {
    const std::vector<float> src = random_image(5, 7, 1);
    std::vector<float> pad(12 * 20);
    st::pad_reflect(src.data(), 5, 7, pad.data(), 12, 20);
    for (int64_t y = 0; y < 12; ++y)
        for (int64_t x = 0; x < 20; ++x)
            CHECK(pad[y * 20 + x] == src[fd::reflect_index(y, 5) * 7 + fd::reflect_index(x, 7)]);
    EXPECT_THROW(std::invalid_argument, st::pad_reflect(src.data(), 5, 7, pad.data(), 4, 20), "smaller");

    // INTER_LINEAR, 2x: [a, 3a/4 + b/4, a/4 + 3b/4, b] (clamped at the ends)
    const float row[2] = {1.0f, 5.0f};
    float up[4];
    st::resize_linear(row, 1, 2, up, 1, 4);
    CHECK(up[0] == 1.0f && up[1] == 2.0f && up[2] == 4.0f && up[3] == 5.0f);
    // 4x in 2-D: bilinear inside, constant beyond the outer sample centres
    const float sq[4] = {0.0f, 4.0f, 8.0f, 12.0f};
    std::vector<float> big(8 * 8);
    st::resize_linear(sq, 2, 2, big.data(), 8, 8);
    for (int64_t y = 0; y < 8; ++y)
        for (int64_t x = 0; x < 8; ++x) {
            const double fy = std::min(std::max((y + 0.5) / 4 - 0.5, 0.0), 1.0);
            const double fx = std::min(std::max((x + 0.5) / 4 - 0.5, 0.0), 1.0);
            CHECK_CLOSE(big[y * 8 + x], 8 * fy + 4 * fx, 1e-6);
        }
    // the same size: a copy; constants stay constant whatever the sizes
    std::vector<float> same(35);
    st::resize_linear(src.data(), 5, 7, same.data(), 5, 7);
    CHECK(same == src);
    const std::vector<float> flat(6 * 4, 0.625f);
    std::vector<float> any(13 * 3);
    st::resize_linear(flat.data(), 6, 4, any.data(), 13, 3);
    for (float v : any) CHECK(v == 0.625f);
    // INTER_AREA by integer factors: block means
    const std::vector<float> a = random_image(8, 12, 2);
    for (int64_t f : {1, 2, 4}) {
        std::vector<float> d((8 / f) * (12 / f));
        st::resize_area(a.data(), 8, 12, d.data(), 8 / f, 12 / f, 2);
        for (int64_t y = 0; y < 8 / f; ++y)
            for (int64_t x = 0; x < 12 / f; ++x) {
                double s = 0;
                for (int64_t i = 0; i < f; ++i)
                    for (int64_t j = 0; j < f; ++j) s += a[(y * f + i) * 12 + x * f + j];
                CHECK_CLOSE(d[y * (12 / f) + x], s / double(f * f), 1e-6);
            }
    }
    std::vector<float> d3(9);
    EXPECT_THROW(std::invalid_argument, st::resize_area(a.data(), 8, 12, d3.data(), 3, 3), "integer shrink");
}

// ------------------------------------------------------------------ patches / splat

// Direct float64 sums over a window of the padded image.
struct Naive {
    const std::vector<float>& img;
    const std::vector<float>& coarse;
    int64_t w;
    double std(int64_t y, int64_t x, int64_t n) const {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
                const double v = img[(y + i) * w + x + j];
                s += v;
                s2 += v * v;
            }
        const double m = s / (n * n);
        return std::sqrt(std::max(s2 / (n * n) - m * m, 0.0));
    }
    double energy(const std::vector<float>& a, int64_t y, int64_t x, int64_t n) const {
        double e = 0;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
                if (j + 1 < n) {
                    const double d = double(a[(y + i) * w + x + j + 1]) - a[(y + i) * w + x + j];
                    e += d * d;
                }
                if (i + 1 < n) {
                    const double d = double(a[(y + i + 1) * w + x + j]) - a[(y + i) * w + x + j];
                    e += d * d;
                }
            }
        return e;
    }
};

static void test_patch_statistics() {
    const int64_t p = 32;
    for (int64_t s : {8, 16}) {
        const int64_t k = p / s, ny = 3, nx = 4, ph = (ny + k - 1) * s, pw = (nx + k - 1) * s;
        std::vector<float> img = random_image(ph, pw, 3);
        for (int64_t y = 0; y < ph; ++y)  // a flat band and a blurred band among the random pixels
            for (int64_t x = 0; x < pw; ++x) {
                if (x < 20) img[y * pw + x] = 0.4f;
                if (y >= 30 && y < 50) img[y * pw + x] = 0.5f + 0.01f * img[y * pw + x];
            }
        std::vector<float> coarse(img.size());
        st::gaussian_blur(img.data(), coarse.data(), ph, pw, fd::params::kSharpnessBlur, 1);
        const Naive nv{img, coarse, pw};
        const double flat = 0.02;
        const st::PatchStatistics stats = st::patch_statistics(img.data(), ph, pw, ny, nx, p, s, flat, 2);
        CHECK(stats.cy == ny + k - 1 && stats.cx == nx + k - 1);
        for (int64_t i = 0; i < ny; ++i)
            for (int64_t j = 0; j < nx; ++j) {
                const int64_t y = i * s, x = j * s, at = i * nx + j;
                CHECK_CLOSE(stats.texture[at], nv.std(y, x, p), 1e-12);
                const double ps = std::log((nv.energy(img, y, x, p) + 1e-6) / (nv.energy(coarse, y, x, p) + 1e-6));
                CHECK_CLOSE(stats.patch_sharpness[at], ps, 1e-9);
                double hi = -1e300, lo = 1e300;
                int textured = 0;
                for (int64_t dy : {0, 8, 16})
                    for (int64_t dx : {0, 8, 16}) {
                        if (!(nv.std(y + dy, x + dx, 16) >= 2 * flat)) continue;
                        const double v = std::log(std::max(nv.energy(img, y + dy, x + dx, 16), 1e-12) /
                                                  std::max(nv.energy(coarse, y + dy, x + dx, 16), 1e-12));
                        hi = std::max(hi, v);
                        lo = std::min(lo, v);
                        ++textured;
                    }
                const double ratio = textured >= 2 ? hi - lo : 0.0;
                CHECK_CLOSE(stats.agreement[at], std::exp(-(ratio / 0.2) * (ratio / 0.2)), 1e-9);
            }
        for (int64_t i = 0; i < stats.cy; ++i)
            for (int64_t j = 0; j < stats.cx; ++j) {
                const double cs = std::log((nv.energy(img, i * s, j * s, s) + 1e-6) /
                                           (nv.energy(coarse, i * s, j * s, s) + 1e-6));
                CHECK_CLOSE(stats.cell_sharpness[i * stats.cx + j], cs, 1e-9);
            }
        EXPECT_THROW(std::invalid_argument, st::patch_statistics(img.data(), ph - 1, pw, ny, nx, p, s, flat),
                     "padded image must be");
    }
    // a flat image: no texture, full agreement, no sharpness
    std::vector<float> flat(40 * 40, 0.3f);
    const st::PatchStatistics f = st::patch_statistics(flat.data(), 40, 40, 2, 2, 32, 8, 0.02, 1);
    for (int i = 0; i < 4; ++i) {
        CHECK_CLOSE(f.texture[i], 0.0, 1e-7);
        CHECK(f.agreement[i] == 1.0);
        CHECK_CLOSE(f.patch_sharpness[i], 0.0, 1e-9);
    }
    EXPECT_THROW(std::invalid_argument, st::tent_weights(32, 3), "stride must divide");
}

static void test_fill() {
    // flat columns between confident 1-px (left) and 3-px (right) columns, equal guide: they
    // ramp from one to the other; behind a step of the guide each side keeps its own
    const int64_t ny = 5, nx = 7;
    std::vector<float> v(ny * nx, 5.0f);
    std::vector<double> wt(ny * nx, 0.0), flat_guide(ny * nx, 0.5), step(ny * nx, 0.2);
    for (int64_t y = 0; y < ny; ++y) {
        v[y * nx] = 1.0f, wt[y * nx] = 1.0;
        v[y * nx + nx - 1] = 3.0f, wt[y * nx + nx - 1] = 1.0;
        for (int64_t x = nx / 2 + 1; x < nx; ++x) step[y * nx + x] = 0.8;
    }
    std::vector<float> out(ny * nx);
    fd::stages::fill_flat(v.data(), wt.data(), flat_guide.data(), ny, nx, 32, 64.0, out.data());
    CHECK(out[2 * nx + 3] > 1.5f && out[2 * nx + 3] < 2.5f);
    for (int64_t x = 1; x < nx; ++x) CHECK(out[2 * nx + x] > out[2 * nx + x - 1]);
    CHECK(out[2 * nx] == 1.0f && out[2 * nx + nx - 1] == 3.0f);
    fd::stages::fill_flat(v.data(), wt.data(), step.data(), ny, nx, 32, 64.0, out.data());
    CHECK(out[2 * nx + 3] < 1.2f && out[2 * nx + 4] > 2.8f);
    fd::stages::fill_flat(v.data(), wt.data(), step.data(), ny, nx, 32, 0.0, out.data());
    CHECK(out == v);
    wt[3] = -1.0;
    EXPECT_THROW(std::invalid_argument, fd::stages::fill_flat(v.data(), wt.data(), step.data(), ny, nx, 32, 64.0, out.data()),
                 "finite and >= 0");
    const std::vector<float> img(40 * 48, 0.25f);
    const std::vector<double> means = fd::stages::patch_statistics(img.data(), 40, 48, 2, 3, 32, 8, 0.02).mean;
    CHECK(means.size() == 6 && std::abs(means[5] - 0.25) < 1e-12);
    EXPECT_THROW(std::invalid_argument, fd::stages::patch_statistics(img.data(), 40, 48, 3, 3, 32, 8, 0.02),
                 "padded image must be");
}

static void test_splat() {
    const std::vector<double> w8 = st::tent_weights(32, 8);
    CHECK(w8.size() == 4 && w8[0] == 0.25 && w8[1] == 0.75 && w8[2] == 0.75 && w8[3] == 0.25);
    const std::vector<double> w32 = st::tent_weights(32, 32);
    CHECK(w32.size() == 1 && w32[0] == 1.0);
    const std::vector<double> w4 = st::tent_weights(32, 4);
    CHECK(w4.size() == 8 && w4[0] == 0.125 && w4[3] == 0.875);
    const std::vector<int64_t> off = st::window_offsets(32);
    CHECK(off.size() == 3 && off[0] == 0 && off[1] == 8 && off[2] == 16);

    const int64_t ny = 4, nx = 5, p = 32, s = 8, k = 4, cy = ny + k - 1, cx = nx + k - 1;
    std::vector<double> ones(ny * nx, 1.0);
    const std::vector<double> cov = st::tent_sum(ones.data(), ny, nx, p, s);
    // an interior cell is covered by all 16 patches: (sum of the tent)^2
    CHECK_CLOSE(cov[3 * cx + 3], 2.0 * 2.0, 1e-12);
    CHECK_CLOSE(cov[0], 0.25 * 0.25, 1e-12);
    // equal values: every cell gets that value, whatever the weights, lift and match
    std::vector<float> values(ny * nx, 1.75f);
    std::mt19937 gen(4);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<double> weights(ny * nx), ps(ny * nx), cs(cy * cx);
    for (auto& v : weights) v = u(gen);
    for (auto& v : ps) v = u(gen);
    for (auto& v : cs) v = u(gen);
    const st::SplatResult r = st::splat(values.data(), weights.data(), ny, nx, p, s, 1.0, ps.data(), cs.data());
    for (float v : r.values) CHECK_CLOSE(v, 1.75, 1e-6);
    // weights: tent-weighted means of the patch weights (no match here)
    const st::SplatResult r0 = st::splat(values.data(), weights.data(), ny, nx, p, s, 0.0, nullptr, nullptr);
    const std::vector<double> num = st::tent_sum(weights.data(), ny, nx, p, s);
    for (int64_t i = 0; i < cy * cx; ++i) CHECK_CLOSE(r0.weights[i], num[i] / cov[i], 1e-6);
    // the lift: two covering values, the soft maximum leans to the higher
    std::vector<float> two(ny * nx, 1.0f);
    two[0] = 3.0f;
    std::vector<double> uniform(ny * nx, 1.0);
    const st::SplatResult lifted = st::splat(two.data(), uniform.data(), ny, nx, p, s, 1.0, nullptr, nullptr);
    const st::SplatResult plain = st::splat(two.data(), uniform.data(), ny, nx, p, s, 0.0, nullptr, nullptr);
    CHECK(lifted.values[cx + 1] > plain.values[cx + 1]);
    const double t0 = 0.75 * 0.75;  // cell (1, 1): patch (0, 0) at tent offsets (1, 1)
    double wsum = 0, vsum = 0;
    for (int64_t a = 0; a < k; ++a)
        for (int64_t b = 0; b < k; ++b) {
            const int64_t i = 1 - a, j = 1 - b;
            if (i < 0 || j < 0) continue;
            const double t = w8[a] * w8[b];
            const double v = two[i * nx + j];
            wsum += t * std::exp(v);
            vsum += t * std::exp(v) * v;
        }
    CHECK_CLOSE(lifted.values[cx + 1], vsum / wsum, 1e-6);
    CHECK(t0 > 0);
    // no weight anywhere: the plain tent mean
    std::vector<double> zero(ny * nx, 0.0);
    const st::SplatResult z = st::splat(two.data(), zero.data(), ny, nx, p, s, 1.0, nullptr, nullptr);
    const std::vector<double> two64(two.begin(), two.end());
    const std::vector<double> pl = st::tent_sum(two64.data(), ny, nx, p, s);
    for (int64_t i = 0; i < cy * cx; ++i) CHECK_CLOSE(z.values[i], pl[i] / cov[i], 1e-6);
    EXPECT_THROW(std::invalid_argument, st::splat(values.data(), weights.data(), ny, nx, p, s, 1.0, ps.data(), nullptr),
                 "both sharpness maps");
}

// ------------------------------------------------------------------ classify

static void test_classify() {
    const std::vector<double> levels = {0.0, 1.0, 2.0, 4.0};
    const float probs[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    CHECK_CLOSE(st::expected_sigma_raw(probs, levels), 0.2 + 0.6 + 1.6, 1e-7);
    const std::vector<std::array<double, 2>> knots = {{{0.0, 0.0}}, {{1.0, 2.0}}, {{3.0, 3.0}}};
    CHECK(st::apply_calibration(-1.0, knots) == 0.0);
    CHECK(st::apply_calibration(0.0, knots) == 0.0);
    CHECK(st::apply_calibration(0.5, knots) == 1.0);
    CHECK(st::apply_calibration(1.0, knots) == 2.0);
    CHECK(st::apply_calibration(2.0, knots) == 2.5);
    CHECK(st::apply_calibration(3.0, knots) == 3.0);
    CHECK(st::apply_calibration(9.0, knots) == 3.0);
    CHECK(std::isnan(st::apply_calibration(std::nan(""), knots)));
    CHECK_CLOSE(st::confidence_from_probs(probs, 4), 0.7, 1e-7);  // best 3: 0.3 + 0.4
    const float tie[4] = {0.4f, 0.1f, 0.1f, 0.4f};                 // the first maximum
    CHECK_CLOSE(st::confidence_from_probs(tie, 4), 0.5, 1e-7);
    const float over[3] = {0.6f, 0.6f, 0.0f};  // clipped to 1
    CHECK(st::confidence_from_probs(over, 3) == 1.0f);
}

// ------------------------------------------------------------------ refine / snap

static void test_refine_and_snap() {
    const int64_t hc = 6, wc = 7, s = 8, H = hc * s, W = wc * s;
    const std::vector<float> guide = random_image(H, W, 6);
    const std::vector<float> cells(hc * wc, 2.25f), weights(hc * wc, 0.5f);
    std::vector<float> dense(H * W);
    for (int it : {0, 1, 2}) {  // a constant map stays constant
        st::refine(cells.data(), weights.data(), hc, wc, guide.data(), s, 4.0, 1e-3, it, dense.data(), 2);
        for (float v : dense) CHECK_CLOSE(v, 2.25, 1e-4);
    }
    EXPECT_THROW(std::invalid_argument,
                 st::refine(cells.data(), weights.data(), hc, wc, guide.data(), s, 4.0, 1e-3, -1, dense.data()),
                 "iterations");

    // min / max filter against direct windows
    const int64_t h = 19, w = 23;
    const std::vector<float> m = random_image(h, w, 8);
    for (int64_t r : {0, 1, 3, 10, 40}) {
        std::vector<float> lo(h * w), hi(h * w);
        st::min_max_filter(m.data(), h, w, r, lo.data(), hi.data(), 3);
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x) {
                float a = 1e30f, b = -1e30f;
                for (int64_t i = std::max<int64_t>(0, y - r); i <= std::min(h - 1, y + r); ++i)
                    for (int64_t j = std::max<int64_t>(0, x - r); j <= std::min(w - 1, x + r); ++j) {
                        a = std::min(a, m[i * w + j]);
                        b = std::max(b, m[i * w + j]);
                    }
                CHECK(lo[y * w + x] == a && hi[y * w + x] == b);
            }
    }

    // the snap: radius 0 is a copy; the output stays within the window's [min, max]; a map
    // without spans over SNAP_MIN_SPAN, or a flat image (no evidence), is left as it is
    const int64_t sh = 60, sw = 80;
    std::vector<float> lum = random_image(sh, sw, 9), sigma(sh * sw), out(sh * sw);
    for (int64_t y = 0; y < sh; ++y)
        for (int64_t x = 0; x < sw; ++x) {
            sigma[y * sw + x] = 0.5f + 2.5f * std::min(std::max((x - 30.0f) / 20.0f, 0.0f), 1.0f);  // a ramp
            if (x >= 40) {  // blurred right half: its evidence differs from the sharp left half
                const float* row = &lum[y * sw];
                lum[y * sw + x] = 0.5f * (row[x - 1] + row[x]);
            }
        }
    st::snap_boundaries(sigma.data(), lum.data(), sh, sw, 0, out.data());
    CHECK(out == sigma);
    st::snap_boundaries(sigma.data(), lum.data(), sh, sw, 10, out.data(), 2);
    std::vector<float> lo(sh * sw), hi(sh * sw);
    st::min_max_filter(sigma.data(), sh, sw, 10, lo.data(), hi.data());
    int changed = 0;
    for (int64_t i = 0; i < sh * sw; ++i) {
        CHECK(out[i] >= lo[i] && out[i] <= hi[i]);
        changed += out[i] != sigma[i];
    }
    CHECK(changed > 0);
    std::vector<float> in_place(sigma);
    st::snap_boundaries(in_place.data(), lum.data(), sh, sw, 10, in_place.data(), 1);
    CHECK(in_place == out);
    const std::vector<float> flat_lum(sh * sw, 0.5f);
    st::snap_boundaries(sigma.data(), flat_lum.data(), sh, sw, 10, out.data());
    CHECK(out == sigma);
    std::vector<float> gentle(sh * sw);
    for (int64_t i = 0; i < sh * sw; ++i) gentle[i] = 1.0f + 0.2f * (i % sw) / float(sw);  // span < 0.3
    st::snap_boundaries(gentle.data(), lum.data(), sh, sw, 10, out.data());
    CHECK(out == gentle);
    EXPECT_THROW(std::invalid_argument, st::snap_boundaries(sigma.data(), lum.data(), sh, sw, -1, out.data()),
                 "radius must be >= 0");
}

// ------------------------------------------------------------------ the model file

static std::string write_temp(const std::string& name, const std::string& text) {
    static int counter = 0;
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      ("fastdefocus_test_" + name + std::to_string(++counter));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "blur_classifier.json") << text;
    return dir.string();
}

static const char* kGoodJson = R"({
 "levels": [0.0, 0.5, 1.0, 2.0],
 "input": {"patch_size": 16, "std_floor": 0.02, "note": "a \"quoted\" \u00e9 \ud83d\ude00 string"},
 "calibration": {"knots": [[0.0, 0.0], [1.0, 1.2], [2.0, 2.5]]},
 "data": {"flat_std": 0.03, "nested": {"a": [true, false, null, -1.5e-3, {}]}},
 "files": {"onnx": {"name": "x.onnx"}, "safetensors": {"name": "x.safetensors"}}
})";

static void test_model_info() {
    const fd::ModelInfo m = fd::load_model_info(model_dir());
    CHECK(m.levels.size() >= 2 && m.levels[0] == 0.0);
    CHECK(m.patch_size == 32 && m.std_floor > 0 && m.flat_std > 0);
    CHECK(m.calibration.size() >= 2 && m.sigma_max() == m.calibration.back()[1]);
    CHECK(m.onnx_path.find("blur_classifier.onnx") != std::string::npos);

    const std::string dir = write_temp("good", kGoodJson);
    if (!dir.empty()) {
        const fd::ModelInfo g = fd::load_model_info(dir);
        CHECK(g.levels.size() == 4 && g.levels[3] == 2.0 && g.patch_size == 16 && g.flat_std == 0.03);
        CHECK(g.calibration.size() == 3 && g.sigma_max() == 2.5);
        CHECK(g.onnx_path == dir + "/x.onnx" && g.opencv_onnx_path == g.onnx_path);
    }
    const std::pair<const char*, const char*> bad[] = {
        {"{\"levels\": [0, 1]", "not valid JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"levels\": [0, 1], \"levels\" 3}", "expected ':'"},
        {"{}", "lacks levels"},
        {"{\"levels\": [0.0]}", "at least 2 levels"},
        {"{\"levels\": [0, 1], \"input\": {\"patch_size\": 1.5, \"std_floor\": 0.1}}", "patch_size must be an integer"},
        {"{\"levels\": [0, 1], \"input\": {\"patch_size\": 8, \"std_floor\": 0.1}, \"calibration\": {\"knots\": "
         "[[1, 0], [0, 1]]}}",
         "increasing raw values"},
        {"{\"levels\": [0, \"a\"]}", "must be a finite number"},
        {"{\"levels\": [0, 1], \"input\": {\"patch_size\": 8, \"std_floor\": 0.1}, \"calibration\": {\"knots\": "
         "[[0, 0]]}}",
         "lacks files"},
        {"{\"a\": \"unterminated}", "unterminated string"},
        {"{\"a\": 1} x", "unexpected text"},
        {"{\"a\": 1e}", "bad number"},
        {"{\"a\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
         "nesting too deep"},
    };
    for (const auto& b : bad) {
        const std::string d = write_temp("bad", b.first);
        if (d.empty()) continue;
        EXPECT_THROW(fd::ModelError, fd::load_model_info(d), b.second);
    }
    EXPECT_THROW(fd::ModelError, fd::load_model_info("/nonexistent/fastdefocus"), "model metadata not found");
}

// ------------------------------------------------------------------ the whole estimator

// A classifier that puts all probability on one level.
static fd::ClassifierFunction one_hot(int level, int* calls, int64_t* patches_seen) {
    return [=](const float* patches, int64_t n, int64_t patch, float* out, int64_t levels) {
        ++*calls;
        *patches_seen += n;
        for (int64_t i = 0; i < n * patch * patch; ++i)
            if (!std::isfinite(patches[i])) throw std::runtime_error("non-finite patch");
        for (int64_t i = 0; i < n * levels; ++i) out[i] = (i % levels == level) ? 1.0f : 0.0f;
    };
}

static void test_estimator() {
    fd::EstimatorOptions o;
    o.model_path = model_dir();
    o.batch_size = 64;
    o.coarse_levels = 0;  // test_coarse_gating_stream has them
    const fd::ModelInfo m = fd::load_model_info(o.model_path);
    const int64_t h = 70, w = 90;
    std::vector<unsigned char> rgb(h * w * 3);
    std::mt19937 gen(10);
    for (auto& v : rgb) v = static_cast<unsigned char>(gen() & 255);
    for (int level : {0, 7, static_cast<int>(m.levels.size()) - 1}) {
        for (int snap : {0, 10}) {
            int calls = 0;
            int64_t seen = 0;
            o.snap = snap;
            fd::Estimator est(o, one_hot(level, &calls, &seen));
            const auto grid = est.patch_grid(h, w);
            const fd::Result r = est.estimate(fd::ImageView{rgb.data(), h, w, 3});
            CHECK(seen == grid[0] * grid[1] && calls == (seen + 63) / 64);
            CHECK(r.height == h && r.width == w && r.sigma.size() == size_t(h * w) && r.confidence.size() == r.sigma.size());
            const double want = std::min(st::apply_calibration(m.levels[level], m.calibration), m.sigma_max());
            for (float v : r.sigma) CHECK_CLOSE(v, static_cast<float>(want), 1e-4);
            for (float c : r.confidence) CHECK(c >= 0.0f && c <= 1.0f);
            CHECK(r.timings.total >= r.timings.refine && r.timings.classify >= 0);
            CHECK(r.sigma_max == m.sigma_max());
        }
    }
    // sigma0: the quadrature correction (level 0 calibrates to ~0: stays 0 after it)
    {
        int calls = 0;
        int64_t seen = 0;
        fd::EstimatorOptions o2 = o;
        o2.sigma0 = 0.5;
        o2.snap = 0;
        const int level = static_cast<int>(m.levels.size()) - 3;
        fd::Estimator est(o2, one_hot(level, &calls, &seen));
        const fd::Result r = est.estimate(fd::ImageView{rgb.data(), h, w, 3});
        const float s = static_cast<float>(st::apply_calibration(m.levels[level], m.calibration));
        const double want = std::sqrt(std::max(s * s - 0.25f, 0.0f));
        for (float v : r.sigma) CHECK_CLOSE(v, want, 1e-4);
    }
    // given probabilities = the classifier's
    {
        int calls = 0;
        int64_t seen = 0;
        fd::Estimator est(o, one_hot(3, &calls, &seen));
        const auto grid = est.patch_grid(h, w);
        const int64_t L = static_cast<int64_t>(m.levels.size());
        std::vector<float> probs(grid[0] * grid[1] * L, 0.0f);
        for (int64_t i = 0; i < grid[0] * grid[1]; ++i) probs[i * L + 3] = 1.0f;
        const fd::Result a = est.estimate(fd::ImageView{rgb.data(), h, w, 3});
        const fd::Result b = est.estimate_with_probabilities(fd::ImageView{rgb.data(), h, w, 3}, probs.data(),
                                                             grid[0] * grid[1], L);
        CHECK(a.sigma == b.sigma && a.confidence == b.confidence);
        EXPECT_THROW(std::invalid_argument,
                     est.estimate_with_probabilities(fd::ImageView{rgb.data(), h, w, 3}, probs.data(), 5, L),
                     "probabilities must be");
    }
    // threads do not change the map beyond rounding; tiny images work (padded by reflection)
    {
        int calls = 0;
        int64_t seen = 0;
        std::vector<unsigned char> gray(h * w);
        for (auto& v : gray) v = static_cast<unsigned char>(gen() & 255);
        auto classify = [&](const float* patches, int64_t n, int64_t patch, float* out, int64_t levels) {
            for (int64_t i = 0; i < n; ++i) {  // a probability that depends on the patch
                double e = 0;
                for (int64_t j = 1; j < patch * patch; ++j) e += std::fabs(patches[i * patch * patch + j] - patches[i * patch * patch + j - 1]);
                const int64_t level = static_cast<int64_t>(e) % levels;
                for (int64_t l = 0; l < levels; ++l) out[i * levels + l] = l == level ? 0.7f : 0.3f / float(levels - 1);
            }
            ++calls;
            seen += n;
        };
        fd::EstimatorOptions a = o, b = o;
        a.threads = 1;
        b.threads = 3;
        const fd::Result ra = fd::Estimator(a, classify).estimate(fd::ImageView{gray.data(), h, w, 1});
        const fd::Result rb = fd::Estimator(b, classify).estimate(fd::ImageView{gray.data(), h, w, 1});
        for (int64_t i = 0; i < h * w; ++i) CHECK_CLOSE(ra.sigma[i], rb.sigma[i], 1e-4);
        for (int64_t sz : {1, 2, 5, 31, 33}) {
            const fd::Result t = fd::Estimator(o, classify).estimate(fd::ImageView{gray.data(), sz, std::min<int64_t>(sz + 3, w), 1});
            CHECK(t.height == sz && t.sigma.size() == size_t(sz * std::min<int64_t>(sz + 3, w)));
            for (float v : t.sigma) CHECK(std::isfinite(v) && v >= 0.0f && v <= t.sigma_max);
        }
    }
    // bad options and input
    auto noop = [](const float*, int64_t, int64_t, float* out, int64_t levels) {
        for (int64_t i = 0; i < levels; ++i) out[i] = 0;
    };
    fd::EstimatorOptions b = o;
    b.stride = 3;
    EXPECT_THROW(std::invalid_argument, fd::Estimator(b, noop), "stride must divide the model's patch size 32 (one of 1, 2, 4, 8, 16, 32), got 3");
    b = o;
    b.radius = 0.5;
    EXPECT_THROW(std::invalid_argument, fd::Estimator(b, noop), "radius must be a finite number >= 1");
    b = o;
    b.eps = 0;
    EXPECT_THROW(std::invalid_argument, fd::Estimator(b, noop), "eps must be a finite number > 0");
    b = o;
    b.sigma0 = -1;
    EXPECT_THROW(std::invalid_argument, fd::Estimator(b, noop), "sigma0");
    b = o;
    b.max_pixels = 1000;
    int small_calls = 0;
    int64_t small_seen = 0;
    fd::Estimator small(b, one_hot(1, &small_calls, &small_seen));
    EXPECT_THROW(std::invalid_argument, small.estimate(fd::ImageView{rgb.data(), h, w, 3}), "more than the limit");
    b = o;
    b.model_path = "/nonexistent/model";
    EXPECT_THROW(fd::ModelError, fd::Estimator(b, noop), "model metadata not found");
    EXPECT_THROW(std::invalid_argument, fd::Estimator(o, std::shared_ptr<fd::Classifier>()), "classifier must not be null");
    EXPECT_THROW(std::invalid_argument, fd::Estimator(o, fd::ClassifierFunction()), "must not be empty");
    fd::Estimator est(o, [](const float*, int64_t, int64_t, float*, int64_t) { throw std::runtime_error("runtime down"); });
    EXPECT_THROW(std::runtime_error, est.estimate(fd::ImageView{rgb.data(), h, w, 3}), "runtime down");
    fd::Estimator lazy(o, [](const float*, int64_t, int64_t, float*, int64_t) {});  // writes nothing
    EXPECT_THROW(std::runtime_error, lazy.estimate(fd::ImageView{rgb.data(), h, w, 3}), "non-finite or unset");
    EXPECT_THROW(std::invalid_argument, lazy.estimate(fd::ImageView{nullptr, h, w, 3}), "data must not be null");
    EXPECT_THROW(std::invalid_argument, lazy.estimate(fd::ImageView{rgb.data(), h, 0, 3}), "at least 1 x 1");
    EXPECT_THROW(std::invalid_argument, lazy.estimate(fd::ImageView{rgb.data(), h, w, 6}), "channels");
    // the OpenCV DNN runtime, when built in: probabilities of the model's graph
    if (fd::has_opencv_dnn()) {
        auto clf = fd::make_opencv_classifier(m.opencv_onnx_path, 1);
        std::vector<float> patches(3 * 32 * 32), out(3 * m.levels.size());
        std::mt19937 g2(3);
        std::normal_distribution<float> nd;
        for (auto& v : patches) v = nd(g2);
        clf->probabilities(patches.data(), 3, 32, out.data(), static_cast<int64_t>(m.levels.size()));
        for (int i = 0; i < 3; ++i) {
            double sum = 0;
            for (size_t l = 0; l < m.levels.size(); ++l) sum += out[i * m.levels.size() + l];
            CHECK_CLOSE(sum, 1.0, 1e-5);
        }
        fd::EstimatorOptions d;  // the default model folder ($FASTDEFOCUS_MODEL_DIR in ctest)
        d.threads = 1;
        fd::Estimator def(d);
        CHECK(def.classifier_name() == "opencv-dnn");
        const fd::Result r = def.estimate(fd::ImageView{rgb.data(), 40, 40, 3, w * 3});
        for (float v : r.sigma) CHECK(std::isfinite(v) && v >= 0.0f && v <= r.sigma_max);
        EXPECT_THROW(std::runtime_error, fd::make_opencv_classifier("/nonexistent.onnx"), "could not load");
    } else {
        EXPECT_THROW(std::runtime_error, fd::Estimator e(o), "built without OpenCV");
    }
}

// Coarse levels, texture gating, the stream cache and the temporal filter.
static void test_coarse_gating_stream() {
    fd::EstimatorOptions o;
    o.model_path = model_dir();
    o.batch_size = 64;
    o.snap = 0;
    const fd::ModelInfo m = fd::load_model_info(o.model_path);
    const int top = static_cast<int>(m.levels.size()) - 1;
    const int64_t h = 160, w = 200;
    const std::vector<float> img = random_image(h, w, 21);
    const fd::ImageView view{img.data(), h, w, 1, 0, false, fd::PixelType::f32};
    // every patch at the top level: the fine map saturates, both coarse levels run and read it x2, x4
    {
        int calls = 0;
        int64_t seen = 0;
        fd::Estimator est(o, one_hot(top, &calls, &seen));
        const auto grid = est.patch_grid(h, w);
        const fd::Result r = est.estimate(view);
        CHECK(r.coarse_levels_run == 2);
        CHECK(seen > grid[0] * grid[1]);  // the coarse levels classified patches of the shrunk image
        CHECK_CLOSE(r.sigma_max, 4 * m.sigma_max(), 1e-9);
        std::vector<float> sorted = r.sigma;
        std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
        CHECK_CLOSE(sorted[sorted.size() / 2], 4 * m.sigma_max(), 0.05);
        for (float v : r.sigma) CHECK(v >= m.sigma_max() - 1e-3 && v <= r.sigma_max + 1e-3);
        fd::EstimatorOptions off = o;
        off.coarse_levels = 0;
        fd::Estimator est0(off, one_hot(top, &calls, &seen));
        const fd::Result r0 = est0.estimate(view);
        CHECK(r0.coarse_levels_run == 0);
        for (float v : r0.sigma) CHECK(v <= m.sigma_max() + 1e-6);
    }
    // a sharp reading runs no coarse level
    {
        int calls = 0;
        int64_t seen = 0;
        fd::Estimator est(o, one_hot(0, &calls, &seen));
        const auto grid = est.patch_grid(h, w);
        const fd::Result r = est.estimate(view);
        CHECK(r.coarse_levels_run == 0 && seen == grid[0] * grid[1]);
    }
    // texture gating: the flat left half is not classified (one flat patch is, once)
    std::vector<float> half = img;
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < 100; ++x) half[y * w + x] = 0.5f;
    const fd::ImageView half_view{half.data(), h, w, 1, 0, false, fd::PixelType::f32};
    {
        int calls = 0;
        int64_t seen = 0;
        fd::Estimator est(o, one_hot(3, &calls, &seen));
        const auto grid = est.patch_grid(h, w);
        const fd::Result r = est.estimate(half_view);
        const int64_t flat_cols = (100 - 32) / 8 + 1;
        CHECK(r.patches == grid[0] * grid[1]);
        CHECK(r.patches_classified == grid[0] * (grid[1] - flat_cols));
        CHECK(seen == r.patches_classified + 1);
        fd::EstimatorOptions all = o;
        all.flat_gate = 0.0;
        int calls2 = 0;
        int64_t seen2 = 0;
        fd::Estimator est2(all, one_hot(3, &calls2, &seen2));
        const fd::Result r2 = est2.estimate(half_view);
        CHECK(seen2 == r2.patches && r2.patches_classified == r2.patches);
        // the classifier reads every patch alike here, so gating changes nothing
        CHECK(r.sigma == r2.sigma);
        fd::EstimatorOptions bad = o;
        bad.flat_gate = 0.7;
        EXPECT_THROW(std::invalid_argument, fd::Estimator(bad, one_hot(3, &calls, &seen)), "flat_gate");
        bad = o;
        bad.coarse_levels = 9;
        EXPECT_THROW(std::invalid_argument, fd::Estimator(bad, one_hot(3, &calls, &seen)), "coarse_levels");
        bad = o;
        bad.tta = 3;
        EXPECT_THROW(std::invalid_argument, fd::Estimator(bad, one_hot(3, &calls, &seen)), "tta must be 1, 2, 4 or 8");
        // test-time views: each classified patch goes to the classifier once per view (the flat
        // patch once); a classifier that reads every view alike gives the same map
        fd::EstimatorOptions views = o;
        views.tta = 8;
        int calls3 = 0;
        int64_t seen3 = 0;
        fd::Estimator est3(views, one_hot(3, &calls3, &seen3));
        const fd::Result r3 = est3.estimate(half_view);
        CHECK(r3.patches_classified == r.patches_classified && seen3 == 8 * r3.patches_classified + 1);
        CHECK(r3.sigma == r.sigma);
    }
    // stream cache: the same frame again classifies nothing; a changed corner only its patches
    {
        int calls = 0;
        int64_t seen = 0;
        fd::Estimator est(o, one_hot(5, &calls, &seen));
        fd::StreamCache cache;
        const fd::Result a = est.estimate(view, cache);
        const int64_t first = seen;
        const fd::Result b = est.estimate(view, cache);
        CHECK(seen == first && b.patches_reused == a.patches_classified && b.patches_classified == 0);
        CHECK(a.sigma == b.sigma);
        std::vector<float> changed = img;
        for (int64_t y = 0; y < 20; ++y)
            for (int64_t x = 0; x < 20; ++x) changed[y * w + x] = 1.0f - changed[y * w + x];
        const fd::Result c = est.estimate(fd::ImageView{changed.data(), h, w, 1, 0, false, fd::PixelType::f32}, cache);
        CHECK(c.patches_classified == 9 && c.patches_reused == c.patches - 9);  // x0, y0 in {0, 8, 16}
        cache.reset();
        const fd::Result d = est.estimate(view, cache);
        CHECK(d.patches_reused == 0);
    }
    // temporal filter: a static frame averages, a cut starts over
    {
        st::TemporalFilter f;
        const int64_t n = h * w;
        std::vector<float> s1(n, 2.0f), s2(n, 4.0f), c(n, 1.0f), so(n), co(n);
        CHECK(f.update(img.data(), s1.data(), c.data(), h, w, so.data(), co.data()));
        CHECK(!f.update(img.data(), s2.data(), c.data(), h, w, so.data(), co.data()));
        for (float v : so) CHECK_CLOSE(v, 3.0, 1e-5);
        const std::vector<float> other = random_image(h, w, 22);
        CHECK(f.update(other.data(), s2.data(), c.data(), h, w, so.data(), co.data()));
        for (float v : so) CHECK_CLOSE(v, 4.0, 1e-6);
        CHECK(f.frames() == 3);
        EXPECT_THROW(std::invalid_argument, f.update(nullptr, s1.data(), c.data(), h, w, so.data(), co.data()), "null");
    }
}

int main() {
    test_luminance();
    test_gaussian();
    test_pad_and_resize();
    test_patch_statistics();
    test_fill();
    test_splat();
    test_classify();
    test_refine_and_snap();
    test_model_info();
    test_estimator();
    test_coarse_gating_stream();
    std::printf("%s (%d checks, %d failures)\n", failures ? "FAILED" : "OK", checks, failures);
    return failures ? 1 : 0;
}
