// pybind11 bindings: fastdefocus._native
//
// Thin wrappers: arrays must already be C-contiguous float32 and 2-D (the
// Python layer in fastdefocus.filters validates and converts once).  The GIL
// is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/estimator.hpp"
#include "fastdefocus/filters.hpp"
#include "fastdefocus/stages.hpp"
#include "parallel.hpp"

namespace py = pybind11;
using Array = py::array_t<float, py::array::c_style>;
using std::int64_t;

namespace {

void require_2d(const Array& a, const char* name) {
    if (a.ndim() != 2)
        throw py::value_error(std::string(name) + " must be 2-D, got ndim=" + std::to_string(a.ndim()));
}

void require_same_shape(const Array& a, const Array& b, const char* name) {
    require_2d(b, name);
    if (a.shape(0) != b.shape(0) || a.shape(1) != b.shape(1))
        throw py::value_error(std::string(name) + " must have the same shape as src");
}

Array box_filter(const Array& src, int64_t radius, int threads) {
    require_2d(src, "src");
    const int64_t h = src.shape(0), w = src.shape(1);
    Array out({h, w});
    const float* s = src.data();
    float* d = out.mutable_data();
    {
        py::gil_scoped_release release;
        fastdefocus::box_filter(s, d, h, w, radius, threads);
    }
    return out;
}

// Optional per-pixel weights of src's shape: a pointer into `holder`, or nullptr for None.
const float* optional_weights(const Array& src, const py::object& weights, Array& holder) {
    if (weights.is_none()) return nullptr;
    holder = weights.cast<Array>();
    require_same_shape(src, holder, "weights");
    return holder.data();
}

Array guided_filter(const Array& src, const Array& guide, const py::object& weights, int64_t radius,
                    double eps, int iterations, int threads) {
    require_2d(src, "src");
    require_same_shape(src, guide, "guide");
    const int64_t h = src.shape(0), w = src.shape(1);
    Array wt;
    const float* wp = optional_weights(src, weights, wt);
    Array out({h, w});
    const float* s = src.data();
    const float* g = guide.data();
    float* d = out.mutable_data();
    {
        py::gil_scoped_release release;
        fastdefocus::iterative_guided_filter(s, g, wp, d, h, w, radius, eps, iterations, threads);
    }
    return out;
}

py::tuple guided_coefficients(const Array& src, const Array& guide, const py::object& weights,
                              int64_t radius, double eps, int threads) {
    require_2d(src, "src");
    require_same_shape(src, guide, "guide");
    const int64_t h = src.shape(0), w = src.shape(1);
    Array wt;
    const float* wp = optional_weights(src, weights, wt);
    Array a({h, w}), b({h, w});
    const float* s = src.data();
    const float* g = guide.data();
    float* ap = a.mutable_data();
    float* bp = b.mutable_data();
    {
        py::gil_scoped_release release;
        fastdefocus::guided_coefficients(s, g, wp, ap, bp, h, w, radius, eps, threads);
    }
    return py::make_tuple(a, b);
}

py::tuple extract_patches(const Array& gray, int64_t size, int64_t stride, bool normalize,
                          double std_floor, int threads) {
    require_2d(gray, "gray");
    const int64_t h = gray.shape(0), w = gray.shape(1);
    const fastdefocus::PatchGrid g = fastdefocus::patch_grid(h, w, size, stride);
    Array out({g.ny * g.nx, size, size});
    const float* s = gray.data();
    float* d = out.mutable_data();
    {
        py::gil_scoped_release release;
        fastdefocus::extract_patches(s, h, w, size, stride, normalize, std_floor, d, threads);
    }
    return py::make_tuple(out, py::make_tuple(g.ny, g.nx));
}

py::tuple scan(const Array& a, int threads) {
    const float* p = a.data();
    const int64_t n = static_cast<int64_t>(a.size());
    fastdefocus::detail::ScanResult r;
    {
        py::gil_scoped_release release;
        r = fastdefocus::detail::scan_values(p, n, threads);
    }
    return py::make_tuple(r.all_finite, r.any_negative);
}


// ------------------------------------------------------------------ the C++ estimator

namespace fd = fastdefocus;
using Array64 = py::array_t<double, py::array::c_style>;

// An image array as an ImageView (the array must stay alive): uint8, uint16 or float32,
// (H, W) or (H, W, C) with C in 1..4; other dtypes are converted to float32. The pixel type is
// found by dtype equivalence, not identity: an unpickled array's dtype is an equal but distinct
// object. Non-contiguous and misaligned arrays are copied.
fd::ImageView image_view(py::array& arr, bool bgr) {
    const bool u8 = py::isinstance<py::array_t<std::uint8_t>>(arr);
    const bool u16 = py::isinstance<py::array_t<std::uint16_t>>(arr);
    const bool f32 = py::isinstance<py::array_t<float>>(arr);
    if (u8 || u16 || f32)
        arr = py::array::ensure(arr, py::array::c_style | py::detail::npy_api::NPY_ARRAY_ALIGNED_);
    else
        arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr);
    if (!arr) throw py::type_error("image must be a numeric array");
    if (arr.ndim() != 2 && arr.ndim() != 3)
        throw py::value_error("image must be 2-D (H, W) or 3-D (H, W, C), got ndim=" + std::to_string(arr.ndim()));
    fd::ImageView v;
    v.data = arr.data();
    v.height = arr.shape(0);
    v.width = arr.shape(1);
    v.channels = arr.ndim() == 3 ? static_cast<int>(arr.shape(2)) : 1;
    if (arr.ndim() == 3 && (arr.shape(2) < 1 || arr.shape(2) > 4))
        throw py::value_error("image must have 1 to 4 channels, got " + std::to_string(arr.shape(2)));
    v.bgr = bgr;
    v.type = u8 ? fd::PixelType::u8 : u16 ? fd::PixelType::u16 : fd::PixelType::f32;
    return v;
}

