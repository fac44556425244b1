"""Shared test settings.

Under pytest-xdist (`-n 2`, as .ci/run and the README run it) every worker and every script it
starts use one intra-op thread, so two workers share the two cores instead of four threads
fighting over them. Set before torch is imported by any test module.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path

import pytest

from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

# End to end: these files run the entry scripts, torchrun or a browser in subprocesses, seconds
# each. `pytest -m "not slow"` leaves them (and the few long tests marked `slow` elsewhere) out:
# the inner loop of a change; the README's command runs everything.
END_TO_END = {
    "test_bad_inputs.py", "test_baselines.py", "test_caltech.py", "test_cifar.py",
    "test_distributed.py", "test_first_run.py", "test_gpu_check.py", "test_loaders.py",
    "test_mnist_scripts.py", "test_real_mnist.py", "test_resume.py", "test_run_scripts.py",
    "test_segmentation_scripts.py", "test_speed.py", "test_visdom.py", "test_visdom_browser.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in END_TO_END:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def mnist_workdir(tmp_path_factory) -> Path:
    """A folder with a tiny real-format MNIST in data/ and a (random) LeNet5 teacher at
    checkpoint/teacher/mnist-lenet5.pt, once per test module."""
    work = tmp_path_factory.mktemp("mnist")
    write_tiny_mnist(work / "data", n_train=16, n_test=8)
    write_random_teacher(work)
    return work
