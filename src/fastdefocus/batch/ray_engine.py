"""The Ray engine: Ray Data streams the units through a fixed pool of actors, each holding one
:class:`~fastdefocus.DefocusEstimator`; the rows come back to the driver batch by batch and are
written to part files as they arrive, so memory stays bounded and an interrupted batch resumes.

Each actor reserves ``threads`` CPUs (and ``gpus`` GPUs) from Ray and keeps to them: its
estimator's ``threads`` option is that many, Ray starts it with ``OMP_NUM_THREADS`` = its CPUs,
and it sets the other thread-count variables (:func:`fastdefocus.batch.work.limit_threads`). It
is not pinned to cores: Ray does not say which of its node's cores an actor's CPUs are, and
``os.sched_setaffinity`` in the constructor would bind only the thread that runs it, which
need not be the one that runs the batches.

The actors read the inputs themselves, by path: on a cluster, local paths must be visible at the
same place on every node (a shared file system), or use object-store URIs (``s3://...``).
"""
from __future__ import annotations

import inspect
import logging

import ray
import ray.data


class EstimatorActor:
    """A Ray Data actor: one estimator, built once; each call maps a batch of units (a pyarrow
    table of :class:`~fastdefocus.batch.inputs.Unit` fields) to their part rows."""

    def __init__(self, options: dict, out_dir: str, maps: bool, every: int, key: str, threads: int):
        from fastdefocus.batch.work import Worker, limit_threads
        limit_threads(threads)
        self.worker = Worker(options, out_dir, maps, every, key, threads=threads)

    def __call__(self, batch):
        from fastdefocus.batch.store import PART_SCHEMA
        import pyarrow as pa
        rows = []
        for unit in batch.to_pylist():
            rows.extend(self.worker.process(unit))
        return pa.Table.from_pylist(rows, schema=PART_SCHEMA)


class _DropNotice(logging.Filter):
    """Ray Data's notice that its progress bars are off: the batch turned them off, for its own line."""

    def filter(self, record):
        return not record.getMessage().startswith("Progress bars disabled")


_DROP_NOTICE = _DropNotice()


def _pool_arguments(workers: int) -> dict:
    """A fixed pool of ``workers`` actors, in the installed Ray's spelling: ``compute=
    ActorPoolStrategy(size=...)`` (Ray >= 2.9; since 2.51 ``concurrency=`` is deprecated for it),
    else ``concurrency=``."""
    strategy = getattr(ray.data, "ActorPoolStrategy", None)
    if strategy is not None and "size" in inspect.signature(strategy).parameters:
        return {"compute": strategy(size=workers)}
    return {"concurrency": workers}


def start(address: str | None, cores: int) -> bool:
    """Join the cluster at ``address``, or start a local Ray with ``cores`` CPUs; reuse a Ray
    already initialised in this process. True when this call started it (and should stop it)."""
    if ray.is_initialized():
        return False
    kwargs = {"address": address} if address else {"num_cpus": cores}
    ray.init(**kwargs, include_dashboard=False, logging_level="WARNING", log_to_driver=True)
    return True


def resources() -> tuple:
    """(CPUs, GPUs) of the cluster."""
    res = ray.cluster_resources()
    return int(res.get("CPU", 0)), float(res.get("GPU", 0.0))


def run_ray(units, *, options: dict, out_dir: str, maps: bool, every: int, key: str, workers: int,
            threads: int, gpus: float, sink, progress) -> None:
    """Process ``units`` on the Ray cluster this process is connected to."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the batch's own progress line says it
    logging.getLogger("ray.data._internal.progress").addFilter(_DROP_NOTICE)  # once: the same object
    if not progress.enabled:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = [u.as_dict() for u in units]
    # small blocks: a block's rows come back when the block is done, so its size bounds what an
    # interrupted batch loses and how unevenly the actors finish; 32 units at most per block
    per_block = max(1, min(32, len(items) // (8 * workers)))
    blocks = -(-len(items) // per_block)
    spelling = "override_num_blocks" if "override_num_blocks" in inspect.signature(ray.data.from_items).parameters \
        else "parallelism"  # Ray < 2.10
    dataset = ray.data.from_items(items, **{spelling: blocks})
    remote = {"num_cpus": threads}
    if gpus > 0:
        remote["num_gpus"] = gpus
    dataset = dataset.map_batches(
        EstimatorActor, batch_size=1, batch_format="pyarrow",
        fn_constructor_kwargs={"options": options, "out_dir": out_dir, "maps": maps, "every": every,
                               "key": key, "threads": threads},
        **_pool_arguments(workers), **remote)
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
        rows = batch.to_pylist()
        sink(rows)
        real = [r for r in rows if r["is_row"]]
        progress.update(len(real), sum(1 for r in real if r["error"]))