py::dict timings_dict(const fd::Timings& t) {
    py::dict d;
    d["ingest"] = t.ingest;
    d["patches"] = t.patches;
    d["classify"] = t.classify;
    d["splat"] = t.splat;
    d["refine"] = t.refine;
    d["snap"] = t.snap;
    d["coarse"] = t.coarse;
    d["total"] = t.total;
    return d;
}

// A (h, w) float32 array that owns `plane` (moved, not copied: a frame's planes are megabytes,
// copied while holding the GIL that the other workers of a stream wait for).
Array owning_array(std::vector<float>&& plane, int64_t h, int64_t w) {
    if (static_cast<int64_t>(plane.size()) != h * w) throw std::logic_error("result plane of the wrong size");
    auto owned = std::make_unique<std::vector<float>>(std::move(plane));
    py::capsule free_when_done(owned.get(), [](void* p) { delete static_cast<std::vector<float>*>(p); });
    float* data = owned.release()->data();  // the capsule owns it now
    return Array({h, w}, data, free_when_done);
}

py::tuple result_tuple(fd::Result&& r) {
    Array sigma = owning_array(std::move(r.sigma), r.height, r.width);
    Array conf = owning_array(std::move(r.confidence), r.height, r.width);
    py::dict timings = timings_dict(r.timings);
    // counts (not seconds): the patches of the grid, those classified (the rest were gated), and
    // the coarse levels that ran
    timings["patches_total"] = r.patches;
    timings["patches_classified"] = r.patches_classified;
    timings["coarse_levels_run"] = r.coarse_levels_run;
    timings["patches_reused"] = r.patches_reused;
    return py::make_tuple(sigma, conf, timings);
}

