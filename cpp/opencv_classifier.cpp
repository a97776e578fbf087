// The OpenCV DNN classifier (cv::dnn::readNetFromONNX, CPU backend).
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "fastdefocus/estimator.hpp"

namespace fastdefocus {

namespace {

class OpenCvClassifier : public Classifier {
  public:
    OpenCvClassifier(const std::string& path, int threads) {
        try {
            net_ = cv::dnn::readNetFromONNX(path);
        } catch (const cv::Exception& e) {
            throw std::runtime_error("OpenCV DNN could not load the classifier " + path + ": " + e.what() +
                                     " (OpenCV before 4.7 needs a graph exported with "
                                     "python -m fastdefocus.train.export_opencv)");
        }
        if (net_.empty()) throw std::runtime_error("OpenCV DNN could not load the classifier " + path);
        net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        if (threads > 0) cv::setNumThreads(threads);
    }

    void probabilities(const float* patches, std::int64_t n, std::int64_t patch, float* out,
                       std::int64_t levels) override {
        if (n <= 0) return;
        const int shape[4] = {static_cast<int>(n), 1, static_cast<int>(patch), static_cast<int>(patch)};
        // a header on the caller's patches (setInput copies them)
        const cv::Mat blob(4, shape, CV_32F, const_cast<float*>(patches));
        cv::Mat probs;
        try {
            net_.setInput(blob);
            probs = net_.forward();
        } catch (const cv::Exception& e) {
            throw std::runtime_error(std::string("OpenCV DNN inference failed: ") + e.what());
        }
        if (probs.type() != CV_32F || probs.total() != static_cast<std::size_t>(n * levels))
            throw std::runtime_error("OpenCV DNN returned " + std::to_string(probs.total()) + " values, expected " +
                                     std::to_string(n) + " x " + std::to_string(levels));
        if (!probs.isContinuous()) probs = probs.clone();
        std::copy(probs.ptr<float>(), probs.ptr<float>() + n * levels, out);
    }

    std::string name() const override { return "opencv-dnn"; }

  private:
    cv::dnn::Net net_;
};

}  // namespace

bool has_opencv_dnn() noexcept { return true; }

std::unique_ptr<Classifier> make_opencv_classifier(const std::string& onnx_path, int threads) {
    return std::unique_ptr<Classifier>(new OpenCvClassifier(onnx_path, threads));
}

}  // namespace fastdefocus
