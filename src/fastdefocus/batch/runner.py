"""``fastdefocus.batch.run``: defocus statistics (and maps) of whole photo libraries and video
archives, on this machine or a Ray cluster, resumable."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ENGINES = ("local", "ray")
OUTPUTS = ("summary", "maps")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        from fastdefocus._validate import MissingExtraError
        raise MissingExtraError("fastdefocus batch (Parquet files)", "batch", "pyarrow") from None


def _ray_engine():
    try:
        from fastdefocus.batch import ray_engine
    except ImportError:
        from fastdefocus._validate import MissingExtraError
        raise MissingExtraError("--engine ray", "ray", "ray[data]") from None
    return ray_engine


def available_cores() -> list:
    """The cores this process may use (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def options_key(config, every: int, outputs) -> str:
    """The hash that, with a file's path, size and modification time, says a unit is done: the
    estimator options, ``every`` and the outputs (16 hex digits of a SHA-256). ``threads`` is
    left out: the batch sets it per worker, and it does not change a map."""
    options = {k: v for k, v in config.options().items() if k != "threads"}
    text = json.dumps({"options": options, "every": every, "outputs": sorted(outputs)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _positive_int(name, value, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _outputs(outputs) -> tuple:
    if isinstance(outputs, str):
        outputs = [o.strip() for o in outputs.split(",") if o.strip()]
    outputs = tuple(dict.fromkeys(outputs))
    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown or not outputs:
        raise ValueError(f"outputs must be some of {', '.join(OUTPUTS)}, got {', '.join(map(str, outputs)) or 'none'}")
    return tuple(o for o in OUTPUTS if o in outputs or o == "summary")  # the summary is always written


def _shape(workers, threads, cores: int, what: str) -> tuple:
    """(workers, threads per worker) for ``cores`` cores, with workers x threads <= cores."""
    if threads is None:
        threads = max(1, cores // workers) if workers else 1
    if workers is None:
        workers = max(1, cores // threads)
    if workers * threads > cores:
        raise ValueError(f"{workers} workers x {threads} threads per worker is more than the {cores} cores {what}: "
                         "lower --workers or --threads-per-worker")
    return workers, threads


def run(inputs, output, engine: str = "local", *, config=None, workers: int | None = None,
        threads_per_worker: int | None = None, address: str | None = None, gpus_per_worker: float = 0.0,
        every: int = 1, outputs=("summary",), progress: bool = True) -> Path:
    """Estimate every image and video frame of ``inputs`` and write ``OUT/summary.parquet``.

    Parameters
    ----------
    inputs : path or list of paths
        Image files, folders (recursive; images and videos picked by extension, hidden files
        and the output folder skipped), videos, and lists of paths (``.txt`` / ``.lst``, one a
        line, relative to the list's folder). URIs (``s3://``, ``gs://``, ``hdfs://``,
        ``file://``) are read through ``pyarrow.fs.FileSystem.from_uri``. A folder without
        images or videos raises ValueError (a mistyped folder should not give an empty summary);
        a missing, unreadable or corrupt file becomes a row with its error.
    output : path
        The batch's folder: ``summary.parquet``, ``parts/`` (progress), ``maps/``.
    engine : {"local", "ray"}
        "local": a pool of processes on this machine. "ray": Ray Data actors on a Ray cluster
        (``address``) or on a local Ray started with this machine's cores (needs
        ``pip install 'fastdefocus[ray]'``).
    config : EstimatorConfig, optional
        The estimator's options (default: the defaults).
    workers, threads_per_worker : int, optional
        Estimators running at once, and the cores each uses (``threads_per_worker`` defaults to
        ``config.threads`` when that is set; each worker's estimator runs with ``threads`` =
        ``threads_per_worker``). Default: one thread per worker,
        as many workers as cores (local: the cores this process may use; ray: the cluster's
        CPUs, or with ``gpus_per_worker`` its GPUs / ``gpus_per_worker``); with only
        ``workers`` given, the cores are shared out. Workers x threads may not exceed the cores:
        each local worker pins itself to its own ``threads_per_worker`` cores
        (``os.sched_setaffinity``, which ONNX Runtime and the native filters follow) and sets
        ``OMP_NUM_THREADS`` / ``FASTDEFOCUS_NUM_THREADS`` before building its estimator.
    address : str, optional
        Ray only: the cluster to join (``ray.init(address=...)``, e.g. "auto" or
        "ray://head:10001").
    gpus_per_worker : float
        Ray only: GPUs each actor reserves (0: CPU actors; 0.5: two actors share a GPU). Give
        ``config.device`` "auto" or "cuda" for the actors to use them.
    every : int
        From videos, every ``every``-th frame (0, every, 2 x every, ...).
    outputs : sequence of {"summary", "maps"}, or a comma-separated string
        With "maps", each map is also written as a 16-bit PNG (value = round(1000 x sigma px),
        :func:`fastdefocus.io.sigmamap.to_png16`) to ``OUT/maps/<stem>-<hash>.png``, video
        frames to ``<stem>-<hash>_f<frame>.png`` (:func:`fastdefocus.batch.work.map_name`).
    progress : bool
        A progress line on stderr.

    Returns
    -------
    Path
        ``OUT/summary.parquet``: one row per image (``frame`` 0) or video frame read, columns
        :data:`SUMMARY_COLUMNS`. ``in_focus_fraction``: share of pixels with sigma <= 1 px;
        ``sharpness``: :meth:`DefocusResult.sharpness`; ``ms``: milliseconds of the row's work
        (reading, estimating, writing its map); ``error``: empty when fine.

    Resuming: rows are saved to ``OUT/parts/`` as they come (a part file when 256 rows have
    come or 2 seconds have passed, and when the batch stops, on an error or Ctrl-C too), so a
    batch killed at any point (SIGKILL, a lost machine) loses at most the units in flight and
    the rows of its last 2 seconds; local workers end with the batch's process. Running the same command again skips
    the units already done, known by their file's path, size and modification time and a hash
    of the estimator options, ``every`` and ``outputs``; a changed file, or other options, is
    done again. Rows with an error count as done (touch the file to retry it).
    """
    from fastdefocus.config import EstimatorConfig
    if engine not in ENGINES:
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    if config is None:
        config = EstimatorConfig()
    elif not isinstance(config, EstimatorConfig):
        raise TypeError(f"config must be an EstimatorConfig, got {config!r}")
    workers = _positive_int("workers", workers)
    threads_per_worker = _positive_int("threads_per_worker", threads_per_worker or config.threads or None)
    every = _positive_int("every", every, allow_none=False)
    outputs = _outputs(outputs)
    gpus_per_worker = float(gpus_per_worker)
    if not gpus_per_worker >= 0:
        raise ValueError(f"gpus_per_worker must be >= 0, got {gpus_per_worker}")
    if engine == "local" and (address is not None or gpus_per_worker > 0):
        raise ValueError("address and gpus_per_worker are options of engine 'ray'; the local engine's workers "
                         "run on this machine, on the device of the config")
    _require_pyarrow()
    ray_engine = _ray_engine() if engine == "ray" else None

    from fastdefocus.batch import store
    from fastdefocus.batch.inputs import plan
    from fastdefocus.batch.progress import ProgressLine
    out = Path(output)
    key = options_key(config, every, outputs)
    units = plan(inputs, every, exclude=out)
    parts = out / "parts"
    done = store.done_units(parts, key)
    todo = [u for u in units if u.ident not in done]
    common = {"options": config.options(), "out_dir": str(out), "maps": "maps" in outputs, "every": every,
              "key": key}
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        writer = store.PartWriter(parts)
        cores = available_cores()
        started = False
        try:
            if engine == "local":
                workers, threads = _shape(workers, threads_per_worker, len(cores), "this process may use")
                workers = min(workers, len(todo))
            else:
                started = ray_engine.start(address, len(cores))
                cpus, gpus = ray_engine.resources()
                if gpus_per_worker > 0 and workers is None:
                    if gpus < gpus_per_worker:
                        raise ValueError(f"gpus_per_worker {gpus_per_worker}, but the Ray cluster has {gpus} GPUs")
                    workers = int(gpus // gpus_per_worker)
                workers, threads = _shape(workers, threads_per_worker, cpus, "of the Ray cluster")
                if workers * gpus_per_worker > gpus + 1e-9:
                    raise ValueError(f"{workers} workers x {gpus_per_worker} GPUs is more than the {gpus} GPUs "
                                     "of the Ray cluster")
                workers = min(workers, len(todo))
            line = ProgressLine(sum(u.expected for u in todo), label=f"batch ({engine})", enabled=progress)
            if progress:
                print(f"batch ({engine}): {len(todo)} of {len(units)} units to do ({len(units) - len(todo)} done "
                      f"before), {workers} workers x {threads} threads -> {out}", file=sys.stderr)
            if engine == "local":
                from fastdefocus.batch.local import run_local
                run_local(todo, **common, workers=workers, threads=threads, cores=cores, sink=writer.add,
                          progress=line)
            else:
                ray_engine.run_ray(todo, **common, workers=workers, threads=threads, gpus=gpus_per_worker,
                                   sink=writer.add, progress=line)
            line.close()
        finally:
            writer.flush()  # what finished is saved, whatever stopped the batch
            if started:
                import ray
                ray.shutdown()
    summary = out / "summary.parquet"
    table = store.merge(parts, units, key, summary)
    if progress:
        store.describe(table, summary)
    return summary