// A Python callable (patches (n, p, p) float32 -> probabilities (n, levels)) as a classifier.
class PyClassifier : public fd::Classifier {
  public:
    explicit PyClassifier(py::object f) : f_(std::move(f)) {}
    ~PyClassifier() override {
        py::gil_scoped_acquire gil;
        f_ = py::object();
    }
    void probabilities(const float* patches, int64_t n, int64_t patch, float* out, int64_t levels) override {
        py::gil_scoped_acquire gil;
        Array batch({n, patch, patch});
        {  // the callable gets a copy it may keep; the copy itself runs without the GIL
            float* dst = batch.mutable_data();
            py::gil_scoped_release release;
            std::memcpy(dst, patches, static_cast<std::size_t>(n * patch * patch) * sizeof(float));
        }
        py::object got = f_(batch);
        auto probs = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(got);
        if (!probs || probs.ndim() != 2 || probs.shape(0) != n || probs.shape(1) != levels)
            throw std::invalid_argument("the classifier must return probabilities of shape (" + std::to_string(n) +
                                        ", " + std::to_string(levels) + ")");
        std::memcpy(out, probs.data(), static_cast<std::size_t>(n * levels) * sizeof(float));
    }
    std::string name() const override { return "python"; }

  private:
    py::object f_;
};

class NoClassifier : public fd::Classifier {
  public:
    void probabilities(const float*, int64_t, int64_t, float*, int64_t) override {
        throw std::invalid_argument("this Estimator has no classifier: pass classifier= (a callable or 'opencv'), "
                                    "or use estimate_from_probabilities with coarse_levels=0 (a coarse level "
                                    "classifies patches of the shrunk image)");
    }
    std::string name() const override { return "none"; }
};

class PyEstimator {
  public:
    PyEstimator(const std::string& model_path, int stride, double sigma0, double radius, double eps, int iterations,
                int snap, int batch_size, int threads, int64_t max_pixels, const py::object& classifier,
                int coarse_levels, double flat_gate, double fill_sigma, int tta) {
        fd::EstimatorOptions o;
        o.model_path = model_path;
        o.stride = stride;
        o.sigma0 = sigma0;
        o.radius = radius;
        o.eps = eps;
        o.iterations = iterations;
        o.snap = snap;
        o.coarse_levels = coarse_levels;
        o.flat_gate = flat_gate;
        o.fill_sigma = fill_sigma;
        o.tta = tta;
        o.batch_size = batch_size;
        o.threads = threads;
        o.max_pixels = max_pixels;
        std::shared_ptr<fd::Classifier> c;
        if (classifier.is_none()) {
            c = std::make_shared<NoClassifier>();
        } else if (py::isinstance<py::str>(classifier)) {
            const std::string name = classifier.cast<std::string>();
            if (name != "opencv") throw py::value_error("classifier must be None, 'opencv' or a callable, got '" + name + "'");
            const fd::ModelInfo info = fd::load_model_info(model_path.empty() ? fd::default_model_dir() : model_path);
            c = std::shared_ptr<fd::Classifier>(fd::make_opencv_classifier(info.opencv_onnx_path, threads));
        } else if (PyCallable_Check(classifier.ptr())) {
            c = std::make_shared<PyClassifier>(classifier);
        } else {
            throw py::type_error("classifier must be None, 'opencv' or a callable");
        }
        est_.reset(new fd::Estimator(o, c));
    }

    py::tuple estimate(py::array image, bool bgr, const py::object& cache) {
        const fd::ImageView v = image_view(image, bgr);
        fd::StreamCache* c = cache.is_none() ? nullptr : cache.cast<fd::StreamCache*>();
        fd::Result r;
        {
            py::gil_scoped_release release;
            r = c != nullptr ? est_->estimate(v, *c) : est_->estimate(v);
        }
        return result_tuple(std::move(r));
    }

    py::tuple estimate_from_probabilities(py::array image, const py::array_t<float, py::array::c_style | py::array::forcecast>& probs,
                                          bool bgr) {
        const fd::ImageView v = image_view(image, bgr);
        if (probs.ndim() != 2) throw py::value_error("probabilities must be 2-D (patches, levels)");
        fd::Result r;
        const float* p = probs.data();
        const int64_t n = probs.shape(0), l = probs.shape(1);
        {
            py::gil_scoped_release release;
            r = est_->estimate_with_probabilities(v, p, n, l);
        }
        return result_tuple(std::move(r));
    }

