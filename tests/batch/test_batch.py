"""fastdefocus.batch: the summary's rows and schema, both engines, errors as rows, videos, resuming."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet")

import fastdefocus  # noqa: E402
from fastdefocus.batch import SUMMARY_COLUMNS, map_name, run  # noqa: E402
from fastdefocus.config import EstimatorConfig  # noqa: E402
from fastdefocus.io.images import read_image  # noqa: E402
from fastdefocus.io.sigmamap import to_png16  # noqa: E402
from fastdefocus.scenes import dead_leaves  # noqa: E402

CONFIG = EstimatorConfig(device="cpu", stride=16)
OPTIONS = {"device": "cpu", "stride": 16}


def _picture(seed: int, size: int = 64) -> np.ndarray:
    img = dead_leaves(np.random.default_rng(seed), size, colour=True)
    img = cv2.GaussianBlur(img, (0, 0), 0.5 + seed % 3)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _write_images(folder, seeds) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"leaves{seed}.png"
        cv2.imwrite(str(path), cv2.cvtColor(_picture(seed), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _summary(path) -> list:
    return pq.read_table(path).to_pylist()


def _run(inputs, out, **kwargs):
    kwargs = {"config": CONFIG, "workers": 2, "threads_per_worker": 1, "progress": False, **kwargs}
    return run(inputs, out, **kwargs)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    _write_images(folder / "nested", [0, 1])  # folders are walked recursively
    _write_images(folder, [2])
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.md").write_text("not an image: skipped by extension")
    return folder


@pytest.fixture(scope="module")
def local_summary(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return _run([photos], out, engine="local", outputs=("summary", "maps"))


def test_summary_schema_is_exact(local_summary):
    table = pq.read_table(local_summary)
    assert tuple(table.column_names) == SUMMARY_COLUMNS == (
        "path", "frame", "height", "width", "median_sigma", "p10_sigma", "p90_sigma", "in_focus_fraction",
        "sharpness", "backend", "ms", "error")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["path"] == types["backend"] == types["error"] == "string"
    assert types["frame"] == types["height"] == types["width"] == "int64"
    assert types["median_sigma"] == types["ms"] == "double"


def test_rows_match_estimate_and_maps_are_png16(local_summary, photos):
    rows = {r["path"]: r for r in _summary(local_summary)}
    assert len(rows) == 4  # 3 pictures and the corrupt file; notes.md is not an image
    for path in sorted(photos.rglob("leaves*.png")):
        row = rows[str(path)]
        assert row["error"] == "" and row["frame"] == 0 and (row["height"], row["width"]) == (64, 64)
        result = fastdefocus.estimate(read_image(path), **OPTIONS)
        sigma = result.sigma
        assert abs(row["median_sigma"] - float(np.median(sigma))) < 1e-3
        assert abs(row["p10_sigma"] - float(np.percentile(sigma, 10))) < 1e-3
        assert abs(row["p90_sigma"] - float(np.percentile(sigma, 90))) < 1e-3
        assert abs(row["in_focus_fraction"] - float(np.mean(sigma <= 1.0))) < 1e-3
        assert abs(row["sharpness"] - result.sharpness()) < 1e-3
        assert row["backend"] == "onnxruntime" and row["ms"] > 0
        written = read_image(local_summary.parent / "maps" / map_name(str(path)))
        assert written.dtype == np.uint16
        assert np.abs(written.astype(int) - to_png16(sigma).astype(int)).max() <= 1


def test_corrupt_file_is_a_row_with_its_error(local_summary, photos):
    row = next(r for r in _summary(local_summary) if r["path"].endswith("corrupt.jpg"))
    assert "cannot decode" in row["error"] and "JPEG" in row["error"]
    assert row["height"] == 0 and np.isnan(row["median_sigma"])


def test_missing_file_in_a_list_is_a_row_and_the_batch_goes_on(photos, tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_text(f"# my photos\n{photos / 'leaves2.png'}\n\nnested/../gone.png\n")
    rows = _summary(_run([listing], tmp_path / "out", workers=1))
    assert [r["path"] for r in rows] == [str(photos / "leaves2.png"), str(tmp_path / "gone.png")]
    assert rows[0]["error"] == "" and "not found" in rows[1]["error"]


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    with pytest.raises(ValueError, match="no images or videos in folder"):
        _run([tmp_path / "empty"], tmp_path / "out")
    assert not (tmp_path / "out" / "summary.parquet").exists()


def _write_video(path_stem, frames: int = 5):
    for suffix, fourcc in ((".mp4", "mp4v"), (".avi", "MJPG")):
        path = path_stem.with_suffix(suffix)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 64))
        if writer.isOpened():
            for i in range(frames):
                writer.write(cv2.cvtColor(_picture(10 + i), cv2.COLOR_RGB2BGR))
            writer.release()
            return path
    pytest.skip("OpenCV cannot write mp4v or MJPG video here")


def test_video_every_second_frame(tmp_path):
    video = _write_video(tmp_path / "clip")
    summary = _run([video], tmp_path / "out", workers=1, every=2, outputs="summary,maps")
    rows = _summary(summary)
    assert [r["frame"] for r in rows] == [0, 2, 4]
    assert all(r["path"] == str(video) and r["error"] == "" and r["width"] == 64 for r in rows)
    names = sorted(p.name for p in (tmp_path / "out" / "maps").iterdir())
    assert names == sorted(map_name(str(video), f, video=True) for f in (0, 2, 4))
    assert names[0].endswith("_f0.png")


def test_video_runs_start_with_an_exact_seek(tmp_path):
    from fastdefocus.batch.work import video_run
    video = _write_video(tmp_path / "clip")
    whole = dict(video_run(str(video), 0, -1, 1))
    assert sorted(whole) == [0, 1, 2, 3, 4]
    part = dict(video_run(str(video), 2, 4, 1))
    assert sorted(part) == [2, 3]
    for i in part:
        np.testing.assert_array_equal(part[i], whole[i])
    assert sorted(dict(video_run(str(video), 3, -1, 2))) == [4]


def test_resume_estimates_only_what_is_not_done(tmp_path):
    paths = _write_images(tmp_path / "in", [20, 21, 22, 23, 24])
    out = tmp_path / "out"
    _run(paths[:3], out)

    def part_rows():
        return sum(pq.read_metadata(p).num_rows for p in (out / "parts").glob("part-*.parquet"))

    assert part_rows() == 3
    rows = _summary(_run(paths, out))
    assert part_rows() == 5  # only the 2 new images were estimated
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    _run(paths, out)
    assert part_rows() == 5  # all done: nothing estimated
    _run(paths[:2], out, config=CONFIG.replace(snap=0))  # other options: done again
    assert part_rows() == 7
    assert len(_summary(out / "summary.parquet")) == 2


def test_local_engine_bounds_workers_by_cores(tmp_path):
    paths = _write_images(tmp_path / "in", [30])
    import os
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with pytest.raises(ValueError, match="more than the"):
        _run(paths, tmp_path / "out", workers=cores, threads_per_worker=2)
    with pytest.raises(ValueError, match="options of engine 'ray'"):
        _run(paths, tmp_path / "out", address="auto")


def test_uri_inputs_are_read_through_pyarrow(photos, tmp_path):
    uri = (photos / "leaves2.png").as_uri()
    rows = _summary(_run([uri], tmp_path / "out", workers=1))
    assert rows[0]["path"] == uri and rows[0]["error"] == ""
    expected = fastdefocus.estimate(read_image(photos / "leaves2.png"), **OPTIONS).sigma
    assert abs(rows[0]["median_sigma"] - float(np.median(expected))) < 1e-3


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_and_local_give_the_same_rows(local_ray, photos, local_summary, tmp_path):
    summary = _run([photos], tmp_path / "out", engine="ray", outputs=("summary", "maps"))
    local_rows, ray_rows = _summary(local_summary), _summary(summary)
    assert [r["path"] for r in ray_rows] == [r["path"] for r in local_rows]
    for a, b in zip(local_rows, ray_rows):
        assert a["error"] == b["error"] and a["frame"] == b["frame"]
        if not a["error"]:
            assert abs(a["median_sigma"] - b["median_sigma"]) < 1e-6
            assert abs(a["sharpness"] - b["sharpness"]) < 1e-6
    assert sorted(p.name for p in (tmp_path / "out" / "maps").iterdir()) == \
        sorted(p.name for p in (local_summary.parent / "maps").iterdir())


def test_cli_batch(photos, tmp_path, capsys):
    from fastdefocus.cli.main import main
    out = tmp_path / "out"
    assert main(["batch", str(photos / "leaves2.png"), "-o", str(out), "--stride", "16", "--device", "cpu",
                 "--workers", "1", "--every", "3"]) == 0
    rows = _summary(out / "summary.parquet")
    assert len(rows) == 1 and rows[0]["error"] == ""
    assert "1 rows ->" in capsys.readouterr().err


def test_cli_without_ray_says_what_to_install(photos, tmp_path, monkeypatch, capsys):
    from fastdefocus.cli.main import main
    import fastdefocus.batch
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    monkeypatch.delitem(sys.modules, "fastdefocus.batch.ray_engine", raising=False)
    monkeypatch.delattr(fastdefocus.batch, "ray_engine", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["batch", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray"])
    assert exit_.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fastdefocus batch: error: --engine ray needs ray[data], which is not installed: "
                   "pip install 'fastdefocus[ray]'"]


def test_import_fastdefocus_loads_neither_ray_nor_pyarrow():
    code = ("import json, sys, fastdefocus, fastdefocus.batch\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_worker_threads_are_limited_to_their_share():
    code = ("import os, json\n"
            "from fastdefocus.batch.work import limit_threads\n"
            "cores = sorted(os.sched_getaffinity(0))\n"
            "limit_threads(1, cores[:1])\n"
            "from fastdefocus import _native\n"
            "threads = [len(os.sched_getaffinity(0)), _native.default_threads(), os.environ['OMP_NUM_THREADS']]\n"
            "print(json.dumps(threads))\n")
    if not hasattr(__import__("os"), "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [1, 1, "1"]


def test_progress_line_on_a_terminal_and_in_a_log():
    import io
    from fastdefocus.batch.progress import ProgressLine

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term, log = Terminal(), io.StringIO()
    for stream in (term, log):
        line = ProgressLine(40, stream=stream)
        for _ in range(40):
            line.update(1)
        line.close()
    assert "\r" in term.getvalue() and "[####" in term.getvalue() and "items/s" in term.getvalue()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 5 <= len(lines) <= 9 and lines[-1].startswith("batch 40/40 items")


def test_a_worker_that_cannot_build_its_estimator_stops_the_batch(photos, tmp_path):
    with pytest.raises(RuntimeError, match="could not build its estimator"):
        _run([photos / "leaves2.png"], tmp_path / "out", workers=1,
             config=CONFIG.replace(weights=str(tmp_path / "no-model-here")))


def test_a_worker_estimator_runs_with_the_worker_threads(tmp_path):
    from fastdefocus.batch.work import Worker
    worker = Worker(CONFIG.options(), str(tmp_path), maps=False, every=1, key="k", threads=1)
    assert worker.estimator.config.threads == 1
    from fastdefocus.batch import options_key
    assert options_key(CONFIG, 1, ("summary",)) == options_key(CONFIG.replace(threads=3), 1, ("summary",))
    assert options_key(CONFIG, 1, ("summary",)) != options_key(CONFIG, 2, ("summary",))
