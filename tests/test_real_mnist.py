"""On the real MNIST (../shared/data when this checkout has it): the teacher learns for real."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.mnist_fixtures import REAL_MNIST

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (REAL_MNIST / "MNIST" / "raw").is_dir(),
                                reason=f"real MNIST not found at {REAL_MNIST}/MNIST/raw")


def test_teacher_beats_95_percent_in_one_epoch(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "train_teacher.py"), "--dataset", "mnist", "--model", "lenet5",
         "--batch_size", "64", "--lr", "0.02", "--weight_decay", "1e-4", "--epochs", "1",
         "--data_root", str(REAL_MNIST), "--device", "cpu", "--num_workers", "0", "--no_visdom"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    best = float(result.stdout.strip().splitlines()[-1].split("=")[1])
    assert best > 0.95, result.stdout
    assert (tmp_path / "checkpoint/teacher/mnist-lenet5.pt").is_file()
