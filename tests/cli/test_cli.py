import subprocess
import sys

import cv2
import numpy as np
import pytest

from fastdefocus.cli.main import SIGMA_PNG_SCALE, main
from fastdefocus.scenes import dead_leaves


def test_demo_prints_error_and_refuses_overwrite(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mean absolute error" in out
    for name in ("input", "truth", "estimate", "side_by_side"):
        assert (tmp_path / f"demo_{name}.png").stat().st_size > 0
    assert main(["demo", "-o", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path), "--force"]) == 0


@pytest.fixture
def photo(tmp_path):
    img = (dead_leaves(np.random.default_rng(4), size=96, colour=True) * 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), img)
    return path


def test_estimate_writes_all_outputs(tmp_path, photo):
    out = tmp_path / "out"
    assert main(["estimate", str(photo), "-o", str(out), "-q"]) == 0
    sigma = cv2.imread(str(out / "photo_sigma.tiff"), cv2.IMREAD_UNCHANGED)
    sigma16 = cv2.imread(str(out / "photo_sigma16.png"), cv2.IMREAD_UNCHANGED)
    assert sigma.dtype == np.float32 and sigma.shape == (96, 96)
    assert sigma16.dtype == np.uint16
    assert np.abs(sigma16 / SIGMA_PNG_SCALE - sigma).max() <= 0.5 / SIGMA_PNG_SCALE + 1e-6
    # the pictures carry a colour bar of the sigma scale on their right
    color = cv2.imread(str(out / "photo_sigma_color.png"))
    side = cv2.imread(str(out / "photo_side_by_side.png"))
    assert color.shape[0] == 96 and color.shape[1] > 96 + 18
    assert side.shape[0] == 96 and side.shape[1] == 96 + color.shape[1]
    assert not list(out.glob("*.tmp"))
    # never overwrites without --force
    assert main(["estimate", str(photo), "-o", str(out), "-q"]) == 2
    assert main(["estimate", str(photo), "-o", str(out), "-q", "--force", "--format", "npy"]) == 0
    assert np.load(out / "photo_sigma.npy").shape == (96, 96)


