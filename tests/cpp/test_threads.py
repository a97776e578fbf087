"""The native stages' threads (cpp/parallel.cpp): a pool of helper threads kept between calls.
The same answers whatever the thread count, from concurrent callers, and in a forked child
(which has none of its parent's pool threads: it must not wait for them). These tests fail by
a wrong answer or by a timeout; they do not see how many threads did the work."""
from __future__ import annotations

import multiprocessing
import sys
import threading

import numpy as np
import pytest


@pytest.fixture(scope="module")
def planes():
    rng = np.random.default_rng(3)
    return [rng.random((301, 257)).astype(np.float32) for _ in range(6)]


def test_thread_counts_agree(native, planes):
    x = planes[0]
    want = native.box_filter(x, 5, threads=1)
    for threads in (2, 3, 7):
        np.testing.assert_allclose(native.box_filter(x, 5, threads=threads), want, rtol=0, atol=1e-6)
        np.testing.assert_allclose(native.stage_snap(x * 4, planes[1], 10, threads=threads),
                                   native.stage_snap(x * 4, planes[1], 10, threads=1), rtol=0, atol=1e-5)


def test_concurrent_callers_share_the_pool(native, planes):
    """Callers on several threads at once (the GIL is released): each gets its own answers."""
    want = [native.guided_filter(p, planes[0], planes[5], 4, 1e-3, threads=1) for p in planes]
    got = [None] * len(planes)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                got[i] = native.guided_filter(planes[i], planes[0], planes[5], 4, 1e-3, threads=3)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(planes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def _child(conn, x, want):
    from fastdefocus import _native

    ok = np.allclose(_native.box_filter(x, 5, threads=2), want, rtol=0, atol=1e-6)
    conn.send(bool(ok))
    conn.close()


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork()")
def test_forked_child_starts_its_own_pool(native, planes):
    x = planes[2]
    want = native.box_filter(x, 5, threads=2)  # the parent's pool threads exist now
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, x, want))
    proc.start()
    child.close()
    proc.join(timeout=60)
    if proc.is_alive():  # a child waiting for its parent's threads would hang here
        proc.kill()
        proc.join()
        pytest.fail("the forked child hung in a threaded native stage")
    assert proc.exitcode == 0
    assert parent.poll(1) and parent.recv() is True