    py::tuple patch_grid(int64_t h, int64_t w) const {
        const auto g = est_->patch_grid(h, w);
        return py::make_tuple(g[0], g[1]);
    }
    double sigma_max() const {  // the range: the model's, doubled by each coarse level (Result::sigma_max)
        return est_->model().sigma_max() * static_cast<double>(int64_t{1} << est_->options().coarse_levels);
    }
    std::string classifier_name() const { return est_->classifier_name(); }
    py::dict options() const {
        const fd::EstimatorOptions& o = est_->options();
        py::dict d;
        d["stride"] = o.stride;
        d["sigma0"] = o.sigma0;
        d["radius"] = o.radius;
        d["eps"] = o.eps;
        d["iterations"] = o.iterations;
        d["snap"] = o.snap;
        d["coarse_levels"] = o.coarse_levels;
        d["flat_gate"] = o.flat_gate;
        d["fill_sigma"] = o.fill_sigma;
        d["tta"] = o.tta;
        d["batch_size"] = o.batch_size;
        d["threads"] = o.threads;
        d["model_path"] = o.model_path;
        d["max_pixels"] = o.max_pixels;
        return d;
    }

  private:
    std::unique_ptr<fd::Estimator> est_;
};

py::object stage_coarse_region(const Array& sigma, double lo, int64_t factor, int64_t margin, int64_t min_area) {
    require_2d(sigma, "sigma");
    const fd::stages::CoarseRegion r =
        fd::stages::coarse_region(sigma.data(), sigma.shape(0), sigma.shape(1), lo, factor, margin, min_area);
    if (r.empty()) return py::none();
    return py::make_tuple(r.y0, r.y1, r.x0, r.x1);
}

// merge on copies: returns the merged (sigma, confidence)
py::tuple stage_merge_coarse(const Array& sigma, const Array& confidence, const Array& coarse_sigma,
                             const Array& coarse_conf, double lo, double hi, double conf_full) {
    require_2d(sigma, "sigma");
    require_same_shape(sigma, confidence, "confidence");
    require_same_shape(sigma, coarse_sigma, "coarse_sigma");
    require_same_shape(sigma, coarse_conf, "coarse_conf");
    const int64_t h = sigma.shape(0), w = sigma.shape(1);
    Array s({h, w}), c({h, w});
    std::memcpy(s.mutable_data(), sigma.data(), static_cast<std::size_t>(h * w) * sizeof(float));
    std::memcpy(c.mutable_data(), confidence.data(), static_cast<std::size_t>(h * w) * sizeof(float));
    fd::stages::merge_coarse(s.mutable_data(), c.mutable_data(), w, h, w, coarse_sigma.data(), coarse_conf.data(), w,
                             1.0f, lo, hi, conf_full);
    return py::make_tuple(s, c);
}

// stages::TemporalFilter with NumPy maps: update(luminance, sigma, confidence) -> (sigma, confidence, cut)
class PyTemporalFilter {
  public:
    py::tuple update(const Array& lum, const Array& sigma, const Array& confidence, int threads) {
        require_2d(lum, "luminance");
        require_same_shape(lum, sigma, "sigma");
        require_same_shape(lum, confidence, "confidence");
        const int64_t h = lum.shape(0), w = lum.shape(1);
        Array s({h, w}), c({h, w});
        bool cut;
        {
            py::gil_scoped_release release;
            cut = f_.update(lum.data(), sigma.data(), confidence.data(), h, w, s.mutable_data(), c.mutable_data(),
                            threads);
        }
        return py::make_tuple(s, c, cut);
    }
    void reset() { f_.reset(); }
    int64_t frames() const { return f_.frames(); }

  private:
    fd::stages::TemporalFilter f_;
};

py::dict model_info(const std::string& dir) {
    const fd::ModelInfo m = fd::load_model_info(dir);
    py::dict d;
    d["directory"] = m.directory;
    d["levels"] = m.levels;
    py::list knots;
    for (const auto& k : m.calibration) knots.append(py::make_tuple(k[0], k[1]));
    d["calibration"] = knots;
    d["std_floor"] = m.std_floor;
    d["patch_size"] = m.patch_size;
    d["flat_std"] = m.flat_std;
    d["onnx_path"] = m.onnx_path;
    d["opencv_onnx_path"] = m.opencv_onnx_path;
    d["sigma_max"] = m.sigma_max();
    return d;
}

