"""Buffer reuse (cpp/scratch.hpp): the planes of a frame come from a per-thread pool, so the
frames of a stream after the first allocate no new memory (measured as the page faults of
first touches, which fresh multi-MB planes take every frame: this relies on glibc's malloc, as
on the project's CI), and release_scratch() gives them back."""
from __future__ import annotations

import sys

import numpy as np
import pytest

resource = pytest.importorskip("resource")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts Linux minor page faults")
def test_same_sized_frames_reuse_their_buffers():
    from fastdefocus import DefocusEstimator

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(5)]
    est = DefocusEstimator(model="fast", stride=8, threads=2)
    for frame in frames[:2]:  # the first frames fill the pools (and ONNX Runtime's arena)
        est.estimate(frame)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for frame in frames[2:]:
        est.estimate(frame)
    per_frame = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
    # fresh planes took ~4,300 faults a frame here (17 MB of first touches); reused ones ~0
    assert per_frame < 1000, f"{per_frame:.0f} page faults per frame: the frame's buffers were not reused"


def test_release_scratch_frees_the_threads_planes():
    from fastdefocus import DefocusEstimator, _native

    est = DefocusEstimator(model="fast", stride=16, threads=1)
    est.estimate(np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    kept = _native.scratch_kept_bytes()
    assert 320 * 240 * 4 <= kept <= 64 << 20  # at least a plane, at most the cap
    _native.release_scratch()
    assert _native.scratch_kept_bytes() == 0
