// fastdefocus::Estimator: the stages of DefocusEstimator.estimate (src/fastdefocus/estimator.py)
// chained, with the classifier behind fastdefocus::Classifier.
#include "fastdefocus/estimator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastdefocus/filters.hpp"
#include "fastdefocus/stages.hpp"
#include "internal.hpp"
#include "scratch.hpp"

namespace fastdefocus {

using std::int64_t;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string list_divisors(int p) {
    std::string s;
    for (int d = 1; d <= p; ++d)
        if (p % d == 0) s += (s.empty() ? "" : ", ") + std::to_string(d);
    return s;
}

void require_finite(const char* name, double v, double low, bool inclusive) {
    if (!std::isfinite(v) || v < low || (!inclusive && v == low))
        throw std::invalid_argument(std::string(name) + " must be a finite number " + (inclusive ? ">= " : "> ") +
                                    std::to_string(low) + ", got " + std::to_string(v));
}

}  // namespace

EstimatorOptions validated_options(const EstimatorOptions& options, const ModelInfo& model) {
    EstimatorOptions o = options;
    const int p = model.patch_size;
    if (o.stride < 1 || o.stride > p || p % o.stride != 0)
        throw std::invalid_argument("stride must divide the model's patch size " + std::to_string(p) + " (one of " +
                                    list_divisors(p) + "), got " + std::to_string(o.stride));
    require_finite("sigma0", o.sigma0, 0.0, true);
    if (o.sigma0 > 1e4) throw std::invalid_argument("sigma0 must be <= 10000 px, got " + std::to_string(o.sigma0));
    require_finite("radius", o.radius, 1.0, true);
    require_finite("eps", o.eps, 0.0, false);
    if (o.iterations < 0) throw std::invalid_argument("iterations must be >= 0, got " + std::to_string(o.iterations));
    if (o.snap < 0) throw std::invalid_argument("snap must be >= 0, got " + std::to_string(o.snap));
    if (o.coarse_levels < 0 || o.coarse_levels > kMaxCoarseLevels)
        throw std::invalid_argument("coarse_levels must be in [0, " + std::to_string(kMaxCoarseLevels) + "], got " +
                                    std::to_string(o.coarse_levels));
    require_finite("fill_sigma", o.fill_sigma, 0.0, true);
    if (o.fill_sigma != 0.0 && (o.fill_sigma < params::kMinFillSigma || o.fill_sigma > params::kMaxFillSigma))
        throw std::invalid_argument("fill_sigma must be 0 (off) or in [1, 10000] px, got " +
                                    std::to_string(o.fill_sigma));
    if (!(o.flat_gate >= 0.0 && o.flat_gate <= 0.5))
        throw std::invalid_argument("flat_gate must be in [0, 0.5], got " + std::to_string(o.flat_gate));
    if (std::find(std::begin(params::kTtaViews), std::end(params::kTtaViews), o.tta) == std::end(params::kTtaViews))
        throw std::invalid_argument("tta must be 1, 2, 4 or 8 (views per patch), got " + std::to_string(o.tta));
    if (o.batch_size < 1) throw std::invalid_argument("batch_size must be >= 1, got " + std::to_string(o.batch_size));
    if (o.threads < 0) throw std::invalid_argument("threads must be >= 0, got " + std::to_string(o.threads));
    if (o.max_pixels < -1)
        throw std::invalid_argument("max_pixels must be -1 (auto), 0 (no limit) or >= 1, got " +
                                    std::to_string(o.max_pixels));
    if (o.max_pixels == -1) {  // Python's default_max_pixels
        const int64_t per_pixel = 64 + 4 * static_cast<int64_t>(p) * p / (static_cast<int64_t>(o.stride) * o.stride);
        o.max_pixels = params::kMemoryBudget / per_pixel;
    }
    return o;
}

struct StreamCache::Data {
    const void* owner = nullptr;  // the estimator that filled it (another one's probabilities never count)
    int64_t ph = 0, pw = 0;
    std::vector<float> padded;  // the previous frame's padded (pre-filtered) luminance
    std::vector<float> probs;   // and its patch probabilities
};

struct Estimator::Impl {
    EstimatorOptions options;
    ModelInfo model;
    std::shared_ptr<Classifier> classifier;

