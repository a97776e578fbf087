"""What every report shares: where the data is, what ran where (run_info), and how a report is
written (Markdown on stdout, .md and .json files)."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import cv2
import numpy as np


def default_data() -> Path:
    """$FASTDEFOCUS_DATA, else ``../shared/data`` or ``shared/data`` from the working directory
    (the first that exists; the first if none does, so messages can name it)."""
    env = os.environ.get("FASTDEFOCUS_DATA")
    if env:
        return Path(env)
    candidates = [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0]).resolve()


def _git(*args) -> str | None:
    """git in the working directory (the commit of a checkout the report runs from, if any)."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_info(estimator=None) -> dict:
    """Date, machine, commit and model of this run."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "commit": (commit + (" (with uncommitted changes)" if dirty else "")) if commit else "unknown",
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:  # which build of the native stages (fastdefocus/__init__.py: baseline or x86-64-v3)
        from fastdefocus import _native
        info["native"] = _native.arch
    except ImportError:
        pass
    if estimator is not None:
        meta = estimator.info.metadata
        info["estimator"] = repr(estimator)
        info["weights"] = {"onnx_sha256": meta["files"]["onnx"]["sha256"][:12],
                           "epochs_trained": meta.get("training", {}).get("epochs"),
                           "path": str(estimator.info.onnx_path.parent)}
    return info


def info_markdown(info: dict) -> str:
    w = info.get("weights", {})
    lines = [f"- date: {info['date']}; commit {info['commit']}",
             f"- machine: {info['machine']} (load average {info['load_average']:.2f} at the start)"
             if info.get("load_average") is not None else f"- machine: {info['machine']}",
             f"- python {info['python']}, numpy {info['numpy']}, OpenCV {info['opencv']}"
             + (f", ONNX Runtime {info['onnxruntime']}" if "onnxruntime" in info else "")
             + (f", native stages built for {info['native']}" if "native" in info else "")]
    if w:
        lines.append(f"- weights: onnx sha256 {w['onnx_sha256']}..., {w['epochs_trained']} epoch(s) trained "
                     f"({w['path']})")
    if "estimator" in info:
        lines.append(f"- {info['estimator']}")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, report: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(report), indent=1))


def emit_report(title: str, stem: str, report: dict, markdown: str, out, json_path) -> None:
    """Print a report as Markdown; with ``out`` also write <stem>.md and <stem>.json there,
    with ``json_path`` the JSON there too."""
    text = f"# {title}\n\n{info_markdown(report['info'])}\n\n{markdown}\n"
    print(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.md").write_text(text)
        write_json(out / f"{stem}.json", report)
    if json_path:
        write_json(json_path, report)
