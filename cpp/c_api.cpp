// The C interface (fastdefocus/c_api.h): exceptions become error codes and a message.
#include "fastdefocus/c_api.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "fastdefocus/estimator.hpp"

struct fastdefocus_estimator {
    std::unique_ptr<fastdefocus::Estimator> estimator;
};

namespace {

thread_local std::string last_error;

void set_error(const char* what) { last_error = what ? what : "unknown error"; }

template <class F>
int guarded(F&& f) {
    try {
        last_error.clear();
        f();
        return 0;
    } catch (const std::bad_alloc&) {
        set_error("out of memory");
    } catch (const std::exception& e) {
        set_error(e.what());
    } catch (...) {
        set_error("unknown error");
    }
    return 1;
}

fastdefocus::EstimatorOptions to_options(const fastdefocus_options* c) {
    fastdefocus_options d;
    fastdefocus_options_init(&d);
    if (c == nullptr) c = &d;
    fastdefocus::EstimatorOptions o;
    o.stride = c->stride;
    o.sigma0 = c->sigma0;
    o.radius = c->radius;
    o.eps = c->eps;
    o.iterations = c->iterations;
    o.snap = c->snap;
    o.coarse_levels = c->coarse_levels;
    o.flat_gate = c->flat_gate;
    o.fill_sigma = c->fill_sigma;
    o.tta = c->tta;
    o.batch_size = c->batch_size;
    o.threads = c->threads;
    o.max_pixels = c->max_pixels;
    o.model_path = c->model_path ? c->model_path : "";
    return o;
}

}  // namespace

extern "C" {

void fastdefocus_options_init(fastdefocus_options* options) {
    if (options == nullptr) return;
    const fastdefocus::EstimatorOptions o;
    options->stride = o.stride;
    options->sigma0 = o.sigma0;
    options->radius = o.radius;
    options->eps = o.eps;
    options->iterations = o.iterations;
    options->snap = o.snap;
    options->coarse_levels = o.coarse_levels;
    options->flat_gate = o.flat_gate;
    options->fill_sigma = o.fill_sigma;
    options->tta = o.tta;
    options->batch_size = o.batch_size;
    options->threads = o.threads;
    options->max_pixels = o.max_pixels;
    options->model_path = nullptr;
}

fastdefocus_estimator* fastdefocus_create(const fastdefocus_options* options) {
    fastdefocus_estimator* out = nullptr;
    guarded([&] {
        std::unique_ptr<fastdefocus_estimator> e(new fastdefocus_estimator);
        e->estimator.reset(new fastdefocus::Estimator(to_options(options)));
        out = e.release();
    });
    return out;
}

fastdefocus_estimator* fastdefocus_create_with_classifier(const fastdefocus_options* options,
                                                         fastdefocus_classify_fn classify, void* user) {
    fastdefocus_estimator* out = nullptr;
    guarded([&] {
        if (classify == nullptr) throw std::invalid_argument("classify must not be NULL");
        auto fn = [classify, user](const float* patches, std::int64_t n, std::int64_t patch, float* probs,
                                   std::int64_t levels) {
            if (classify(user, patches, n, patch, probs, levels) != 0)
                throw std::runtime_error("the classifier callback failed (returned non-zero)");
        };
        std::unique_ptr<fastdefocus_estimator> e(new fastdefocus_estimator);
        e->estimator.reset(new fastdefocus::Estimator(to_options(options), fastdefocus::ClassifierFunction(fn)));
        out = e.release();
    });
    return out;
}

int fastdefocus_estimate(fastdefocus_estimator* estimator, const uint8_t* pixels, int64_t height, int64_t width,
                         int channels, int64_t row_stride, float* sigma, float* confidence) {
    return guarded([&] {
        if (estimator == nullptr || !estimator->estimator) throw std::invalid_argument("estimator must not be NULL");
        fastdefocus::ImageView view{pixels, height, width, channels};
        view.row_stride = row_stride;
        const fastdefocus::Result r = estimator->estimator->estimate(view);
        const std::size_t n = r.sigma.size() * sizeof(float);
        if (sigma != nullptr) std::memcpy(sigma, r.sigma.data(), n);
        if (confidence != nullptr) std::memcpy(confidence, r.confidence.data(), n);
    });
}

double fastdefocus_sigma_max(const fastdefocus_estimator* estimator) {
    if (estimator == nullptr || !estimator->estimator) return -1.0;
    return estimator->estimator->model().sigma_max();
}

const char* fastdefocus_last_error(void) { return last_error.c_str(); }

void fastdefocus_free(fastdefocus_estimator* estimator) { delete estimator; }

}  // extern "C"