    Result run(const ImageView& image, const float* given, int64_t given_n, int64_t given_levels,
               StreamCache::Data* cache = nullptr);
    // The classifier's probabilities of a flat patch (all zeros once normalised): those of the
    // gated patches.  Computed on first use.
    std::vector<float> flat_probabilities();
    std::shared_ptr<std::vector<float>> flat_probs;
    std::mutex flat_mutex;
    // The coarse levels (stages/coarse.py raise_with_coarse_levels) on a finished map.
    int raise_with_coarse_levels(Result& result, const float* lum);
};

namespace {

ModelInfo load_for(const EstimatorOptions& options) {
    return load_model_info(options.model_path.empty() ? default_model_dir(options.package_model_dir)
                                                      : options.model_path);
}

}  // namespace

Estimator::Estimator(const EstimatorOptions& options) : impl_(new Impl) {
    impl_->model = load_for(options);
    impl_->options = validated_options(options, impl_->model);
    impl_->classifier = std::shared_ptr<Classifier>(make_opencv_classifier(impl_->model.opencv_onnx_path, options.threads));
}

Estimator::Estimator(const EstimatorOptions& options, std::shared_ptr<Classifier> classifier) : impl_(new Impl) {
    if (!classifier) throw std::invalid_argument("classifier must not be null");
    impl_->model = load_for(options);
    impl_->options = validated_options(options, impl_->model);
    impl_->classifier = std::move(classifier);
}

Estimator::Estimator(const EstimatorOptions& options, ClassifierFunction classifier)
    : Estimator(options, std::shared_ptr<Classifier>(make_function_classifier(std::move(classifier)))) {}

Estimator::~Estimator() = default;
Estimator::Estimator(Estimator&&) noexcept = default;
Estimator& Estimator::operator=(Estimator&&) noexcept = default;

const EstimatorOptions& Estimator::options() const noexcept { return impl_->options; }
const ModelInfo& Estimator::model() const noexcept { return impl_->model; }
std::string Estimator::classifier_name() const { return impl_->classifier ? impl_->classifier->name() : ""; }

std::array<int64_t, 2> Estimator::patch_grid(int64_t height, int64_t width) const {
    const PatchGrid g = fastdefocus::patch_grid(height, width, impl_->model.patch_size, impl_->options.stride);
    return {g.ny, g.nx};
}

Result Estimator::estimate(const ImageView& image) {
    if (!impl_) throw std::logic_error("estimate on a moved-from Estimator");
    return impl_->run(image, nullptr, 0, 0);
}

Result Estimator::estimate(const ImageView& image, StreamCache& cache) {
    if (!impl_) throw std::logic_error("estimate on a moved-from Estimator");
    return impl_->run(image, nullptr, 0, 0, cache.d_.get());
}

StreamCache::StreamCache() : d_(new Data) {}
StreamCache::~StreamCache() = default;
StreamCache::StreamCache(StreamCache&&) noexcept = default;
StreamCache& StreamCache::operator=(StreamCache&&) noexcept = default;
void StreamCache::reset() { *d_ = Data(); }

Result Estimator::estimate_with_probabilities(const ImageView& image, const float* probabilities, int64_t n_patches,
                                              int64_t levels) {
    if (!impl_) throw std::logic_error("estimate on a moved-from Estimator");
    if (probabilities == nullptr) throw std::invalid_argument("probabilities must not be null");
    return impl_->run(image, probabilities, n_patches, levels);
}