def test_estimate_bad_file(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    assert main(["estimate", str(bad), "-o", str(tmp_path / "o")]) == 1
    assert "cannot decode" in capsys.readouterr().err
    assert not (tmp_path / "o" / "notes_sigma.tiff").exists()


def test_console_script_help():
    for module in ("fastdefocus.cli", "fastdefocus"):  # python -m fastdefocus works too
        res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "estimate" in res.stdout and "demo" in res.stdout, module


def test_snap_option_reaches_the_estimator(tmp_path, photo, capsys):
    from fastdefocus.cli.main import build_parser, main
    from fastdefocus.cli.options import estimator_from_args as _estimator_from
    args = build_parser().parse_args(["estimate", str(photo), "-o", str(tmp_path / "o"), "--snap", "0"])
    assert _estimator_from(args).snap == 0
    args = build_parser().parse_args(["estimate", str(photo), "-o", str(tmp_path / "o")])
    assert _estimator_from(args).snap == 10
    with pytest.raises(SystemExit) as e:
        main(["estimate", str(photo), "-o", str(tmp_path / "bad"), "--snap", "-2", "--device", "cpu"])
    assert e.value.code != 0 and "snap must be an int >= 0, got -2" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_estimate_refuses_clashing_names(tmp_path, photo, capsys):
    other = tmp_path / "sub"
    other.mkdir()
    twin = other / "photo.png"
    twin.write_bytes(photo.read_bytes())
    assert main(["estimate", str(photo), str(twin), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "same outputs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_side_by_side_for_gray_alpha_and_int16(tmp_path):
    from fastdefocus.cli.main import _as_rgb8
    gray_alpha = np.zeros((8, 9, 2), np.uint8)
    gray_alpha[..., 0] = 200
    assert _as_rgb8(gray_alpha).shape == (8, 9, 3) and _as_rgb8(gray_alpha).max() == 200
    assert _as_rgb8(np.full((4, 5), 100, np.int16)).max() == 100


# ------------------------------------------------------------------------------ video


def _write_video(path, frames=5, size=(64, 48)):
    import cv2
    from fastdefocus.scenes import dead_leaves
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    base = (dead_leaves(np.random.default_rng(0), max(size)) * 255).astype(np.uint8)[:size[1], :size[0]]
    for i in range(frames):
        writer.write(cv2.cvtColor(np.roll(base, 2 * i, axis=1), cv2.COLOR_GRAY2BGR))
    writer.release()


def _count_frames(path):
    import cv2
    cap = cv2.VideoCapture(str(path))
    n, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, shape = n + 1, frame.shape
    cap.release()
    return n, shape


def test_video_writes_side_by_side_and_refuses_overwrite(tmp_path, capsys):
    from fastdefocus.cli.main import main
    src, out = tmp_path / "in.avi", tmp_path / "out.avi"
    _write_video(src)
    assert main(["video", str(src), "-o", str(out), "--side-by-side", "--device", "cpu"]) == 0
    assert _count_frames(out) == (5, (48, 128, 3))
    assert "5 frames" in capsys.readouterr().out
    assert main(["video", str(src), "-o", str(out), "-q", "--device", "cpu"]) == 2  # no --force
    assert "--force" in capsys.readouterr().err
    assert main(["video", str(src), "-o", str(out), "-q", "--force", "--max-frames", "2",
                 "--smoothing", "0.5", "--device", "cpu"]) == 0
    assert _count_frames(out) == (2, (48, 64, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi", "out.avi"]  # no partial file


def test_video_bad_arguments(tmp_path, capsys):
    from fastdefocus.cli.main import main
    src = tmp_path / "in.avi"
    _write_video(src, frames=2)
    assert main(["video", str(src), "-o", str(tmp_path / "out.gif")]) == 2
    assert "must end in one of" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "missing.avi"), "-o", str(tmp_path / "o.avi")]) == 2
    assert "video not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["video", str(src), "-o", str(tmp_path / "o.avi"), "--smoothing", "1.5", "--device", "cpu"])
    assert "smoothing must be in [0, 1)" in capsys.readouterr().err
    assert main(["video", str(src), "-o", str(tmp_path / "o.avi"), "--workers", "0", "--device", "cpu"]) == 2
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o.avi").exists()


def test_video_with_workers_writes_every_frame(tmp_path, capsys):
    from fastdefocus.cli.main import main
    src, out = tmp_path / "in.avi", tmp_path / "out.avi"
    _write_video(src)
    assert main(["video", str(src), "-o", str(out), "--workers", "2", "--stable", "-q", "--device", "cpu"]) == 0
    assert _count_frames(out) == (5, (48, 64, 3))


# ----------------------------------------------- outputs checked first, quiet, logs, extras


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the outputs were checked")


@pytest.mark.parametrize("command", ["magnify", "enhance"])
def test_app_outputs_checked_before_the_work(tmp_path, photo, capsys, monkeypatch, command):
    import fastdefocus.cli.apps as cli_apps
    monkeypatch.setattr(cli_apps, command, _no_work)
    monkeypatch.setattr(cli_apps, "estimator_from_args", _no_work)
    assert main([command, str(photo), "-o", str(tmp_path / "out_noext")]) == 2
    assert "out_noext has no extension" in capsys.readouterr().err
    assert main([command, str(photo), "-o", str(tmp_path), "--force"]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([command, str(photo), "-o", str(tmp_path / "file" / "out.png")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "photo.png"]


def test_fuse_writes_both_or_neither(tmp_path, photo, capsys, monkeypatch):
    import fastdefocus.cli.apps as cli_apps
    other = tmp_path / "other.png"
    other.write_bytes(photo.read_bytes())
    real_fuse = cli_apps.fuse
    monkeypatch.setattr(cli_apps, "fuse", _no_work)
    assert main(["fuse", str(photo), str(other), "-o", str(tmp_path / "fused.png"), "--decision",
                 str(tmp_path / "noext"), "--sigma-weight", "0"]) == 2
    assert "noext has no extension" in capsys.readouterr().err
    assert not (tmp_path / "fused.png").exists()
    assert main(["fuse", str(photo), str(other), "-o", str(tmp_path / "same.png"), "--decision",
                 str(tmp_path / "same.png"), "--sigma-weight", "0"]) == 2
    assert "same name" in capsys.readouterr().err
    monkeypatch.setattr(cli_apps, "fuse", real_fuse)
    assert main(["fuse", str(photo), str(other), "-o", str(tmp_path / "fused.png"), "--decision",
                 str(tmp_path / "decision.png"), "--sigma-weight", "0", "-q"]) == 0
    assert (tmp_path / "fused.png").exists() and (tmp_path / "decision.png").exists()
    assert capsys.readouterr().out == ""


def test_version(capsys):
    import fastdefocus
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"fastdefocus {fastdefocus.__version__}"


def test_quiet_is_silent_and_logs_have_one_line_per_item(tmp_path, photo, capsys):
    other = tmp_path / "second.png"
    other.write_bytes(photo.read_bytes())
    assert main(["estimate", str(photo), str(other), "-o", str(tmp_path / "q"), "-q", "--stride", "16"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["estimate", str(photo), str(other), "-o", str(tmp_path / "v"), "--stride", "16"]) == 0
    err = capsys.readouterr().err  # not a terminal here: no \r, one line per image
    assert "\r" not in err and "[1/2] photo.png\n" in err and "[2/2] second.png\n" in err


def test_estimate_outputs_and_summary(tmp_path, photo, capsys):
    import csv
    import json
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    summary = tmp_path / "summary.csv"
    assert main(["estimate", str(photo), str(bad), "-o", str(out), "--outputs", "sigma16,color", "--summary",
                 str(summary), "-q", "--stride", "16"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["photo_sigma16.png", "photo_sigma_color.png"]
    rows = list(csv.DictReader(summary.open()))
    assert list(rows[0]) == ["path", "height", "width", "median_sigma", "p10_sigma", "p90_sigma",
                             "in_focus_fraction", "sharpness", "ms", "error"]
    assert rows[0]["path"] == str(photo) and rows[0]["height"] == "96" and rows[0]["error"] == ""
    assert 0 <= float(rows[0]["in_focus_fraction"]) <= 1 and float(rows[0]["ms"]) > 0
    assert rows[1]["path"] == str(bad) and "cannot decode" in rows[1]["error"] and rows[1]["median_sigma"] == ""
    sigma16 = cv2.imread(str(out / "photo_sigma16.png"), cv2.IMREAD_UNCHANGED) / SIGMA_PNG_SCALE
    assert float(rows[0]["median_sigma"]) == pytest.approx(float(np.median(sigma16)), abs=1e-3)
    # JSON, no map files at all; the summary is checked before the work
    assert main(["estimate", str(photo), "--outputs", "none", "--summary", str(tmp_path / "s.json"), "-q",
                 "--stride", "16"]) == 0
    table = json.loads((tmp_path / "s.json").read_text())
    assert table[0]["width"] == 96 and table[0]["error"] == "" and set(table[0]) == set(rows[0])
    assert main(["estimate", str(photo), "--outputs", "none", "--summary", str(tmp_path / "s.json"), "-q"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["estimate", str(photo), "-o", str(out), "--summary", str(tmp_path / "s.txt"), "--force"]) == 2
    assert "must end in one of .csv, .json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["estimate", str(photo), "-o", str(out), "--outputs", "sigma,colour"])
    assert "unknown output colour" in capsys.readouterr().err


def test_eval_without_data_is_an_error(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "nothing"), "--sections", "syndof", "dbd", "--no-peers",
                 "--stride", "16"]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "FASTDEFOCUS_DATA" in err and "no quality section ran" in err


def test_missing_torch_is_one_line(tmp_path, photo, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit) as e:
        main(["estimate", str(photo), "-o", str(tmp_path / "o"), "--backend", "torch", "--device", "cpu"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "pip install 'fastdefocus[torch]'" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_video_of_a_still_image_and_its_summary(tmp_path, capsys):
    import json
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), (dead_leaves(np.random.default_rng(1), size=64) * 255).astype(np.uint8))
    out, summary = tmp_path / "still.avi", tmp_path / "frames.json"
    assert main(["video", str(still), "-o", str(out), "--summary", str(summary), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "frame 1 " in err and "frame 1/" not in err and "-9223372036854775808" not in err
    rows = json.loads(summary.read_text())
    assert len(rows) == 1 and rows[0]["frame"] == 0 and rows[0]["path"] == str(still)
    assert list(rows[0]) == ["path", "frame", "height", "width", "median_sigma", "p10_sigma", "p90_sigma",
                             "in_focus_fraction", "sharpness", "ms", "error"]


def test_video_counts_and_quiet(tmp_path, capsys):
    src = tmp_path / "in.avi"
    _write_video(src, frames=3)
    assert main(["video", str(src), "-o", str(tmp_path / "out.avi"), "--max-frames", "2", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "frame 2/2" in err and "\r" not in err
    assert main(["video", str(src), "-o", str(tmp_path / "q.avi"), "-q", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert _count_frames(tmp_path / "q.avi")[0] == 3


def test_video_writer_codecs(tmp_path, monkeypatch):
    from fastdefocus.io import video
    frame = np.zeros((47, 63, 3), np.uint8)
    monkeypatch.setattr(video, "_h264_encoder", lambda: (None, "PyAV is not installed (pip install 'fastdefocus[video]')"))
    with video.VideoWriter(tmp_path / "a.mp4", 10) as writer:
        assert writer.codec == "mp4v" and "fastdefocus[video]" in writer.notice and "mp4v" in writer.notice
        writer.write(frame)
    with video.VideoWriter(tmp_path / "b.avi", 10) as writer:
        assert writer.codec == "MJPG" and writer.notice is None
        writer.write(frame)
    with pytest.raises(ValueError, match="must end in one of"):
        video.VideoWriter(tmp_path / "c.gif", 10)


def test_video_writes_h264_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    from fastdefocus.io.video import VideoWriter
    with VideoWriter(tmp_path / "a.mp4", 10) as writer:
        if writer.codec != "h264":
            pytest.skip(writer.notice)
        for i in range(3):
            writer.write(np.full((47, 63, 3), 40 * i, np.uint8))  # odd sizes are padded to even
    with av.open(str(tmp_path / "a.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
