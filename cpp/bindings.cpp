// pybind11 bindings: fastdefocus._native
//
// Thin wrappers: arrays must already be C-contiguous float32 and 2-D (the
// Python layer in fastdefocus.filters validates and converts once).  The GIL
// is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "fastdefocus/filters.hpp"
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

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "Native (C++) kernels of fastdefocus; use fastdefocus.filters instead.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
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
    m.attr("has_openmp") = fastdefocus::built_with_openmp();
}