Array64 vector64(const std::vector<double>& v, int64_t h, int64_t w) {
    Array64 a({h, w});
    std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(double));
    return a;
}

Array vector32(const std::vector<float>& v, int64_t h, int64_t w) {
    Array a({h, w});
    std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
    return a;
}

// ---- stages one by one (parity tests against the Python stages)

Array stage_luminance(py::array image, bool bgr, int threads) {
    const fd::ImageView v = image_view(image, bgr);
    Array out({v.height, v.width});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        fd::stages::luminance(v, o, threads);
    }
    return out;
}

Array stage_gaussian_blur(const Array& src, double sigma, int threads) {
    require_2d(src, "src");
    Array out({src.shape(0), src.shape(1)});
    const float* s = src.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        fd::stages::gaussian_blur(s, o, src.shape(0), src.shape(1), sigma, threads);
    }
    return out;
}

Array stage_resize(const Array& src, int64_t h, int64_t w, bool area, int threads) {
    require_2d(src, "src");
    Array out({h, w});
    const float* s = src.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        if (area)
            fd::stages::resize_area(s, src.shape(0), src.shape(1), o, h, w, threads);
        else
            fd::stages::resize_linear(s, src.shape(0), src.shape(1), o, h, w, threads);
    }
    return out;
}

Array stage_pad(const Array& src, int64_t h, int64_t w) {
    require_2d(src, "src");
    Array out({h, w});
    fd::stages::pad_reflect(src.data(), src.shape(0), src.shape(1), out.mutable_data(), h, w);
    return out;
}

py::dict stage_patch_statistics(const Array& padded, int64_t ny, int64_t nx, int64_t patch, int64_t stride,
                                double flat_std, int threads) {
    require_2d(padded, "padded");
    fd::stages::PatchStatistics st;
    const float* p = padded.data();
    {
        py::gil_scoped_release release;
        st = fd::stages::patch_statistics(p, padded.shape(0), padded.shape(1), ny, nx, patch, stride, flat_std, threads);
    }
    py::dict d;
    d["texture"] = vector64(st.texture, ny, nx);
    d["mean"] = vector64(st.mean, ny, nx);
    d["agreement"] = vector64(st.agreement, ny, nx);
    d["patch_sharpness"] = vector64(st.patch_sharpness, ny, nx);
    d["cell_sharpness"] = vector64(st.cell_sharpness, st.cy, st.cx);
    return d;
}

Array64 stage_tent_sum(const Array64& values, int64_t patch, int64_t stride) {
    if (values.ndim() != 2) throw py::value_error("values must be 2-D");
    const int64_t k = patch / std::max<int64_t>(stride, 1);
    const auto v = fd::stages::tent_sum(values.data(), values.shape(0), values.shape(1), patch, stride);
    return vector64(v, values.shape(0) + k - 1, values.shape(1) + k - 1);
}

Array stage_fill_flat(const Array& values, const Array64& weights, const Array64& guide, int64_t stride, double sigma) {
    require_2d(values, "values");
    for (const Array64* a : {&weights, &guide})
        if (a->ndim() != 2 || a->shape(0) != values.shape(0) || a->shape(1) != values.shape(1))
            throw py::value_error(std::string(a == &weights ? "weights" : "guide") + " must have the shape of values");
    if (stride < 1) throw py::value_error("stride must be >= 1");
    Array out({values.shape(0), values.shape(1)});
    fd::stages::fill_flat(values.data(), weights.data(), guide.data(), values.shape(0), values.shape(1), stride, sigma,
                          out.mutable_data());
    return out;
}

