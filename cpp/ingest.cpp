// The ingest stage (luminance, discrete Gaussian pre-filter, padding) and the resizes of the
// refine stage, with the semantics of the Python stages (stages/ingest.py, blur.py,
// stages/refine.py: NumPy and cv2.sepFilter2D / cv2.resize).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fastdefocus/stages.hpp"
#include "internal.hpp"
#include "scratch.hpp"

namespace fastdefocus {
namespace stages {

using std::int64_t;

namespace {

// Floats may overshoot [0, 1] by this much (rounding); more is an error (_validate.FLOAT_SLACK).
constexpr double kFloatSlack = 1e-3;

int sample_size(PixelType type) {
    switch (type) {
        case PixelType::u8: return 1;
        case PixelType::u16: return 2;
        case PixelType::f32: return 4;
    }
    throw std::invalid_argument("image type must be PixelType::u8, u16 or f32, got " +
                                std::to_string(static_cast<int>(type)));
}

template <class T>
void luminance_rows(const ImageView& im, int64_t stride, float* out, int64_t y0, int64_t y1) {
    const float l0 = static_cast<float>(params::kLumaWeights[0]);
    const float l1 = static_cast<float>(params::kLumaWeights[1]);
    const float l2 = static_cast<float>(params::kLumaWeights[2]);
    const int c = im.channels;
    const int ir = im.bgr ? 2 : 0, ib = im.bgr ? 0 : 2;
    const bool integer = !std::is_same<T, float>::value;
    const float scale = std::is_same<T, std::uint8_t>::value ? static_cast<float>(1.0 / 255.0)
                                                              : static_cast<float>(1.0 / 65535.0);
    const int64_t w = im.width;
    for (int64_t y = y0; y < y1; ++y) {
        const T* row = reinterpret_cast<const T*>(static_cast<const unsigned char*>(im.data) + y * stride);
        float* o = out + y * w;
        if (c >= 3) {
            for (int64_t x = 0; x < w; ++x) {
                const T* p = row + x * c;
                // NumPy's order: (r * l0 + g * l1) + b * l2, each product rounded to float
                const float r = static_cast<float>(p[ir]) * l0;
                const float g = static_cast<float>(p[1]) * l1;
                const float b = static_cast<float>(p[ib]) * l2;
                float v = r + g;
                v = v + b;
                o[x] = integer ? v * scale : v;
            }
        } else {
            for (int64_t x = 0; x < w; ++x) {
                const float v = static_cast<float>(row[x * c]);
                o[x] = integer ? v * scale : v;
            }
        }
        for (int64_t x = 0; x < w; ++x) o[x] = std::min(std::max(o[x], 0.0f), 1.0f);
    }
}

// Row taps of the separable filter: d[x] = sum_i k[i] * e[x + i], in tap order.
void row_taps_plain(const float* e, const float* k, int64_t ks, float* d, int64_t n) {
    for (int64_t x = 0; x < n; ++x) d[x] = k[0] * e[x];
    for (int64_t i = 1; i < ks; ++i) {
        const float f = k[i];
        const float* ei = e + i;
        for (int64_t x = 0; x < n; ++x) {
            const float p = f * ei[x];
            d[x] = d[x] + p;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma"))) void row_taps_fma(const float* e, const float* k, int64_t ks, float* d,
                                                       int64_t n) {
    for (int64_t x = 0; x < n; ++x) d[x] = k[0] * e[x];
    for (int64_t i = 1; i < ks; ++i) {
        const float f = k[i];
        const float* ei = e + i;
        for (int64_t x = 0; x < n; ++x) d[x] = __builtin_fmaf(f, ei[x], d[x]);
    }
}
bool use_fma() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
#elif defined(__aarch64__)
void row_taps_fma(const float* e, const float* k, int64_t ks, float* d, int64_t n) {
    for (int64_t x = 0; x < n; ++x) d[x] = k[0] * e[x];
    for (int64_t i = 1; i < ks; ++i)
        for (int64_t x = 0; x < n; ++x) d[x] = std::fma(k[i], e[x + i], d[x]);
}
bool use_fma() { return true; }
#else
void row_taps_fma(const float* e, const float* k, int64_t ks, float* d, int64_t n) { row_taps_plain(e, k, ks, d, n); }
bool use_fma() { return false; }
#endif

}  // namespace

void luminance(const ImageView& im, float* out, int threads) {
    if (im.data == nullptr) throw std::invalid_argument("image data must not be null");
    if (im.height < 1 || im.width < 1)
        throw std::invalid_argument("image must be at least 1 x 1 pixels, got height " + std::to_string(im.height) +
                                    ", width " + std::to_string(im.width));
    if (im.channels < 1 || im.channels > 4)
        throw std::invalid_argument("image channels must be 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), got " +
                                    std::to_string(im.channels));
    if (out == nullptr) throw std::invalid_argument("luminance output must not be null");
    const int size = sample_size(im.type);
    const int64_t limit = std::numeric_limits<int64_t>::max() / 64;
    if (im.width > limit / im.channels / size || im.height > limit / im.width)
        throw std::invalid_argument("image is too large: " + std::to_string(im.width) + " x " +
                                    std::to_string(im.height));
    const int64_t packed = im.width * im.channels * size;
    const int64_t stride = im.row_stride == 0 ? packed : im.row_stride;
    if (stride < packed)
        throw std::invalid_argument("image row_stride (" + std::to_string(stride) + " bytes) is smaller than a row of " +
                                    std::to_string(im.width) + " x " + std::to_string(im.channels) + " samples (" +
                                    std::to_string(packed) + " bytes)");
    if (im.height > 1 && stride > (limit - packed) / (im.height - 1))
        throw std::invalid_argument("image row_stride is too large");
    if (size > 1 && (reinterpret_cast<std::uintptr_t>(im.data) % size != 0 || stride % size != 0))
        throw std::invalid_argument("image data and row_stride must be aligned to the sample size (" +
                                    std::to_string(size) + " bytes)");
    if (im.type == PixelType::f32) {  // finite, in [0, 1] up to rounding (as Python's check_image)
        int64_t bad = 0;
        float lo = std::numeric_limits<float>::infinity(), hi = -lo;
        for (int64_t y = 0; y < im.height; ++y) {
            const float* row = reinterpret_cast<const float*>(static_cast<const unsigned char*>(im.data) + y * stride);
            for (int64_t x = 0; x < im.width * im.channels; ++x) {
                const float v = row[x];
                if (!std::isfinite(v)) {
                    ++bad;
                } else {
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
            }
        }
        if (bad)
            throw std::invalid_argument("image contains " + std::to_string(bad) +
                                        " NaN or infinite values: expected finite values in [0, 1]");
        if (lo < -kFloatSlack || hi > 1.0 + kFloatSlack)
            throw std::invalid_argument("image is float with values in [" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + "]: expected [0, 1] (use PixelType::u8 or u16 "
                                        "for 0-255 or 0-65535 data)");
    }
    detail::for_rows(threads, im.height, im.width, [&](int64_t y0, int64_t y1) {
        switch (im.type) {
            case PixelType::u8: luminance_rows<std::uint8_t>(im, stride, out, y0, y1); break;
            case PixelType::u16: luminance_rows<std::uint16_t>(im, stride, out, y0, y1); break;
            case PixelType::f32: luminance_rows<float>(im, stride, out, y0, y1); break;
        }
    });
}

std::vector<double> gaussian_kernel1d(double sigma) {
    if (!std::isfinite(sigma)) throw std::invalid_argument("sigma must be finite, got " + std::to_string(sigma));
    if (sigma <= 0) return {1.0};
    if (sigma > 1e4) throw std::invalid_argument("sigma must be <= 10000 px, got " + std::to_string(sigma));
    const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(4.0 * sigma + 1.0)));
    int64_t n = 1;
    while (n < 8 * radius + 16) n <<= 1;  // 2 ** ceil(log2(8 r + 16))
    // The discrete Gaussian's Fourier transform is exp(t (cos w - 1)), t = sigma^2; its
    // inverse DFT (real and even) at offsets -r..r, summed directly with a cosine table.
    const double pi = 3.14159265358979323846;
    std::vector<double> cosines(static_cast<std::size_t>(n)), spectrum(static_cast<std::size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
        cosines[j] = std::cos(2.0 * pi * static_cast<double>(j) / static_cast<double>(n));
        spectrum[j] = std::exp(sigma * sigma * (cosines[j] - 1.0));
    }
    std::vector<double> kernel(static_cast<std::size_t>(2 * radius + 1));
    double total = 0.0;
    for (int64_t m = 0; m <= radius; ++m) {
        double s = 0.0;
        int64_t idx = 0;
        for (int64_t j = 0; j < n; ++j) {
            s += spectrum[j] * cosines[idx];
            idx += m;
            if (idx >= n) idx -= n;
        }
        s /= static_cast<double>(n);
        kernel[radius + m] = s;
        kernel[radius - m] = s;
    }
    for (double v : kernel) total += v;
    for (double& v : kernel) v /= total;
    return kernel;
}

void gaussian_blur(const float* src, float* dst, int64_t h, int64_t w, double sigma, int threads) {
    detail::require_image(src, "gaussian_blur: src", h, w);
    detail::require_image(dst, "gaussian_blur: dst", h, w);
    if (src == dst) throw std::invalid_argument("gaussian_blur: dst must not be src");
    const std::vector<double> k64 = gaussian_kernel1d(sigma);
    if (k64.size() == 1) {
        std::memcpy(dst, src, static_cast<std::size_t>(h * w) * sizeof(float));
        return;
    }
    // cv2.sepFilter2D converts the kernel to float32 and filters rows, then columns
    std::vector<float> k(k64.begin(), k64.end());
    const int64_t r = static_cast<int64_t>(k.size() / 2), ks = static_cast<int64_t>(k.size());
    detail::Scratch<float> tmp(static_cast<std::size_t>(h * w));
    std::vector<int64_t> cols(static_cast<std::size_t>(w + 2 * r));
    for (int64_t x = 0; x < w + 2 * r; ++x) cols[x] = reflect_index(x - r, w);
    const float* kp = k.data();
    const bool fma = use_fma();
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        std::vector<float> ext(static_cast<std::size_t>(w + 2 * r));
        for (int64_t y = y0; y < y1; ++y) {
            const float* s = src + y * w;
            for (int64_t x = 0; x < w + 2 * r; ++x) ext[x] = s[cols[x]];
            float* d = tmp.get() + y * w;
            const float* e = ext.data();
            // OpenCV's row filter: 4 pixels at a time with fused multiply-adds where the CPU
            // has them (its AVX2 code path), the last w % 4 one by one without
            const int64_t simd = w - w % 4;
            if (fma)
                row_taps_fma(e, kp, ks, d, simd);
            else
                row_taps_plain(e, kp, ks, d, simd);
            row_taps_plain(e + simd, kp, ks, d + simd, w - simd);
        }
    });
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        std::vector<const float*> rows(static_cast<std::size_t>(ks));
        for (int64_t y = y0; y < y1; ++y) {
            for (int64_t i = 0; i < ks; ++i) rows[i] = tmp.get() + reflect_index(y + i - r, h) * w;
            float* d = dst + y * w;
            // OpenCV's column filter: the taps in order, each product rounded
            const float* c = rows[0];
            const float f0 = kp[0];
            for (int64_t x = 0; x < w; ++x) d[x] = f0 * c[x];
            for (int64_t i = 1; i < ks; ++i) {
                const float f = kp[i];
                const float* a = rows[i];
                for (int64_t x = 0; x < w; ++x) {
                    const float p = f * a[x];
                    d[x] = d[x] + p;
                }
            }
        }
    });
}

