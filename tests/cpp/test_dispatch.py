"""Which build of the native module is loaded (fastdefocus/__init__.py): the x86-64-v3 build where
it is installed and the CPU has AVX2 and FMA, else the baseline; FASTDEFOCUS_NATIVE forces one,
and a wrong value or an impossible choice is an ImportError that says why. Both builds give the
same maps, bit for bit (the v3 build neither reassociates nor contracts float math)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdefocus

V3_INSTALLED = importlib.util.find_spec("fastdefocus._native_x86_64_v3") is not None
V3_CPU = not (fastdefocus._X86_64_V3_FLAGS - fastdefocus._cpu_flags())
needs_v3 = pytest.mark.skipif(not (V3_INSTALLED and V3_CPU),
                              reason="no x86-64-v3 build installed, or this CPU does not run it")


def _run(code: str, choice: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(fastdefocus._NATIVE_ENV, None)
    if choice is not None:
        env[fastdefocus._NATIVE_ENV] = choice
    # the same interpreter flags (-S where the caller used it) and search path as this process
    flags = ["-S"] if sys.flags.no_site else []
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, *flags, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)


ARCH = "import fastdefocus._native as n; print(n.arch)"


def test_baseline_when_asked():
    r = _run(ARCH, "baseline")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "baseline"


@needs_v3
def test_auto_loads_the_v3_build_on_a_cpu_that_runs_it():
    for choice in (None, "auto", "x86-64-v3", " X86-64-V3 "):
        r = _run(ARCH, choice)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "x86-64-v3", choice


def test_this_process_loaded_the_best_build():
    from fastdefocus import _native

    choice = fastdefocus._native_choice()
    want = "x86-64-v3" if V3_INSTALLED and V3_CPU and choice != "baseline" else "baseline"
    assert _native.arch == want
    assert _native.__name__ == "fastdefocus._native"  # pickles and type names as before


def test_a_wrong_choice_is_refused_with_the_choices():
    r = _run(ARCH, "avx512")
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "FASTDEFOCUS_NATIVE='avx512'" in r.stderr
    assert "auto, baseline, x86-64-v3" in r.stderr


def test_v3_on_a_cpu_without_it_is_refused(monkeypatch):
    """The finder itself, with the CPU's flags replaced: forced v3 says which flags are missing;
    auto falls back to the baseline (None: the normal import)."""
    monkeypatch.setattr(fastdefocus, "_cpu_flags", lambda: frozenset({"sse2", "avx"}))
    monkeypatch.setenv(fastdefocus._NATIVE_ENV, "auto")
    assert fastdefocus._NativeFinder.find_spec("fastdefocus._native") is None
    monkeypatch.setenv(fastdefocus._NATIVE_ENV, "x86-64-v3")
    if V3_INSTALLED:
        with pytest.raises(ImportError, match="this CPU lacks .*avx2.*fma"):
            fastdefocus._NativeFinder.find_spec("fastdefocus._native")
        monkeypatch.setattr(fastdefocus, "_cpu_flags", lambda: frozenset())  # no /proc/cpuinfo
        with pytest.raises(ImportError, match="features cannot be read"):
            fastdefocus._NativeFinder.find_spec("fastdefocus._native")
    else:
        with pytest.raises(ImportError, match="no x86-64-v3 build"):
            fastdefocus._NativeFinder.find_spec("fastdefocus._native")
    assert fastdefocus._NativeFinder.find_spec("fastdefocus.other") is None


MAPS = """
import json, sys, numpy as np, fastdefocus
from fastdefocus import _native
from fastdefocus.scenes import demo_scene
image = demo_scene((150, 190))[0]  # RGB uint8
lum = _native.stage_luminance(image)
out = {"arch": _native.arch}
for stride in (8, 16):
    r = fastdefocus.DefocusEstimator(device="cpu", stride=stride).estimate(image)
    out[f"sigma{stride}"] = r.sigma.tolist()
    out[f"confidence{stride}"] = r.confidence.tolist()
out["snap"] = _native.stage_snap(np.ascontiguousarray(r.sigma), lum, 10).tolist()
out["guided"] = _native.guided_filter(lum, lum, None, 4, 1e-3, 2).tolist()
json.dump(out, sys.stdout)
"""


@needs_v3
def test_both_builds_give_the_same_maps_bit_for_bit():
    got = {}
    for choice in ("baseline", "x86-64-v3"):
        r = _run(MAPS, choice)
        assert r.returncode == 0, r.stderr
        got[choice] = json.loads(r.stdout)
        assert got[choice]["arch"] == choice
    for key in ("sigma8", "confidence8", "sigma16", "confidence16", "snap", "guided"):
        a = np.asarray(got["baseline"][key], np.float32)
        b = np.asarray(got["x86-64-v3"][key], np.float32)
        assert a.shape == b.shape and a.size > 0, key
        np.testing.assert_array_equal(a, b, err_msg=key)