py::tuple stage_splat(const Array& values, const Array64& weights, int64_t patch, int64_t stride, double lift,
                      const py::object& patch_sharpness, const py::object& cell_sharpness, double match_tau,
                      int threads) {
    require_2d(values, "values");
    if (weights.ndim() != 2 || weights.shape(0) != values.shape(0) || weights.shape(1) != values.shape(1))
        throw py::value_error("weights must have the shape of values");
    Array64 ps, cs;
    const double* psp = nullptr;
    const double* csp = nullptr;
    const int64_t ny = values.shape(0), nx = values.shape(1);
    if (!patch_sharpness.is_none() || !cell_sharpness.is_none()) {
        ps = patch_sharpness.cast<Array64>();
        cs = cell_sharpness.cast<Array64>();
        const int64_t k = patch / std::max<int64_t>(stride, 1);
        if (ps.ndim() != 2 || ps.shape(0) != ny || ps.shape(1) != nx)
            throw py::value_error("patch_sharpness must have the shape of values");
        if (cs.ndim() != 2 || cs.shape(0) != ny + k - 1 || cs.shape(1) != nx + k - 1)
            throw py::value_error("cell_sharpness must have the shape of the cells");
        psp = ps.data();
        csp = cs.data();
    }
    fd::stages::SplatResult r;
    {
        py::gil_scoped_release release;
        r = fd::stages::splat(values.data(), weights.data(), ny, nx, patch, stride, lift, psp, csp, match_tau, 1e-6,
                              threads);
    }
    const int64_t k = patch / stride;
    return py::make_tuple(vector32(r.values, ny + k - 1, nx + k - 1), vector32(r.weights, ny + k - 1, nx + k - 1));
}

Array stage_refine(const Array& cell_values, const Array& cell_weights, const Array& guide, int64_t stride,
                   double radius, double eps, int iterations, int threads) {
    require_2d(cell_values, "cell_values");
    require_same_shape(cell_values, cell_weights, "cell_weights");
    require_2d(guide, "guide");
    const int64_t hc = cell_values.shape(0), wc = cell_values.shape(1);
    if (guide.shape(0) != hc * stride || guide.shape(1) != wc * stride)
        throw py::value_error("guide must be (cells * stride) in each direction");
    Array out({hc * stride, wc * stride});
    const float *v = cell_values.data(), *w = cell_weights.data(), *g = guide.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        fd::stages::refine(v, w, hc, wc, g, stride, radius, eps, iterations, o, threads);
    }
    return out;
}

Array stage_snap(const Array& sigma, const Array& lum, int radius, int threads) {
    require_2d(sigma, "sigma");
    require_same_shape(sigma, lum, "luminance");
    Array out({sigma.shape(0), sigma.shape(1)});
    const float *s = sigma.data(), *l = lum.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        fd::stages::snap_boundaries(s, l, sigma.shape(0), sigma.shape(1), radius, o, threads);
    }
    return out;
}

py::tuple stage_min_max(const Array& src, int64_t radius, int threads) {
    require_2d(src, "src");
    Array lo({src.shape(0), src.shape(1)}), hi({src.shape(0), src.shape(1)});
    const float* s = src.data();
    float *l = lo.mutable_data(), *h = hi.mutable_data();
    {
        py::gil_scoped_release release;
        fd::stages::min_max_filter(s, src.shape(0), src.shape(1), radius, l, h, threads);
    }
    return py::make_tuple(lo, hi);
}

Array stage_snap_evidence(const Array& lum, int threads) {
    require_2d(lum, "luminance");
    Array out({lum.shape(0), lum.shape(1)});
    fd::stages::snap_evidence(lum.data(), lum.shape(0), lum.shape(1), out.mutable_data(), threads);
    return out;
}

py::tuple stage_classify(const Array& probs, const std::string& model_dir) {
    require_2d(probs, "probabilities");
    const fd::ModelInfo m = fd::load_model_info(model_dir);
    const int64_t n = probs.shape(0), l = probs.shape(1);
    if (l != static_cast<int64_t>(m.levels.size())) throw py::value_error("probabilities must have one column per level");
    Array64 raw({n}), calibrated({n});
    Array conf({n});
    for (int64_t i = 0; i < n; ++i) {
        const float* row = probs.data() + i * l;
        raw.mutable_data()[i] = fd::stages::expected_sigma_raw(row, m.levels);
        calibrated.mutable_data()[i] = fd::stages::apply_calibration(raw.data()[i], m.calibration);
        conf.mutable_data()[i] = fd::stages::confidence_from_probs(row, l);
    }
    return py::make_tuple(raw, calibrated, conf);
}

}  // namespace

#ifndef FASTDEFOCUS_NATIVE_ARCH
#define FASTDEFOCUS_NATIVE_ARCH "baseline"
#endif