void pad_reflect(const float* src, int64_t h, int64_t w, float* dst, int64_t ph, int64_t pw) {
    detail::require_image(src, "pad_reflect: src", h, w);
    detail::require_image(dst, "pad_reflect: dst", ph, pw);
    if (ph < h || pw < w)
        throw std::invalid_argument("pad_reflect: the padded size must not be smaller than the image");
    for (int64_t y = 0; y < ph; ++y) {
        const float* s = src + reflect_index(y, h) * w;
        float* d = dst + y * pw;
        std::memcpy(d, s, static_cast<std::size_t>(w) * sizeof(float));
        for (int64_t x = w; x < pw; ++x) d[x] = s[reflect_index(x, w)];
    }
}

namespace {

// Linear interpolation a + (b - a) * t, fused (one rounding) where OpenCV's own kernel is,
// i.e. on CPUs with FMA (OpenCV 5's INTER_LINEAR for float32: lerps in x, then in y).
void lerp_plain(const float* a, const float* b, const float* t, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float d = b[i] - a[i];
        const float p = d * t[i];
        out[i] = a[i] + p;
    }
}
void lerp_plain_scalar_t(const float* a, const float* b, float t, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float d = b[i] - a[i];
        const float p = d * t;
        out[i] = a[i] + p;
    }
}
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma"))) void lerp_fma(const float* a, const float* b, const float* t, float* out,
                                                   int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = __builtin_fmaf(b[i] - a[i], t[i], a[i]);
}
__attribute__((target("avx2,fma"))) void lerp_fma_scalar_t(const float* a, const float* b, float t, float* out,
                                                            int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = __builtin_fmaf(b[i] - a[i], t, a[i]);
}
#else
void lerp_fma(const float* a, const float* b, const float* t, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::fma(b[i] - a[i], t[i], a[i]);
}
void lerp_fma_scalar_t(const float* a, const float* b, float t, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::fma(b[i] - a[i], t, a[i]);
}
#endif

