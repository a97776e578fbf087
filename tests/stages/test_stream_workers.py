"""stream(workers=N): frames estimated side by side on the CPU give the same maps, in order."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fastdefocus import DefocusEstimator
from fastdefocus.blur import gaussian_blur
from fastdefocus.scenes import dead_leaves


@pytest.fixture(scope="module")
def est():
    return DefocusEstimator(device="cpu", model="fast", stride=16)


@pytest.fixture(scope="module")
def frames():
    """A pan across a dead-leaves picture with a blurred half, a repeated frame and a cut."""
    rng = np.random.default_rng(5)
    big = dead_leaves(rng, 320).astype(np.float32)
    big[:, 160:] = gaussian_blur(big, 2.5)[:, 160:]
    pan = [big[20:148, 8 * k:8 * k + 192] for k in range(5)]
    other = dead_leaves(np.random.default_rng(6), 192)[:128].astype(np.float32)
    return pan + [pan[-1].copy(), other, other.copy()]


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("options", [{}, {"stable": True}, {"smoothing": 0.5}, {"reuse": False}])
def test_workers_give_the_maps_of_one_worker_in_order(est, frames, workers, options):
    one = list(est.stream(iter(frames), **options))
    many = list(est.stream(iter(frames), workers=workers, **options))
    assert len(many) == len(one) == len(frames)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a.sigma, b.sigma)
        np.testing.assert_array_equal(a.confidence, b.confidence)


def test_workers_run_on_their_own_estimators_with_a_share_of_the_threads(est, frames):
    list(est.stream(iter(frames[:2]), workers=2))
    workers = est._stream_workers(2)
    assert len(workers) == 2 and all(w is not est and w.config.model == "fast" for w in workers)
    from fastdefocus.backends.cpu import default_threads
    assert [w.threads for w in workers] == [max(1, default_threads() // 2)] * 2  # threads=0: the cores, shared
    assert est._stream_workers(2) is workers  # made once
    seen = set()
    original = [w._estimate_cpu for w in workers]

    def recording(i):
        def run(*args, **kwargs):
            seen.add((i, threading.current_thread().name.startswith("fastdefocus-stream")))
            return original[i](*args, **kwargs)
        return run

    for i, w in enumerate(workers):
        w._estimate_cpu = recording(i)
    try:
        list(est.stream(iter(frames), workers=2))
    finally:
        for w in workers:
            del w._estimate_cpu
    assert seen == {(0, True), (1, True)}


def test_with_workers_each_worker_reuses_against_its_own_previous_frame(est, frames):
    still = [frames[0]] * 5
    results = list(est.stream(iter(still), workers=2))
    n = results[0].counts["patches"]
    assert [r.counts["reused"] > 0 for r in results] == [False, False, True, True, True]
    assert all(r.counts["classified"] + r.counts["reused"] <= n for r in results)


def test_workers_are_checked_and_bad_frames_come_after_the_good_ones(est, frames):
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        est.stream(iter(frames), workers=0)
    with pytest.raises(TypeError, match="workers must be an int"):
        est.stream(iter(frames), workers=1.5)
    bad = frames[:3] + [frames[0][:64]]
    got = []
    with pytest.raises(ValueError, match="frame 3 has size"):
        for r in est.stream(iter(bad), workers=2):
            got.append(r)
    assert len(got) == 3


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_failing_source_still_gives_the_frames_before_it(est, frames, workers):
    def source():
        yield from frames[:3]
        raise OSError("the camera went away")

    got = []
    with pytest.raises(OSError, match="the camera went away"):
        for r in est.stream(source(), workers=workers):
            got.append(r)
    assert len(got) == 3