PYBIND11_MODULE(_native, m) {
    // the instruction set this build was compiled for (FASTDEFOCUS_ARCH; the package loads the
    // x86-64-v3 build where the CPU has it: fastdefocus/__init__.py)
    m.attr("arch") = FASTDEFOCUS_NATIVE_ARCH;
    m.doc() = "Native (C++) kernels of fastdefocus; use fastdefocus.filters instead.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const fastdefocus::ModelError& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });
    m.attr("WEIGHT_FLOOR") = fastdefocus::kWeightFloor;
    m.def("box_filter", &box_filter, py::arg("src"), py::arg("radius"), py::arg("threads") = 0);
    m.def("guided_filter", &guided_filter, py::arg("src"), py::arg("guide"), py::arg("weights"),
          py::arg("radius"), py::arg("eps"), py::arg("iterations") = 1, py::arg("threads") = 0);
    m.def("guided_coefficients", &guided_coefficients, py::arg("src"), py::arg("guide"),
          py::arg("weights"), py::arg("radius"), py::arg("eps"), py::arg("threads") = 0);
    m.def("extract_patches", &extract_patches, py::arg("gray"), py::arg("size"), py::arg("stride"),
          py::arg("normalize"), py::arg("std_floor"), py::arg("threads") = 0);
    m.def("scan", &scan, py::arg("a"), py::arg("threads") = 0,
          "(all_finite, any_negative) of a float32 C-contiguous array, in one pass.");
    m.def("reflect_index", &fastdefocus::reflect_index, py::arg("j"), py::arg("n"));
    m.def("default_threads", &fastdefocus::default_threads);
    m.def("release_scratch", &fastdefocus::release_scratch,
          "Free the calling thread's kept scratch planes (up to 64 MB; the next frame allocates them again).");
    m.def("scratch_kept_bytes", &fastdefocus::scratch_kept_bytes, "Bytes of scratch planes the calling thread keeps.");
    m.attr("has_openmp") = fastdefocus::built_with_openmp();

    // The C++ estimator (cpp/fastdefocus/estimator.hpp) and its stages, for parity tests
    // and for callers that bring their own classifier.
    m.attr("has_opencv_dnn") = fastdefocus::has_opencv_dnn();
    py::class_<PyEstimator>(m, "Estimator")
        .def(py::init<const std::string&, int, double, double, double, int, int, int, int, int64_t, const py::object&,
                      int, double, double, int>(),
             py::arg("model_path") = "", py::arg("stride") = fd::params::kDefaultStride,
             py::arg("sigma0") = fd::params::kDefaultSigma0, py::arg("radius") = fd::params::kDefaultRadius,
             py::arg("eps") = fd::params::kDefaultEps, py::arg("iterations") = fd::params::kDefaultIterations,
             py::arg("snap") = fd::params::kDefaultSnap, py::arg("batch_size") = fd::params::kDefaultBatchSize,
             py::arg("threads") = 0, py::arg("max_pixels") = -1, py::arg("classifier") = py::none(),
             py::arg("coarse_levels") = fd::params::kDefaultCoarseLevels,
             py::arg("flat_gate") = fd::params::kDefaultFlatGate, py::arg("fill_sigma") = fd::params::kDefaultFillSigma,
             py::arg("tta") = fd::params::kDefaultTta)
        .def("estimate", &PyEstimator::estimate, py::arg("image"), py::arg("bgr") = false,
             py::arg("cache") = py::none(),
             "(sigma, confidence, timings) of an image (uint8 / uint16 / float32, (H, W) or (H, W, C)); "
             "with a StreamCache, the next frame of a stream (unchanged patches keep their probabilities).")
        .def("estimate_from_probabilities", &PyEstimator::estimate_from_probabilities, py::arg("image"),
             py::arg("probabilities"), py::arg("bgr") = false,
             "The whole C++ pipeline with the classifier's probabilities given (patches x levels).")
        .def("patch_grid", &PyEstimator::patch_grid, py::arg("height"), py::arg("width"))
        .def_property_readonly("sigma_max", &PyEstimator::sigma_max)
        .def_property_readonly("classifier_name", &PyEstimator::classifier_name)
        .def_property_readonly("options", &PyEstimator::options);
    m.def("model_info", &model_info, py::arg("directory"));
    py::class_<fd::StreamCache>(m, "StreamCache")
        .def(py::init<>())
        .def("reset", &fd::StreamCache::reset);
    py::class_<PyTemporalFilter>(m, "TemporalFilter")
        .def(py::init<>())
        .def("update", &PyTemporalFilter::update, py::arg("luminance"), py::arg("sigma"), py::arg("confidence"),
             py::arg("threads") = 0,
             "(sigma, confidence, cut) of one frame's map filtered with the stream so far (stages/temporal.py).")
        .def("reset", &PyTemporalFilter::reset)
        .def_property_readonly("frames", &PyTemporalFilter::frames);
    m.def("stage_coarse_gate", &fd::stages::coarse_gate, py::arg("level"));
    m.def("stage_coarse_region", &stage_coarse_region, py::arg("sigma"), py::arg("lo"), py::arg("factor"),
          py::arg("margin"), py::arg("min_area") = fd::params::kCoarseMinArea);
    m.def("stage_merge_coarse", &stage_merge_coarse, py::arg("sigma"), py::arg("confidence"), py::arg("coarse_sigma"),
          py::arg("coarse_conf"), py::arg("lo"), py::arg("hi"), py::arg("conf_full") = fd::params::kCoarseConf);
    m.def("stage_luminance", &stage_luminance, py::arg("image"), py::arg("bgr") = false, py::arg("threads") = 0);
    m.def("gaussian_kernel1d", &fd::stages::gaussian_kernel1d, py::arg("sigma"));
    m.def("stage_gaussian_blur", &stage_gaussian_blur, py::arg("src"), py::arg("sigma"), py::arg("threads") = 0);
    m.def("stage_resize", &stage_resize, py::arg("src"), py::arg("height"), py::arg("width"), py::arg("area") = false,
          py::arg("threads") = 0);
    m.def("stage_pad", &stage_pad, py::arg("src"), py::arg("height"), py::arg("width"));
    m.def("stage_patch_statistics", &stage_patch_statistics, py::arg("padded"), py::arg("ny"), py::arg("nx"),
          py::arg("patch"), py::arg("stride"), py::arg("flat_std"), py::arg("threads") = 0);
    m.def("stage_tent_sum", &stage_tent_sum, py::arg("values"), py::arg("patch"), py::arg("stride"));
    m.def("stage_fill_flat", &stage_fill_flat, py::arg("values"), py::arg("weights"), py::arg("guide"), py::arg("stride"),
          py::arg("sigma") = fd::params::kDefaultFillSigma,
          "Patch values with the patches of weight <= 0 filled from their neighbourhood (stages/fill.py).");
    m.def("stage_splat", &stage_splat, py::arg("values"), py::arg("weights"), py::arg("patch"), py::arg("stride"),
          py::arg("lift"), py::arg("patch_sharpness") = py::none(), py::arg("cell_sharpness") = py::none(),
          py::arg("match_tau") = fd::params::kMatchTau, py::arg("threads") = 0);
    m.def("stage_classify", &stage_classify, py::arg("probabilities"), py::arg("model_dir"),
          "(raw expected sigma, calibrated sigma, confidence) per patch.");
    m.def("stage_refine", &stage_refine, py::arg("cell_values"), py::arg("cell_weights"), py::arg("guide"),
          py::arg("stride"), py::arg("radius"), py::arg("eps"), py::arg("iterations"), py::arg("threads") = 0);
    m.def("stage_snap", &stage_snap, py::arg("sigma"), py::arg("luminance"), py::arg("radius"), py::arg("threads") = 0);
    m.def("stage_snap_evidence", &stage_snap_evidence, py::arg("luminance"), py::arg("threads") = 0);
    m.def("stage_min_max", &stage_min_max, py::arg("src"), py::arg("radius"), py::arg("threads") = 0,
          "The snap's window minimum and maximum over (2 radius + 1)^2 px, outside the image ignored.");
}
