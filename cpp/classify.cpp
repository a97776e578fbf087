// The classify stage: probabilities -> expected sigma, calibration, confidence
// (stages/classify.py), and the classifier wrapping a function.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastdefocus/estimator.hpp"
#include "fastdefocus/stages.hpp"

namespace fastdefocus {
namespace stages {

double expected_sigma_raw(const float* probabilities, const std::vector<double>& levels) {
    double s = 0;
    for (std::size_t i = 0; i < levels.size(); ++i) s += static_cast<double>(probabilities[i]) * levels[i];
    return s;
}

double apply_calibration(double x, const std::vector<std::array<double, 2>>& knots) {
    // np.interp: clamped at both ends, knots[j] <= x < knots[j + 1] inside
    const std::size_t n = knots.size();
    if (n == 0) throw std::invalid_argument("apply_calibration: no knots");
    if (std::isnan(x)) return x;
    if (x <= knots[0][0]) return knots[0][1];
    if (x >= knots[n - 1][0]) return knots[n - 1][1];
    std::size_t lo = 0, hi = n - 1;  // knots[lo].x <= x < knots[hi].x
    while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        if (knots[mid][0] <= x)
            lo = mid;
        else
            hi = mid;
    }
    const double x0 = knots[lo][0], x1 = knots[lo + 1][0], y0 = knots[lo][1], y1 = knots[lo + 1][1];
    if (x == x0) return y0;
    const double slope = (y1 - y0) / (x1 - x0);
    double r = slope * (x - x0) + y0;
    if (std::isnan(r)) {
        r = slope * (x - x1) + y1;
        if (std::isnan(r) && y0 == y1) r = y0;
    }
    return r;
}

float confidence_from_probs(const float* p, std::int64_t levels) {
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < levels; ++i)
        if (p[i] > p[best]) best = i;  // the first maximum, as argmax
    double c = 0;
    for (std::int64_t o = -1; o <= 1; ++o) {
        const std::int64_t i = best + o;
        if (i >= 0 && i < levels) c += static_cast<double>(p[i]);
    }
    return static_cast<float>(std::min(std::max(c, 0.0), 1.0));
}

}  // namespace stages

namespace {

class FunctionClassifier : public Classifier {
  public:
    FunctionClassifier(ClassifierFunction f, std::string name) : f_(std::move(f)), name_(std::move(name)) {
        if (!f_) throw std::invalid_argument("classifier function must not be empty");
    }
    void probabilities(const float* patches, std::int64_t n, std::int64_t patch, float* out,
                       std::int64_t levels) override {
        f_(patches, n, patch, out, levels);
    }
    std::string name() const override { return name_; }

  private:
    ClassifierFunction f_;
    std::string name_;
};

}  // namespace

std::unique_ptr<Classifier> make_function_classifier(ClassifierFunction function, std::string name) {
    return std::unique_ptr<Classifier>(new FunctionClassifier(std::move(function), std::move(name)));
}

#ifndef FASTDEFOCUS_HAVE_OPENCV
bool has_opencv_dnn() noexcept { return false; }

std::unique_ptr<Classifier> make_opencv_classifier(const std::string&, int) {
    throw std::runtime_error("fastdefocus was built without OpenCV, so it has no built-in classifier runtime: "
                             "pass a Classifier or a ClassifierFunction (ONNX Runtime, TensorRT, ...) to the "
                             "Estimator, or rebuild with OpenCV (FASTDEFOCUS_OPENCV=ON)");
}
#endif

}  // namespace fastdefocus
