"""Fixtures of the C++ estimator's tests: the native module, and the Python estimator's
probabilities (ONNX Runtime, computed once per image and stride) to feed the C++ pipeline."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def native():
    from fastdefocus import _native

    if not hasattr(_native, "Estimator"):
        pytest.skip("fastdefocus._native was built without the C++ estimator")
    return _native


@pytest.fixture(scope="session")
def weights_dir() -> str:
    from fastdefocus.stages.classify import WEIGHTS_DIR

    return str(WEIGHTS_DIR)


class CachedClassifier:
    """Stands in for DefocusEstimator.classifier: the wrapped runtime's probabilities, memoised
    by the patches' bytes, and the last ones kept for the C++ pipeline."""

    def __init__(self, classifier, cache: dict):
        self.classifier, self.cache, self.last = classifier, cache, None

    def probabilities(self, patches):
        key = (patches.shape, hash(patches.tobytes()))
        if key not in self.cache:
            self.cache[key] = self.classifier.probabilities(patches)
        self.last = self.cache[key]
        return self.last


@pytest.fixture(scope="session")
def python_estimate():
    """python_estimate(image, **options) -> (DefocusResult, probabilities) of the NumPy CPU pipeline
    (fastdefocus.stages.pipeline.estimate_numpy: the reference; the estimator itself runs the C++
    pipeline these tests check)."""
    import fastdefocus
    from fastdefocus.result import DefocusResult
    from fastdefocus.stages.pipeline import estimate_numpy

    cache: dict = {}
    estimators: dict = {}

    def run(image, **options):
        key = tuple(sorted(options.items()))
        if key not in estimators:
            est = fastdefocus.DefocusEstimator(device="cpu", **options)
            est.classifier = CachedClassifier(est.classifier, cache)
            estimators[key] = est
        est = estimators[key]
        sigma, confidence, timings = estimate_numpy(est, image)
        result = DefocusResult(sigma=sigma, confidence=confidence, sigma_max=est.sigma_max, timings=timings)
        return result, np.asarray(est.classifier.last)

    return run
