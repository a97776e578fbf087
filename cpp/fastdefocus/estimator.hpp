// fastdefocus/estimator.hpp - the whole defocus estimator in C++17, no Python.
//
//   #include <fastdefocus/estimator.hpp>
//   fastdefocus::EstimatorOptions options;       // defaults = Python's EstimatorConfig
//   fastdefocus::Estimator estimator(options);   // the installed model, OpenCV DNN classifier
//   fastdefocus::Result r = estimator.estimate(fastdefocus::ImageView{pixels, height, width, 3});
//   // r.sigma[y * r.width + x]: Gaussian blur sigma in px; r.confidence in [0, 1]
//
// The stages and their defaults are those of the Python CPU estimator
// (fastdefocus.DefocusEstimator.estimate): luminance (Rec. 601) and the optional sigma0
// pre-filter, patches, classify (expected sigma, calibration, confidence), splat, refine
// (weighted guided filter, guided upsampling), boundary snap, sigma0 correction and the
// clip to the model's sigma_max.  Stage functions: <fastdefocus/stages.hpp>.
//
// The classifier is behind fastdefocus::Classifier: the OpenCV DNN runtime (when the
// library was built with OpenCV: has_opencv_dnn()), or any runtime the caller already
// has (ONNX Runtime, TensorRT, ...) as a ClassifierFunction.
//
// Bad arguments throw std::invalid_argument naming what was wrong; a missing or
// malformed model file throws fastdefocus::ModelError (a std::runtime_error).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdefocus/params.hpp"

