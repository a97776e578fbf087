"""The layering and the single sources of truth: what `import fastdefocus` loads, where defaults
and constants are defined, and that the copies in other languages agree with them."""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from importlib.metadata import version

import pytest

import fastdefocus
from fastdefocus import _params
from fastdefocus.config import EstimatorConfig


def test_estimate_loads_no_tooling_torch_or_numba():
    code = ("import json, sys, numpy as np, fastdefocus\n"
            "before = sorted(m for m in sys.modules if m.startswith('fastdefocus'))\n"
            "fastdefocus.estimate(np.zeros((40, 40), np.uint8), device='cpu')\n"
            "after = sorted(m for m in sys.modules if m.startswith('fastdefocus'))\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numba', 'cupy'))\n"
            "print(json.dumps([before, after, heavy]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    before, after, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == ["fastdefocus"]  # the public names are imported on first use
    tooling = [m for m in after if m.split(".")[1:2] and m.split(".")[1] in ("cli", "eval", "train", "batch")]
    assert tooling == [] and heavy == []
    assert "fastdefocus.estimator" in after and "fastdefocus._native" in after  # the native CPU pipeline


def test_public_names_resolve_and_unknown_names_raise():
    for name in fastdefocus.__all__:
        assert getattr(fastdefocus, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fastdefocus.nope  # noqa: B018


def test_version_comes_from_the_package_metadata():
    assert fastdefocus.__version__ == version("fastdefocus")


def test_native_weight_floor_is_the_python_constant():
    from fastdefocus import _native
    assert _native.WEIGHT_FLOOR == _params.WEIGHT_FLOOR


def test_estimator_options_are_the_config():
    est = fastdefocus.DefocusEstimator(device="cpu")
    defaults = EstimatorConfig(device="cpu")
    for f in dataclasses.fields(EstimatorConfig):
        if f.name != "max_pixels":  # "auto" is resolved from the stride
            assert getattr(est.config, f.name) == getattr(defaults, f.name), f.name
    assert isinstance(est.config.max_pixels, int)
    assert fastdefocus.DefocusEstimator(EstimatorConfig(device="cpu", stride=16), snap=0).config.stride == 16
    with pytest.raises(TypeError, match="options go by keyword"):
        fastdefocus.DefocusEstimator("cpu")


@pytest.mark.parametrize("options, error, message", [
    ({"stride": 0}, ValueError, "stride must be an int >= 1, got 0"),
    ({"stride": 8.0}, TypeError, "stride must be an int"),
    ({"eps": 0.0}, ValueError, "eps must be a finite number > 0"),
    ({"radius": float("nan")}, ValueError, "radius must be a finite number"),
    ({"iterations": True}, TypeError, "iterations must be an int"),
    ({"device": "cpu", "backend": "compile"}, ValueError, "runs on a CUDA device"),
    ({"max_pixels": "lots"}, ValueError, "max_pixels must be 'auto', None or an integer"),
])
def test_config_validates_once(options, error, message):
    with pytest.raises(error, match=message):
        EstimatorConfig(**options)


def test_config_is_frozen_and_replace_validates():
    cfg = EstimatorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stride = 4
    assert cfg.replace(stride=16).stride == 16
    with pytest.raises(ValueError, match="snap must be an int >= 0"):
        cfg.replace(snap=-1)


def test_cli_options_are_generated_from_the_config():
    from fastdefocus.cli.options import add_estimator_arguments, config_from_args
    parser = argparse.ArgumentParser()
    add_estimator_arguments(parser)
    assert config_from_args(parser.parse_args([])) == EstimatorConfig()
    flags = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(EstimatorConfig)} - flags == {"max_pixels"}
    args = parser.parse_args(["--stride", "16", "--snap", "0", "--eps", "0.01", "--batch-size", "64"])
    assert config_from_args(args) == EstimatorConfig(stride=16, snap=0, eps=0.01, batch_size=64)
    fuse_parser = argparse.ArgumentParser()
    add_estimator_arguments(fuse_parser, stride=16)  # a command's own default
    assert config_from_args(fuse_parser.parse_args([])).stride == 16
    assert config_from_args(fuse_parser.parse_args(["--stride", "8"])).stride == 8
