/* The C interface (fastdefocus/c_api.h): estimates through a callback classifier, and every
 * failure reported by a return code and fastdefocus_last_error(), never by a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastdefocus/c_api.h"

static int failures = 0;
#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            ++failures;                                                 \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                               \
    } while (0)
#define CHECK_ERROR(text) CHECK(strstr(fastdefocus_last_error(), (text)) != NULL)

typedef struct {
    int level;
    int64_t patches;
    int fail;
} Counter;

static int classify(void* user, const float* patches, int64_t n, int64_t patch, float* out, int64_t levels) {
    Counter* c = (Counter*)user;
    int64_t i;
    (void)patches;
    (void)patch;
    if (c->fail) return 1;
    c->patches += n;
    for (i = 0; i < n * levels; ++i) out[i] = (i % levels == c->level) ? 1.0f : 0.0f;
    return 0;
}

int main(void) {
    fastdefocus_options o;
    Counter counter = {5, 0, 0};
    const int64_t h = 50, w = 61;
    uint8_t* rgb = (uint8_t*)malloc((size_t)(h * w * 3));
    float* sigma = (float*)malloc(sizeof(float) * (size_t)(h * w));
    float* conf = (float*)malloc(sizeof(float) * (size_t)(h * w));
    fastdefocus_estimator* est;
    int64_t i;
    double smax;
    for (i = 0; i < h * w * 3; ++i) rgb[i] = (uint8_t)((i * 7919) % 251);

    fastdefocus_options_init(&o);
    CHECK(o.stride == 8 && o.snap == 10 && o.iterations == 1 && o.radius == 4.0 && o.model_path == NULL);
    o.model_path = getenv("FASTDEFOCUS_MODEL_DIR");

    est = fastdefocus_create_with_classifier(&o, classify, &counter);
    CHECK(est != NULL);
    if (est != NULL) {
        smax = fastdefocus_sigma_max(est);
        CHECK(smax > 0);
        CHECK(fastdefocus_estimate(est, rgb, h, w, 3, 0, sigma, conf) == 0);
        CHECK(counter.patches == 4 * 5); /* the 32-px patch grid at stride 8: ceil(18 / 8) + 1 by ceil(29 / 8) + 1 */
        for (i = 0; i < h * w; ++i) {
            CHECK(isfinite(sigma[i]) && sigma[i] >= 0.0f && sigma[i] <= smax);
            CHECK(fabsf(sigma[i] - sigma[0]) < 1e-4f); /* one level everywhere: a constant map */
            CHECK(conf[i] >= 0.0f && conf[i] <= 1.0f);
        }
        /* gray with a row stride; NULL outputs are allowed */
        CHECK(fastdefocus_estimate(est, rgb, 20, 30, 1, 40, sigma, NULL) == 0);
        CHECK(fastdefocus_estimate(est, rgb, 20, 30, 1, 0, NULL, NULL) == 0);
        /* bad input: an error code and a message, the estimator still usable */
        CHECK(fastdefocus_estimate(est, NULL, h, w, 3, 0, sigma, conf) != 0);
        CHECK_ERROR("data must not be null");
        CHECK(fastdefocus_estimate(est, rgb, h, w, 7, 0, sigma, conf) != 0);
        CHECK_ERROR("channels");
        CHECK(fastdefocus_estimate(est, rgb, 0, w, 3, 0, sigma, conf) != 0);
        CHECK_ERROR("at least 1 x 1");
        CHECK(fastdefocus_estimate(est, rgb, h, w, 3, 5, sigma, conf) != 0);
        CHECK_ERROR("row_stride");
        counter.fail = 1;
        CHECK(fastdefocus_estimate(est, rgb, h, w, 3, 0, sigma, conf) != 0);
        CHECK_ERROR("classifier callback failed");
        counter.fail = 0;
        CHECK(fastdefocus_estimate(est, rgb, h, w, 3, 0, sigma, conf) == 0);
        CHECK(strcmp(fastdefocus_last_error(), "") == 0);
        fastdefocus_free(est);
    }
    CHECK(fastdefocus_estimate(NULL, rgb, h, w, 3, 0, sigma, conf) != 0);
    CHECK_ERROR("estimator must not be NULL");
    CHECK(fastdefocus_sigma_max(NULL) == -1.0);

    o.stride = 3;
    CHECK(fastdefocus_create_with_classifier(&o, classify, &counter) == NULL);
    CHECK_ERROR("stride must divide");
    fastdefocus_options_init(&o);
    CHECK(o.fill_sigma == 64.0);
    o.fill_sigma = -1.0;
    CHECK(fastdefocus_create_with_classifier(&o, classify, &counter) == NULL);
    CHECK_ERROR("fill_sigma must be a finite number >= 0");
    o.fill_sigma = 0.5;
    CHECK(fastdefocus_create_with_classifier(&o, classify, &counter) == NULL);
    CHECK_ERROR("fill_sigma must be 0 (off) or in [1, 10000] px");
    fastdefocus_options_init(&o);
    CHECK(o.tta == 1);
    o.tta = 5;
    CHECK(fastdefocus_create_with_classifier(&o, classify, &counter) == NULL);
    CHECK_ERROR("tta must be 1, 2, 4 or 8");
    fastdefocus_options_init(&o);
    o.model_path = "/nonexistent/model";
    CHECK(fastdefocus_create_with_classifier(&o, classify, &counter) == NULL);
    CHECK_ERROR("model metadata not found");
    o.model_path = getenv("FASTDEFOCUS_MODEL_DIR");
    CHECK(fastdefocus_create_with_classifier(&o, NULL, NULL) == NULL);
    CHECK_ERROR("classify must not be NULL");
    fastdefocus_free(NULL);

    /* the built-in classifier: OpenCV DNN when built in, else a clear error */
    est = fastdefocus_create(&o);
    if (est != NULL) {
        CHECK(fastdefocus_estimate(est, rgb, h, w, 3, 0, sigma, NULL) == 0);
        for (i = 0; i < h * w; ++i) CHECK(isfinite(sigma[i]) && sigma[i] >= 0.0f);
        fastdefocus_free(est);
    } else {
        CHECK_ERROR("without OpenCV");
    }
    free(rgb);
    free(sigma);
    free(conf);
    printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