namespace {

// Per patch of the (ny, nx) grid: 1 when all its pixels in `now` equal those in `before`
// (both padded, ph x pw), compared cell by cell (stride x stride) with memcmp.
std::vector<unsigned char> unchanged_patches(const float* now, const std::vector<float>& before,
                                             int64_t ph, int64_t pw, int64_t ny, int64_t nx, int64_t p, int64_t s) {
    const int64_t k = p / s, cy = ph / s, cx = pw / s;
    std::vector<unsigned char> cell(static_cast<std::size_t>(cy * cx), 1);
    for (int64_t y = 0; y < ph; ++y) {
        const float* a = now + y * pw;
        const float* b = before.data() + y * pw;
        for (int64_t X = 0; X < cx; ++X) {
            unsigned char& c = cell[static_cast<std::size_t>((y / s) * cx + X)];
            if (c && std::memcmp(a + X * s, b + X * s, static_cast<std::size_t>(s) * sizeof(float)) != 0) c = 0;
        }
    }
    std::vector<unsigned char> patch(static_cast<std::size_t>(ny * nx), 1);
    for (int64_t i = 0; i < ny; ++i)
        for (int64_t j = 0; j < nx; ++j) {
            unsigned char ok = 1;
            for (int64_t a = 0; a < k && ok; ++a)
                for (int64_t b = 0; b < k && ok; ++b) ok = cell[static_cast<std::size_t>((i + a) * cx + j + b)];
            patch[static_cast<std::size_t>(i * nx + j)] = ok;
        }
    return patch;
}

// View `view` (0-7) of n square p x p patches, into `out` (stages/classify.py dihedral_view):
// y[r][c] = x[a][b], (a, b) = (r, c) or (c, r) from view 4, b mirrored by bit 0, a by bit 1.
void dihedral_view(const float* in, int64_t n, int64_t p, int view, float* out) {
    for (int64_t k = 0; k < n; ++k) {
        const float* x = in + k * p * p;
        float* y = out + k * p * p;
        for (int64_t r = 0; r < p; ++r)
            for (int64_t c = 0; c < p; ++c) {
                int64_t a = (view & 4) ? c : r, b = (view & 4) ? r : c;
                if (view & 1) b = p - 1 - b;
                if (view & 2) a = p - 1 - a;
                y[r * p + c] = x[a * p + b];
            }
    }
}

}  // namespace

