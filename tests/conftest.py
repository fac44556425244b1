"""Shared test settings.

Under pytest-xdist (`-n 2`, as .ci/run and the README run it) every worker and every script it
starts use one intra-op thread, so two workers share the two cores instead of four threads
fighting over them. Set before torch is imported by any test module. Tests over ~5 s carry
`@pytest.mark.slow`: `pytest -m "not slow"` is the inner loop of a change.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path

import pytest

from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist


@pytest.fixture(scope="module")
def mnist_workdir(tmp_path_factory) -> Path:
    """A folder with a tiny real-format MNIST in data/ and a (random) LeNet5 teacher at
    checkpoint/teacher/mnist-lenet5.pt, once per test module."""
    work = tmp_path_factory.mktemp("mnist")
    write_tiny_mnist(work / "data", n_train=16, n_test=8)
    write_random_teacher(work)
    return work


@pytest.fixture
def mnist_run(tmp_path, monkeypatch) -> Path:
    """The working folder of one DFAD_mnist run: a tiny MNIST in data/ and a random LeNet5
    teacher at the script's default --ckpt; the test runs in it."""
    write_tiny_mnist(tmp_path / "data", n_train=16, n_test=8)
    write_random_teacher(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path
