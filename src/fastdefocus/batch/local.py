"""The local engine: a pool of worker processes on this machine (``concurrent.futures`` with the
spawn start method), each with its own estimator and its own share of the cores.

Each worker gets ``threads`` cores of the ones this process may use (``os.sched_getaffinity``):
its initializer pins itself to them (``os.sched_setaffinity``, which ONNX Runtime's pool and the
native filters follow) and sets the thread-count variables, before the estimator is built
(:func:`fastdefocus.batch.work.limit_threads`). Units go out a few per worker ahead, so memory
stays bounded whatever the number of units.
"""
from __future__ import annotations

import multiprocessing
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

_WORKER = None
_WORKER_ERROR = None


def _initialize(shares, threads: int, options: dict, out_dir: str, maps: bool, every: int, key: str) -> None:
    global _WORKER, _WORKER_ERROR
    from fastdefocus.batch.work import Worker, limit_threads
    try:
        cores = shares.get(timeout=10)
    except queue.Empty:  # more workers than shares (a worker was replaced): the thread counts still hold
        cores = None
    try:
        limit_threads(threads, cores)
        _WORKER = Worker(options, out_dir, maps, every, key)
    except Exception as e:  # noqa: BLE001 - reported with the first unit, in the parent
        _WORKER_ERROR = f"{type(e).__name__}: {e}"


def _process(unit: dict) -> list:
    if _WORKER is None:
        raise RuntimeError(f"a batch worker could not build its estimator: {_WORKER_ERROR}")
    return _WORKER.process(unit)


def run_local(units, *, options: dict, out_dir: str, maps: bool, every: int, key: str, workers: int,
              threads: int, cores: list, sink, progress) -> None:
    """Process ``units`` with ``workers`` processes of ``threads`` threads each (cores
    ``cores[i * threads:(i + 1) * threads]`` for the i-th); ``sink(rows)`` gets each unit's rows
    as it completes, ``progress.update(items, errors)`` is called per unit."""
    ctx = multiprocessing.get_context("spawn")
    shares = ctx.Queue()
    for i in range(workers):
        shares.put(cores[i * threads:(i + 1) * threads] if len(cores) >= (i + 1) * threads else None)
    ahead = 2 * workers
    todo = iter(units)
    pending = set()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_initialize,
                               initargs=(shares, threads, options, out_dir, maps, every, key))
    try:
        while True:
            for unit in todo:
                pending.add(pool.submit(_process, unit.as_dict()))
                if len(pending) >= ahead:
                    break
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    rows = future.result()
                except BrokenProcessPool as e:
                    raise RuntimeError("a batch worker process died (out of memory?); what finished is saved: "
                                       "run the same command again to go on") from e
                sink(rows)
                real = [r for r in rows if r["is_row"]]
                progress.update(len(real), sum(1 for r in real if r["error"]))
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        shares.close()
        shares.join_thread()
