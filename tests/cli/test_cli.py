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
    assert cv2.imread(str(out / "photo_sigma_color.png")).shape == (96, 96, 3)
    assert cv2.imread(str(out / "photo_side_by_side.png")).shape == (96, 192, 3)
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
    assert main(["video", str(src), "-o", str(out), "--side-by-side", "-q", "--device", "cpu"]) == 0
    assert _count_frames(out) == (5, (48, 128, 3))
    assert "5 frames" in capsys.readouterr().out
    assert main(["video", str(src), "-o", str(out), "-q", "--device", "cpu"]) == 1  # no --force
    assert main(["video", str(src), "-o", str(out), "-q", "--force", "--max-frames", "2",
                 "--smoothing", "0.5", "--device", "cpu"]) == 0
    assert _count_frames(out) == (2, (48, 64, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi", "out.avi"]  # no partial file


def test_video_bad_arguments(tmp_path, capsys):
    from fastdefocus.cli.main import main
    src = tmp_path / "in.avi"
    _write_video(src, frames=2)
    with pytest.raises(SystemExit) as e:
        main(["video", str(src), "-o", str(tmp_path / "out.gif")])
    assert e.value.code == 2 and "must end in one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["video", str(tmp_path / "missing.avi"), "-o", str(tmp_path / "o.avi")])
    assert "video not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["video", str(src), "-o", str(tmp_path / "o.avi"), "--smoothing", "1.5", "--device", "cpu"])
    assert "smoothing must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o.avi").exists()
