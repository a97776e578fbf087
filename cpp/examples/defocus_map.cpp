// defocus_map: the defocus map of one image file, with the installed fastdefocus model.
//
//   defocus_map photo.jpg out [--stride 8] [--sigma0 0] [--snap 10] [--iterations 1]
//               [--coarse-levels 2] [--flat-gate 0.5] [--fill-sigma 64] [--tta 1] [--threads 0] [--model DIR]
//
// writes out_sigma.tiff (32-bit float, the blur sigma in px per pixel) and out_sigma.png
// (viridis on the views' fixed scale, [0, min(sigma_max, 16)] px, dark = sharp), and prints the
// stage times.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fastdefocus/estimator.hpp>

static int usage() {
    std::fprintf(stderr,
                 "usage: defocus_map IMAGE OUT_PREFIX [--stride N] [--sigma0 X] [--snap N] [--iterations N] "
                 "[--coarse-levels N] [--flat-gate X] [--fill-sigma X] [--tta N] [--threads N] [--model DIR]\n");
    return 2;
}

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const std::string input = argv[1], prefix = argv[2];
    fastdefocus::EstimatorOptions options;
    for (int i = 3; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) return usage();
        const char* value = argv[++i];
        if (arg == "--stride") options.stride = std::atoi(value);
        else if (arg == "--sigma0") options.sigma0 = std::atof(value);
        else if (arg == "--snap") options.snap = std::atoi(value);
        else if (arg == "--iterations") options.iterations = std::atoi(value);
        else if (arg == "--coarse-levels") options.coarse_levels = std::atoi(value);
        else if (arg == "--flat-gate") options.flat_gate = std::atof(value);
        else if (arg == "--tta") options.tta = std::atoi(value);
        else if (arg == "--fill-sigma") options.fill_sigma = std::atof(value);
        else if (arg == "--threads") options.threads = std::atoi(value);
        else if (arg == "--model") options.model_path = value;
        else return usage();
    }
    try {
        cv::Mat image = cv::imread(input, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH);  // BGR, 8 or 16 bit
        if (image.empty()) {
            std::fprintf(stderr, "defocus_map: cannot read %s\n", input.c_str());
            return 1;
        }
        if (image.depth() != CV_8U && image.depth() != CV_16U) image.convertTo(image, CV_8U);
        fastdefocus::ImageView view{image.data, image.rows, image.cols, image.channels()};
        view.row_stride = static_cast<std::int64_t>(image.step);
        view.bgr = true;
        view.type = image.depth() == CV_16U ? fastdefocus::PixelType::u16 : fastdefocus::PixelType::u8;

        fastdefocus::Estimator estimator(options);  // the model's OpenCV DNN classifier
        const fastdefocus::Result r = estimator.estimate(view);

        const cv::Mat sigma(static_cast<int>(r.height), static_cast<int>(r.width), CV_32F,
                            const_cast<float*>(r.sigma.data()));
        if (!cv::imwrite(prefix + "_sigma.tiff", sigma)) throw std::runtime_error("cannot write " + prefix + "_sigma.tiff");
        cv::Mat grey, colour;
        const double scale = std::min(r.sigma_max, fastdefocus::params::kViewSigmaMax);  // Python's result.scale
        sigma.convertTo(grey, CV_8U, 255.0 / scale);  // rounded and saturated: [0, scale] -> 0..255
        cv::applyColorMap(grey, colour, cv::COLORMAP_VIRIDIS);
        if (!cv::imwrite(prefix + "_sigma.png", colour)) throw std::runtime_error("cannot write " + prefix + "_sigma.png");

        const fastdefocus::Timings& t = r.timings;
        std::printf("model %s\n", estimator.model().directory.c_str());
        std::printf("%s: %lld x %lld px, sigma in [0, %.2f] px, classifier %s\n", input.c_str(),
                    static_cast<long long>(r.width), static_cast<long long>(r.height), r.sigma_max,
                    estimator.classifier_name().c_str());
        std::printf("ms: ingest %.1f, patches %.1f, classify %.1f, splat %.1f, refine %.1f, snap %.1f, "
                    "coarse %.1f (%d level(s) ran), total %.1f\n",
                    1e3 * t.ingest, 1e3 * t.patches, 1e3 * t.classify, 1e3 * t.splat, 1e3 * t.refine, 1e3 * t.snap,
                    1e3 * t.coarse, r.coarse_levels_run, 1e3 * t.total);
        std::printf("wrote %s_sigma.tiff and %s_sigma.png\n", prefix.c_str(), prefix.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "defocus_map: %s\n", e.what());
        return 1;
    }
    return 0;
}
