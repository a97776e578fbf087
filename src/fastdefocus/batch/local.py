"""The local engine: a pool of worker processes on this machine (``concurrent.futures`` with the
spawn start method), each with its own estimator and its own share of the cores.

Each worker gets ``threads`` cores of the ones this process may use (``os.sched_getaffinity``):
its initializer pins itself to them (``os.sched_setaffinity``, which ONNX Runtime's pool and the
native filters follow) and sets the thread-count variables, before the estimator is built
(:func:`fastdefocus.batch.work.limit_threads`). The variables are also in the environment the
workers start with (set in this process while the pool lives), since a spawned worker imports
NumPy, and with it OpenBLAS's thread pool, before its initializer runs. Units go out a few per
worker ahead, so memory stays bounded whatever the number of units.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

_WORKER = None
_WORKER_ERROR = None


def _exit_with_parent() -> None:
    """End this worker when the batch's process ends, even by SIGKILL (a pool worker otherwise
    waits for work forever): a thread waits on the parent's sentinel."""
    import threading
    from multiprocessing.connection import wait as wait_for
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        wait_for([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="fastdefocus-parent-watch", daemon=True).start()


def _initialize(shares, threads: int, options: dict, out_dir: str, maps: bool, every: int, key: str) -> None:
    global _WORKER, _WORKER_ERROR
    from fastdefocus.batch.work import Worker, limit_threads
    _exit_with_parent()
    try:
        cores = shares.get(timeout=10)
    except queue.Empty:  # more workers than shares (a worker was replaced): the thread counts still hold
        cores = None
    try:
        limit_threads(threads, cores)
        _WORKER = Worker(options, out_dir, maps, every, key, threads=threads)
    except Exception as e:  # noqa: BLE001 - reported with the first unit, in the parent
        _WORKER_ERROR = f"{type(e).__name__}: {e}"


def _process(unit: dict) -> list:
    if _WORKER is None:
        raise RuntimeError(f"a batch worker could not build its estimator: {_WORKER_ERROR}")
    return _WORKER.process(unit)


@contextlib.contextmanager
def _environment(values: dict):
    """``os.environ`` with these values while the block runs (child processes inherit them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_local(units, *, options: dict, out_dir: str, maps: bool, every: int, key: str, workers: int,
              threads: int, cores: list, sink, progress) -> None:
    """Process ``units`` with ``workers`` processes of ``threads`` threads each (cores
    ``cores[i * threads:(i + 1) * threads]`` for the i-th); ``sink(rows)`` gets each unit's rows
    as it completes, ``progress.update(items, errors)`` is called per unit."""
    from fastdefocus.batch.work import THREAD_VARIABLES
    ctx = multiprocessing.get_context("spawn")
    shares = ctx.Queue()
    for i in range(workers):
        shares.put(cores[i * threads:(i + 1) * threads] if len(cores) >= (i + 1) * threads else None)
    try:
        with _environment({name: str(threads) for name in THREAD_VARIABLES}):
            _drive(units, ctx, shares, workers, threads, (options, out_dir, maps, every, key), sink, progress)
    finally:
        shares.close()
        shares.join_thread()


def _drive(units, ctx, shares, workers, threads, worker_args, sink, progress) -> None:
    ahead = 2 * workers  # units submitted ahead: memory stays bounded
    todo = iter(units)
    pending = set()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_initialize,
                               initargs=(shares, threads) + worker_args)
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
