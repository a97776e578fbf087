"""Shared fixtures and the CUDA switch of the test suite.

GPU tests run on the CPU under Numba's CUDA simulator by default (``--device sim``: no test
needs a GPU); ``pytest --device cuda`` runs the same tests on a real NVIDIA device. The switch
is set here, in ``pytest_configure``, before any test module imports Numba.
"""
from __future__ import annotations

import os

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--device", choices=("sim", "cuda"), default="sim",
                     help="where the CUDA kernels' tests run: Numba's CUDA simulator on the CPU (default) "
                          "or a real CUDA device")


def pytest_configure(config):
    if config.getoption("--device") == "sim":
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        os.environ.pop("NUMBA_ENABLE_CUDASIM", None)


@pytest.fixture
def simulator() -> bool:
    """True when the CUDA tests run under Numba's simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def leaves_rgb() -> np.ndarray:
    """A sharp 128 x 128 dead-leaves RGB uint8 image (seed 3), shared by tests that only read it."""
    from fastdefocus.scenes import dead_leaves
    img = dead_leaves(np.random.default_rng(3), size=128, colour=True)
    img = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    img.setflags(write=False)
    return img