Result Estimator::Impl::run(const ImageView& image, const float* given, int64_t given_n, int64_t given_levels,
                            StreamCache::Data* cache) {
    using clock = std::chrono::steady_clock;
    const EstimatorOptions& o = options;
    const int threads = o.threads;
    const int64_t p = model.patch_size, s = o.stride, k = p / s;
    const int64_t L = static_cast<int64_t>(model.levels.size());
    Result result;
    const auto t0 = clock::now();

    // ---- ingest
    if (image.height < 1 || image.width < 1)
        throw std::invalid_argument("image must be at least 1 x 1 pixels, got height " + std::to_string(image.height) +
                                    ", width " + std::to_string(image.width));
    const int64_t h = image.height, w = image.width;
    if (o.max_pixels > 0) {
        const int64_t limit = std::max(o.max_pixels, p * p);
        const bool over = h > limit || w > limit || std::max(h, p) > limit / std::max(w, p);
        if (over)
            throw std::invalid_argument("image (padded to the " + std::to_string(p) + "-px patch) is " +
                                        std::to_string(w) + " x " + std::to_string(h) +
                                        " pixels, more than the limit of " + std::to_string(limit) +
                                        " pixels: downscale or crop it, or raise EstimatorOptions::max_pixels");
    }
    const PatchGrid grid = fastdefocus::patch_grid(h, w, p, s);
    const int64_t ny = grid.ny, nx = grid.nx, npatch = ny * nx;
    if (given != nullptr && (given_n != npatch || given_levels != L))
        throw std::invalid_argument("probabilities must be " + std::to_string(npatch) + " x " + std::to_string(L) +
                                    " (the patch grid " + std::to_string(ny) + " x " + std::to_string(nx) +
                                    " by the model's levels), got " + std::to_string(given_n) + " x " +
                                    std::to_string(given_levels));
    // the frame's planes come from the thread's scratch pool (scratch.hpp): a stream reuses them
    detail::Scratch<float> lum(static_cast<std::size_t>(h * w));
    stages::luminance(image, lum.data(), threads);
    detail::Scratch<float> filtered;
    if (o.sigma0 > 0) {
        filtered = detail::Scratch<float>(lum.size());
        stages::gaussian_blur(lum.data(), filtered.data(), h, w, o.sigma0, threads);
    }
    const float* source = o.sigma0 > 0 ? filtered.data() : lum.data();
    const auto t1 = clock::now();
    result.timings.ingest = std::chrono::duration<double>(t1 - t0).count();

    // ---- patches (extracted batch by batch, classified right away) and their statistics
    const int64_t ph = (ny + k - 1) * s, pw = (nx + k - 1) * s;
    detail::Scratch<float> padded_source(static_cast<std::size_t>(ph * pw));
    stages::pad_reflect(source, h, w, padded_source.data(), ph, pw);
    const stages::PatchStatistics stats =
        stages::patch_statistics(padded_source.data(), ph, pw, ny, nx, p, s, model.flat_std, threads);
    double t_patches = seconds_since(t1);
    double t_classify = 0;
    detail::Scratch<float> probs;
    const float* P = given;
    result.patches = npatch;  // patches_classified stays 0 when the probabilities are given
    if (given != nullptr)
        for (int64_t i = 0; i < npatch * L; ++i)
            if (!std::isfinite(given[i])) throw std::invalid_argument("probabilities must be finite");
    if (given == nullptr) {
        // texture gating: a patch whose luminance std is below flat_gate x flat_std carries no blur
        // evidence (its texture confidence, hence its weight in the map, is 0 from 0.5 x flat_std
        // down): it is not classified and gets the probabilities of a flat (all-zero) patch
        std::vector<int64_t> keep;
        const double gate_std = o.flat_gate * model.flat_std;
        auto gated = [&](int64_t i) { return stats.texture[i] < gate_std; };
        // a stream: the patches whose pixels are the previous frame's keep its probabilities
        std::vector<unsigned char> same;
        // (the same estimator, hence stride and levels, and the same padded size: the same grid)
        const bool reusing = cache != nullptr && cache->owner == this && cache->ph == ph && cache->pw == pw;
        if (reusing) same = unchanged_patches(padded_source.data(), cache->padded, ph, pw, ny, nx, p, s);
        const bool gating = o.flat_gate > 0 || reusing;
        if (gating) {
            keep.reserve(static_cast<std::size_t>(npatch));
            for (int64_t i = 0; i < npatch; ++i)
                if (!gated(i) && !(reusing && same[static_cast<std::size_t>(i)])) keep.push_back(i);
        }
        const int64_t nclass = gating ? static_cast<int64_t>(keep.size()) : npatch;
        result.patches_classified = nclass;
        const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(o.batch_size, nclass));
        detail::Scratch<float> patches(static_cast<std::size_t>(batch * p * p));
        detail::Scratch<float> rows(gating ? static_cast<std::size_t>(batch * L) : 0);
        // test-time views: the batch in view v, and the probabilities of one view
        detail::Scratch<float> view_patches(o.tta > 1 ? static_cast<std::size_t>(batch * p * p) : 0);
        detail::Scratch<float> view_rows(o.tta > 1 ? static_cast<std::size_t>(batch * L) : 0);
        probs = detail::Scratch<float>(static_cast<std::size_t>(npatch * L));
        std::fill(probs.begin(), probs.end(), std::numeric_limits<float>::quiet_NaN());
        for (int64_t start = 0; start < nclass; start += batch) {
            const int64_t n = std::min(batch, nclass - start);
            const auto ta = clock::now();
            if (gating)
                extract_patch_list(source, h, w, p, s, true, model.std_floor, keep.data() + start, n, patches.data(),
                                   threads);
            else
                extract_patch_range(source, h, w, p, s, true, model.std_floor, start, n, patches.data(), threads);
            const auto tb = clock::now();
            t_patches += std::chrono::duration<double>(tb - ta).count();
            float* out = gating ? rows.data() : probs.data() + start * L;
            std::fill(out, out + n * L, std::numeric_limits<float>::quiet_NaN());
            classifier->probabilities(patches.data(), n, p, out, L);
            if (o.tta > 1) {  // the mean over the views, summed in view order (dihedral_probabilities)
                for (int v = 1; v < o.tta; ++v) {
                    dihedral_view(patches.data(), n, p, v, view_patches.data());
                    std::fill(view_rows.begin(), view_rows.begin() + n * L, std::numeric_limits<float>::quiet_NaN());
                    classifier->probabilities(view_patches.data(), n, p, view_rows.data(), L);
                    for (int64_t i = 0; i < n * L; ++i) out[i] += view_rows[i];
                }
                const float views = static_cast<float>(o.tta);
                for (int64_t i = 0; i < n * L; ++i) out[i] /= views;
            }
            if (gating)
                for (int64_t j = 0; j < n; ++j)
                    std::copy_n(out + j * L, L, probs.data() + keep[static_cast<std::size_t>(start + j)] * L);
            t_classify += seconds_since(tb);
        }
        if (nclass < npatch) {
            const auto ta = clock::now();
            std::vector<float> flat;
            for (int64_t i = 0; i < npatch; ++i) {
                if (gated(i)) {
                    if (flat.empty()) flat = flat_probabilities();
                    std::copy_n(flat.data(), L, probs.data() + i * L);
                } else if (reusing && same[static_cast<std::size_t>(i)]) {
                    std::copy_n(cache->probs.data() + i * L, L, probs.data() + i * L);
                    ++result.patches_reused;
                }
            }
            t_classify += seconds_since(ta);
        }
        if (cache != nullptr) {  // this frame is the next one's reference
            cache->owner = this;
            cache->ph = ph;
            cache->pw = pw;
            cache->padded.assign(padded_source.begin(), padded_source.end());  // keeps its capacity
            cache->probs.assign(probs.begin(), probs.end());
        }
        {
            for (float v : probs)
                if (!std::isfinite(v))
                    throw std::runtime_error("the classifier (" + classifier->name() +
                                             ") left non-finite or unset probabilities");
            P = probs.data();
        }
    }
    result.timings.patches = t_patches;
    result.timings.classify = t_classify;
    const auto t3 = clock::now();

    // ---- classify outputs -> splat
    detail::Scratch<float> sigma_patch(static_cast<std::size_t>(npatch));
    detail::Scratch<double> conf_patch(static_cast<std::size_t>(npatch)), splat_weight(static_cast<std::size_t>(npatch));
    const float s0sq = static_cast<float>(o.sigma0 * o.sigma0);
    const double flat = model.flat_std;
    for (int64_t i = 0; i < npatch; ++i) {
        const float* row = P + i * L;
        float sp = static_cast<float>(stages::apply_calibration(stages::expected_sigma_raw(row, model.levels),
                                                                model.calibration));
        if (o.sigma0 > 0) {  // float32 as NumPy: sqrt(max(s^2 - sigma0^2, 0))
            const float sq = sp * sp;
            sp = std::sqrt(std::max(sq - s0sq, 0.0f));
        }
        sigma_patch[i] = sp;
        const double texture_conf = std::min(std::max((stats.texture[i] - 0.5 * flat) / (1.5 * flat), 0.0), 1.0);
        conf_patch[i] = static_cast<double>(stages::confidence_from_probs(row, L)) * texture_conf;
        splat_weight[i] = conf_patch[i] * stats.agreement[i];
    }
    // flat patches (confidence 0) take the confidence-weighted value of their neighbourhood
    if (o.fill_sigma > 0)
        stages::fill_flat(sigma_patch.data(), conf_patch.data(), stats.mean.data(), ny, nx, s, o.fill_sigma,
                          sigma_patch.data());
    const stages::SplatResult cells =
        stages::splat(sigma_patch.data(), splat_weight.data(), ny, nx, p, s, params::kSplatLift,
                      stats.patch_sharpness.data(), stats.cell_sharpness.data(), params::kMatchTau, 1e-6, threads);
    const int64_t cy = ny + k - 1, cx = nx + k - 1;
    detail::Scratch<float> cell_conf(static_cast<std::size_t>(cy * cx));
    {
        const std::vector<double> num = stages::tent_sum(conf_patch.data(), ny, nx, p, s);
        const std::vector<double> ones(static_cast<std::size_t>(npatch), 1.0);
        const std::vector<double> den = stages::tent_sum(ones.data(), ny, nx, p, s);
        for (std::size_t i = 0; i < cell_conf.size(); ++i) cell_conf[i] = static_cast<float>(num[i] / den[i]);
    }
    const auto t4 = clock::now();
    result.timings.splat = std::chrono::duration<double>(t4 - t3).count();

    // ---- refine
    detail::Scratch<float> guide(static_cast<std::size_t>(ph * pw));
    stages::pad_reflect(lum.data(), h, w, guide.data(), ph, pw);
    detail::Scratch<float> dense(static_cast<std::size_t>(ph * pw));
    stages::refine(cells.values.data(), cells.weights.data(), cy, cx, guide.data(), s, o.radius, o.eps, o.iterations,
                   dense.data(), threads);
    detail::Scratch<float> dense_conf(static_cast<std::size_t>(ph * pw));
    stages::resize_linear(cell_conf.data(), cy, cx, dense_conf.data(), ph, pw, threads);
    result.height = h;
    result.width = w;
    result.sigma_max = model.sigma_max();
    result.sigma.resize(static_cast<std::size_t>(h * w));
    result.confidence.resize(static_cast<std::size_t>(h * w));
    const float smax = static_cast<float>(result.sigma_max);
    detail::for_rows(threads, h, w, [&](int64_t y0, int64_t y1) {
        for (int64_t y = y0; y < y1; ++y) {
            const float* d = dense.data() + y * pw;
            const float* c = dense_conf.data() + y * pw;
            float* so = result.sigma.data() + y * w;
            float* co = result.confidence.data() + y * w;
            for (int64_t x = 0; x < w; ++x) {
                so[x] = std::min(std::max(d[x], 0.0f), smax);
                co[x] = std::min(std::max(c[x], 0.0f), 1.0f);
            }
        }
    });
    const auto t5 = clock::now();
    result.timings.refine = std::chrono::duration<double>(t5 - t4).count();

    // ---- snap (within [local min, local max] of the clipped map: stays clipped)
    if (o.snap > 0) stages::snap_boundaries(result.sigma.data(), lum.data(), h, w, o.snap, result.sigma.data(), threads);
    result.timings.snap = seconds_since(t5);

    // ---- coarse levels (only where the map saturates)
    const auto t6 = clock::now();
    if (o.coarse_levels > 0) result.coarse_levels_run = raise_with_coarse_levels(result, lum.data());
    result.sigma_max = model.sigma_max() * static_cast<double>(int64_t{1} << o.coarse_levels);
    result.timings.coarse = seconds_since(t6);
    result.timings.total = seconds_since(t0);
    return result;
}

