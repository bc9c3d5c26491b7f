"""Shared fixtures: every test body that takes a backend fixture runs on NumPy and on CuPy.

The CuPy parameter is marked ``gpu`` and skipped, with the reason, where CuPy or a CUDA
device is missing; nothing else changes between the two runs.
"""
from __future__ import annotations

import functools

import pytest

from nn import backends


@functools.lru_cache(maxsize=None)
def _available(name: str) -> bool:
    return backends.available(name)


def pytest_addoption(parser):
    group = parser.getgroup("course", "course practicals (tests/course)")
    group.addoption("--impl", choices=("solutions", "exercises"), default="solutions",
                    help="run the course tests on solutions/ (default; each test also runs on "
                         "the generated stub and must raise NotImplementedError there) or on "
                         "the student's files (the workspace copy in work/, else exercises/)")
    group.addoption("--impl-file", default=None, metavar="PATH",
                    help="run a practical's tests on this file (.py or .ipynb) instead of the "
                         "student's copy (implies --impl exercises); used by python -m nn check")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend_name(request):
    """The name of a backend that can run here ("numpy", and "cupy" on a GPU machine)."""
    if not _available(request.param):
        pytest.skip(f"backend {request.param!r} unavailable here (needs CuPy and a CUDA device)")
    return request.param


@pytest.fixture
def fp64(backend_name):
    """The current backend, switched to float64 (gradient checks), seeded."""
    with backends.using(backend_name, "fp64", seed=0) as B:
        yield B


@pytest.fixture
def fp32(backend_name):
    with backends.using(backend_name, "fp32", seed=0) as B:
        yield B


@pytest.fixture
def mixed(backend_name):
    with backends.using(backend_name, "mixed", seed=0) as B:
        yield B


@pytest.fixture(autouse=True)
def _isolate_backend():
    """A test that calls ``nn.use`` must not change the backend of the tests after it."""
    with backends.using("numpy", "fp32", seed=0):
        yield


@pytest.fixture
def small_workspace():
    """A 1-byte im2col workspace: every convolution processes its batch one example at a time."""
    with backends.using(workspace_bytes=1) as B:
        yield B