namespace fastdefocus {

// Sample type of an ImageView.
enum class PixelType : int {
    u8 = 0,   // 0-255
    u16 = 1,  // 0-65535
    f32 = 2,  // float in [0, 1] (finite; values are clipped to [0, 1])
};

// A borrowed image: row-major, channels interleaved.  1 channel: gray; 2: gray + alpha;
// 3: RGB (BGR with bgr = true); 4: RGBA (BGRA).  Alpha is ignored.
struct ImageView {
    const void* data = nullptr;
    std::int64_t height = 0;
    std::int64_t width = 0;
    int channels = 0;
    // Bytes from one row to the next; 0: width * channels * the sample size (packed rows).
    std::int64_t row_stride = 0;
    // Colour channels in OpenCV's order (cv::imread gives BGR).
    bool bgr = false;
    PixelType type = PixelType::u8;
};

// find_package(fastdefocus) gives its consumers the installed model's folder as this
// definition (a hint for default_model_dir(); relocatable, whatever --prefix was installed to).
#ifndef FASTDEFOCUS_PACKAGE_MODEL_DIR
#define FASTDEFOCUS_PACKAGE_MODEL_DIR ""
#endif

// Options of the estimator; the defaults are Python's EstimatorConfig's (params.hpp).
struct EstimatorOptions {
    int stride = params::kDefaultStride;            // patch grid step (px): divides the patch size
    double sigma0 = params::kDefaultSigma0;         // noise pre-filter sigma (px), 0: off
    double radius = params::kDefaultRadius;         // refinement guided-filter radius (px), >= 1
    double eps = params::kDefaultEps;               // its regularisation (luminance^2), > 0
    int iterations = params::kDefaultIterations;    // guided-filter passes, 0: bilinear only
    int snap = params::kDefaultSnap;                // boundary snap half-width (px), 0: off
    // Coarse levels for blur past the classifier's top level (each halves the image and
    // doubles the range; 2: to about 26 px), run only where the finer map saturates; 0: off.
    // They classify patches of the shrunk image, so estimate_with_probabilities needs the
    // estimator's classifier when one runs.
    int coarse_levels = params::kDefaultCoarseLevels;
    // Texture gating: patches whose luminance std is below flat_gate x the model's flat_std
    // are not classified (their weight in the map is 0 anyway: the texture confidence is 0
    // below 0.5 x flat_std) and take the probabilities of a flat patch.  In [0, 0.5]; 0: off.
    double flat_gate = params::kDefaultFlatGate;
    // Flat fill: patches of confidence 0 (too flat to carry blur evidence) take the
    // confidence-weighted, edge-aware value of the patches around them, within about this
    // sigma in px (stages/fill.py); 0: off.
    double fill_sigma = params::kDefaultFillSigma;  // 0, or in [params::kMinFillSigma, params::kMaxFillSigma]
    // Test-time views: each classified patch goes to the classifier in this many of its
    // dihedral views (stages/classify.py dihedral_view: 2 the patch and its mirror, 4 with
    // the other mirror and the 180-degree rotation, 8 all) and the probabilities are averaged;
    // 1: off.  One of params::kTtaViews; costs that many classifier calls.
    int tta = params::kDefaultTta;
    int batch_size = params::kDefaultBatchSize;     // patches per classifier call
    int threads = 0;                                // 0: default_threads() (filters.hpp)
    std::string model_path;                         // folder of blur_classifier.json; empty:
                                                    // default_model_dir(package_model_dir)
    std::string package_model_dir = FASTDEFOCUS_PACKAGE_MODEL_DIR;  // set by find_package(fastdefocus)
    // Largest H x W accepted: -1 (auto): what fits in params::kMemoryBudget bytes at this
    // stride (as Python's default_max_pixels); 0: no limit.
    std::int64_t max_pixels = -1;
};

// Per-stage wall times, in seconds.
struct Timings {
    double ingest = 0, patches = 0, classify = 0, splat = 0, refine = 0, snap = 0, coarse = 0, total = 0;
};

struct Result {
    std::int64_t height = 0, width = 0;
    std::vector<float> sigma;       // height * width, row-major: blur sigma in px, in [0, sigma_max]
    std::vector<float> confidence;  // height * width, in [0, 1]
    double sigma_max = 0;           // the largest sigma reported: the model's, x 2^coarse_levels
    int coarse_levels_run = 0;      // coarse levels that ran on this image (0: none was needed)
    std::int64_t patches_reused = 0;  // of a stream's frame: patches whose probabilities were the
                                      // previous frame's (their pixels did not change)
    std::int64_t patches = 0;       // patches of the (fine) grid
    std::int64_t patches_classified = 0;  // of which the classifier saw (the rest were gated)
    Timings timings;
};

// A model file is missing, unreadable or malformed.
class ModelError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// What the model's metadata (blur_classifier.json) says about it.
struct ModelInfo {
    std::string directory;                          // the folder it was read from
    std::vector<double> levels;                     // blur level (sigma px) of each class
    std::vector<std::array<double, 2>> calibration; // knots (raw expected sigma, sigma), raw increasing
    double std_floor = 0;                           // per-patch normalisation floor
    int patch_size = 0;
    double flat_std = params::kFlatStd;             // data.flat_std (default params::kFlatStd)
    std::string onnx_path;                          // files.onnx (ONNX Runtime)
    // The graph the OpenCV DNN runtime reads: files.onnx_opencv when listed, else
    // blur_classifier_opencv.onnx when that file is there, else onnx_path.
    std::string opencv_onnx_path;
    double sigma_max() const { return calibration.empty() ? 0.0 : calibration.back()[1]; }
};

// The largest coarse_levels accepted (Python's config.MAX_COARSE_LEVELS).
inline constexpr int kMaxCoarseLevels = 4;

// Reads <directory>/blur_classifier.json (levels, input.patch_size, input.std_floor,
// calibration.knots, data.flat_std, files.onnx).  Throws ModelError.
ModelInfo load_model_info(const std::string& directory);

// The model folder used when EstimatorOptions::model_path is empty, the first that holds
// blur_classifier.json of: $FASTDEFOCUS_MODEL_DIR, `package_hint` (the folder find_package
// found), <shared library or executable dir>/../share/fastdefocus, the configured install
// prefix's share/fastdefocus, the source tree's src/fastdefocus/weights.  Throws ModelError
// naming the places looked at when none does.
std::string default_model_dir(const std::string& package_hint = FASTDEFOCUS_PACKAGE_MODEL_DIR);

// The classifier: normalised patches in, class probabilities out.
class Classifier {
  public:
    virtual ~Classifier() = default;
    // patches: n x patch x patch floats (row-major, each (p - mean) / max(std, std_floor));
    // out: n x levels probabilities (each row sums to 1).  n <= the batch size.
    virtual void probabilities(const float* patches, std::int64_t n, std::int64_t patch, float* out,
                               std::int64_t levels) = 0;
    virtual std::string name() const = 0;
};

// A classifier as a function (a runtime the caller already has: ONNX Runtime, TensorRT, ...).
using ClassifierFunction = std::function<void(const float* patches, std::int64_t n, std::int64_t patch,
                                              float* out, std::int64_t levels)>;

std::unique_ptr<Classifier> make_function_classifier(ClassifierFunction function,
                                                     std::string name = "function");

// True when this library was built with OpenCV's DNN module.
bool has_opencv_dnn() noexcept;

// The OpenCV DNN classifier of an ONNX graph (cv::dnn::readNetFromONNX, CPU).  threads > 0
// sets cv::setNumThreads (process-wide).  Throws std::runtime_error without OpenCV or when
// the graph does not load.
std::unique_ptr<Classifier> make_opencv_classifier(const std::string& onnx_path, int threads = 0);

// What a stream of same-sized frames carries from one frame to the next: the previous frame's
// luminance and patch probabilities, so that a patch whose pixels did not change (bit for bit)
// keeps its probabilities instead of being classified again.  One per stream; not shared
// between threads.  Used with another Estimator, it starts over (nothing is reused across models).
class StreamCache {
  public:
    StreamCache();
    ~StreamCache();
    StreamCache(StreamCache&&) noexcept;
    StreamCache& operator=(StreamCache&&) noexcept;
    void reset();  // forget the previous frame

