/* fastdefocus/c_api.h - a C interface to fastdefocus::Estimator.
 *
 *   fastdefocus_options options;
 *   fastdefocus_options_init(&options);             (the C++ defaults)
 *   options.stride = 16;
 *   fastdefocus_estimator* est = fastdefocus_create(&options);     (OpenCV DNN classifier)
 *   if (!est) { fprintf(stderr, "%s\n", fastdefocus_last_error()); ... }
 *   float* sigma = malloc(sizeof(float) * height * width);
 *   if (fastdefocus_estimate(est, pixels, height, width, 3, 0, sigma, NULL) != 0) { ...last_error... }
 *   fastdefocus_free(est);
 *
 * Every function returning int gives 0 on success and non-zero on failure; a NULL
 * estimator from fastdefocus_create* is a failure.  fastdefocus_last_error() then says what
 * went wrong (the message of the calling thread's last failure; valid until its next call).
 * No function throws or aborts on bad input.
 */
#ifndef FASTDEFOCUS_C_API_H
#define FASTDEFOCUS_C_API_H

#include <stdint.h>

#if defined(__GNUC__)
#define FASTDEFOCUS_C_EXPORT __attribute__((visibility("default")))
#else
#define FASTDEFOCUS_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fastdefocus_estimator fastdefocus_estimator;

typedef struct fastdefocus_options {
    int stride;             /* patch grid step (px), divides the patch size */
    double sigma0;          /* noise pre-filter sigma (px), 0: off */
    double radius;          /* refinement guided-filter radius (px) */
    double eps;             /* its regularisation */
    int iterations;         /* guided-filter passes, 0: bilinear only */
    int snap;               /* boundary snap half-width (px), 0: off */
    int batch_size;         /* patches per classifier call */
    int threads;            /* 0: all the cores this process may use */
    int64_t max_pixels;     /* -1: auto (memory budget), 0: no limit */
    const char* model_path; /* folder of blur_classifier.json; NULL or "": the installed model */
    int coarse_levels;      /* coarse levels for blur past 6 px (2: to about 26 px), 0: off */
    double flat_gate;       /* texture gating: flat patches (std < flat_gate x 0.02) not classified, 0: off */
    double fill_sigma;      /* flat fill: flat patches take their surroundings' value within this sigma (px), 0: off */
    int tta;                /* test-time views per patch, averaged: 1 (off), 2, 4 or 8 */
} fastdefocus_options;

/* A classifier callback: `n` normalised patches (n x patch x patch floats) -> n x levels
 * probabilities in `out`.  Return 0 on success, non-zero to make the estimate fail. */
typedef int (*fastdefocus_classify_fn)(void* user, const float* patches, int64_t n, int64_t patch, float* out,
                                       int64_t levels);

/* The defaults (those of Python's EstimatorConfig). */
FASTDEFOCUS_C_EXPORT void fastdefocus_options_init(fastdefocus_options* options);

/* An estimator with the model's OpenCV DNN classifier (NULL options: the defaults). */
FASTDEFOCUS_C_EXPORT fastdefocus_estimator* fastdefocus_create(const fastdefocus_options* options);

/* An estimator whose classifier is `classify` (called with `user`). */
FASTDEFOCUS_C_EXPORT fastdefocus_estimator* fastdefocus_create_with_classifier(const fastdefocus_options* options,
                                                                             fastdefocus_classify_fn classify,
                                                                             void* user);

/* The defocus map of an 8-bit image (row-major, channels interleaved: 1 gray, 2 gray + alpha,
 * 3 RGB, 4 RGBA; row_stride in bytes, 0 for packed rows).  sigma and confidence (either may
 * be NULL) receive height * width floats. */
FASTDEFOCUS_C_EXPORT int fastdefocus_estimate(fastdefocus_estimator* estimator, const uint8_t* pixels,
                                              int64_t height, int64_t width, int channels, int64_t row_stride,
                                              float* sigma, float* confidence);

/* The largest sigma (px) the model reports (the top of its calibration); -1 on a NULL estimator. */
FASTDEFOCUS_C_EXPORT double fastdefocus_sigma_max(const fastdefocus_estimator* estimator);

/* The message of the calling thread's last failure ("" if none). */
FASTDEFOCUS_C_EXPORT const char* fastdefocus_last_error(void);

FASTDEFOCUS_C_EXPORT void fastdefocus_free(fastdefocus_estimator* estimator);

#ifdef __cplusplus
}
#endif

#endif /* FASTDEFOCUS_C_API_H */