std::vector<float> Estimator::Impl::flat_probabilities() {
    std::lock_guard<std::mutex> lock(flat_mutex);  // one estimator may serve several threads
    if (!flat_probs) {
        const int64_t p = model.patch_size, L = static_cast<int64_t>(model.levels.size());
        const std::vector<float> zero(static_cast<std::size_t>(p * p), 0.0f);
        auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(L),
                                                        std::numeric_limits<float>::quiet_NaN());
        classifier->probabilities(zero.data(), 1, p, out->data(), L);
        flat_probs = out;
    }
    return *flat_probs;
}

int Estimator::Impl::raise_with_coarse_levels(Result& result, const float* lum) {
    const int64_t h = result.height, w = result.width, p = model.patch_size;
    Impl level;  // the estimator at the coarse scale: no snap, pre-filter or levels of its own
    level.model = model;
    level.options = options;
    level.options.snap = 0;
    level.options.sigma0 = 0.0;
    level.options.coarse_levels = 0;
    level.options.max_pixels = 0;
    level.classifier = classifier;
    level.flat_probs = flat_probs;
    int ran = 0;
    for (int L = 1; L <= options.coarse_levels; ++L) {
        const int64_t f = int64_t{1} << L;
        const std::array<double, 2> g = stages::coarse_gate(L);
        // where the map is past the gate's full point: the level runs there (and ramps from g[0])
        const stages::CoarseRegion r = stages::coarse_region(result.sigma.data(), h, w, g[1], f, p * f);
        if (r.empty()) break;
        const int64_t rh = r.y1 - r.y0, rw = r.x1 - r.x0;
        const int64_t ph = (rh + f - 1) / f * f, pw = (rw + f - 1) / f * f;
        std::vector<float> crop(static_cast<std::size_t>(rh * rw));
        for (int64_t y = 0; y < rh; ++y)
            std::copy_n(lum + (r.y0 + y) * w + r.x0, rw, crop.data() + y * rw);
        std::vector<float> padded(static_cast<std::size_t>(ph * pw));
        stages::pad_reflect(crop.data(), rh, rw, padded.data(), ph, pw);
        std::vector<float> small(static_cast<std::size_t>((ph / f) * (pw / f)));
        stages::resize_area(padded.data(), ph, pw, small.data(), ph / f, pw / f, options.threads);
        ImageView view;
        view.data = small.data();
        view.height = ph / f;
        view.width = pw / f;
        view.channels = 1;
        view.type = PixelType::f32;
        const Result coarse = level.run(view, nullptr, 0, 0);
        std::vector<float> up_sigma(static_cast<std::size_t>(ph * pw)), up_conf(up_sigma.size());
        stages::resize_linear(coarse.sigma.data(), ph / f, pw / f, up_sigma.data(), ph, pw, options.threads);
        stages::resize_linear(coarse.confidence.data(), ph / f, pw / f, up_conf.data(), ph, pw, options.threads);
        const int64_t offset = r.y0 * w + r.x0;
        stages::merge_coarse(result.sigma.data() + offset, result.confidence.data() + offset, w, rh, rw,
                             up_sigma.data(), up_conf.data(), pw, static_cast<float>(f), g[0], g[1]);
        ++ran;
    }
    return ran;
}

}  // namespace fastdefocus