// Source index and weight of every destination index along one axis: position
// (d + 0.5) * src / dst - 0.5 in double, clamped to the first / last sample at the borders.
void linear_axis(int64_t dn, int64_t sn, std::vector<int64_t>& i0, std::vector<int64_t>& i1, std::vector<float>& t) {
    const double scale = static_cast<double>(sn) / static_cast<double>(dn);
    i0.resize(static_cast<std::size_t>(dn));
    i1.resize(static_cast<std::size_t>(dn));
    t.resize(static_cast<std::size_t>(dn));
    for (int64_t d = 0; d < dn; ++d) {
        const double f = (static_cast<double>(d) + 0.5) * scale - 0.5;
        const double fl = std::floor(f);
        int64_t s = static_cast<int64_t>(fl);
        float w = static_cast<float>(f - fl);
        if (s < 0) s = 0, w = 0.0f;
        if (s >= sn - 1) s = sn - 1, w = 0.0f;
        i0[d] = s;
        i1[d] = std::min(s + 1, sn - 1);
        t[d] = w;
    }
}

}  // namespace

void resize_linear(const float* src, int64_t sh, int64_t sw, float* dst, int64_t dh, int64_t dw, int threads) {
    detail::require_image(src, "resize_linear: src", sh, sw);
    detail::require_image(dst, "resize_linear: dst", dh, dw);
    std::vector<int64_t> x0, x1, y0, y1;
    std::vector<float> fx, fy;
    linear_axis(dw, sw, x0, x1, fx);
    linear_axis(dh, sh, y0, y1, fy);
    const bool fma = use_fma();
    auto hresize = [&](const float* s, float* d, float* ga, float* gb) {
        for (int64_t x = 0; x < dw; ++x) {
            ga[x] = s[x0[x]];
            gb[x] = s[x1[x]];
        }
        (fma ? lerp_fma : lerp_plain)(ga, gb, fx.data(), d, dw);
    };
    detail::for_rows(threads, dh, dw, [&](int64_t r0, int64_t r1) {
        std::vector<float> buf(static_cast<std::size_t>(4 * dw));
        float* h0 = buf.data();
        float* h1 = h0 + dw;
        float* ga = h1 + dw;
        float* gb = ga + dw;
        int64_t have0 = -1, have1 = -1;  // source rows in h0, h1
        for (int64_t dy = r0; dy < r1; ++dy) {
            const int64_t s0 = y0[dy], s1 = y1[dy];
            if (have0 != s0) {
                if (have1 == s0) {
                    std::swap(h0, h1);
                    std::swap(have0, have1);
                } else {
                    hresize(src + s0 * sw, h0, ga, gb);
                    have0 = s0;
                }
            }
            if (have1 != s1) {
                hresize(src + s1 * sw, h1, ga, gb);
                have1 = s1;
            }
            (fma ? lerp_fma_scalar_t : lerp_plain_scalar_t)(h0, h1, fy[dy], dst + dy * dw, dw);
        }
    });
}