  private:
    friend class Estimator;
    struct Data;
    std::unique_ptr<Data> d_;
};

class Estimator {
  public:
    // The model's OpenCV DNN classifier (throws std::runtime_error when built without OpenCV:
    // pass a classifier then).
    explicit Estimator(const EstimatorOptions& options = EstimatorOptions());
    Estimator(const EstimatorOptions& options, std::shared_ptr<Classifier> classifier);
    Estimator(const EstimatorOptions& options, ClassifierFunction classifier);
    ~Estimator();
    Estimator(Estimator&&) noexcept;
    Estimator& operator=(Estimator&&) noexcept;

    // The defocus map of one image.  Not reentrant on one Estimator (the classifier may not
    // be): use one per thread.
    Result estimate(const ImageView& image);

    // The next frame of a stream: as estimate(image), but the patches whose pixels are those of
    // the previous frame given with this cache reuse its probabilities exactly (the map is the
    // same as estimate's); the first frame, or one of another size, fills the cache.
    Result estimate(const ImageView& image, StreamCache& cache);

    // The whole pipeline with the class probabilities given (n_patches x levels, in the
    // order of the patch grid: patch_grid(image.height, image.width)); the classifier is
    // not called.  For tests and for callers that classify elsewhere.
    Result estimate_with_probabilities(const ImageView& image, const float* probabilities,
                                       std::int64_t n_patches, std::int64_t levels);

    // Rows and columns of the patch grid of an image of this size.
    std::array<std::int64_t, 2> patch_grid(std::int64_t height, std::int64_t width) const;

    const EstimatorOptions& options() const noexcept;  // max_pixels resolved
    const ModelInfo& model() const noexcept;
    std::string classifier_name() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Checks options against a model (stride divides the patch size, ranges) and resolves
// max_pixels -1; throws std::invalid_argument.
EstimatorOptions validated_options(const EstimatorOptions& options, const ModelInfo& model);

}  // namespace fastdefocus