void resize_area(const float* src, int64_t sh, int64_t sw, float* dst, int64_t dh, int64_t dw, int threads) {
    detail::require_image(src, "resize_area: src", sh, sw);
    detail::require_image(dst, "resize_area: dst", dh, dw);
    if (sh % dh != 0 || sw % dw != 0)
        throw std::invalid_argument("resize_area: only integer shrink factors are supported, got " +
                                    std::to_string(sh) + "x" + std::to_string(sw) + " -> " + std::to_string(dh) +
                                    "x" + std::to_string(dw));
    const int64_t fy = sh / dh, fx = sw / dw;
    if (fy == 1 && fx == 1) {
        std::memcpy(dst, src, static_cast<std::size_t>(sh * sw) * sizeof(float));
        return;
    }
    const int64_t area = fx * fy;
    const float scale = 1.0f / static_cast<float>(area);
    const bool two = fx == 2 && fy == 2;
    detail::for_rows(threads, dh, dw, [&](int64_t y0, int64_t y1) {
        for (int64_t dy = y0; dy < y1; ++dy) {
            const float* s = src + dy * fy * sw;
            float* d = dst + dy * dw;
            int64_t dx = 0;
            if (two) {  // OpenCV's SIMD path for 2 x 2 blocks: ((a + b) + (c + d)) / 4
                const float* s1 = s + sw;
                const int64_t simd_end = dw - dw % 4;
                for (; dx < simd_end; ++dx) {
                    const float top = s[2 * dx] + s[2 * dx + 1];
                    const float bottom = s1[2 * dx] + s1[2 * dx + 1];
                    d[dx] = (top + bottom) * scale;
                }
            }
            for (; dx < dw; ++dx) {  // rows of the block, 4 samples at a time, in OpenCV's order
                float sum = 0.0f;
                int64_t k = 0;
                auto at = [&](int64_t i) { return s[(i / fx) * sw + dx * fx + (i % fx)]; };
                for (; k + 4 <= area; k += 4) sum += ((at(k) + at(k + 1)) + at(k + 2)) + at(k + 3);
                for (; k < area; ++k) sum += at(k);
                d[dx] = sum * scale;
            }
        }
    });
}

}  // namespace stages
}  // namespace fastdefocus
