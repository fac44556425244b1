"""On the real MNIST (../shared/data when this checkout has it): the teacher learns for real."""
from pathlib import Path

import pytest

import train_teacher
from tests.helpers.mnist_fixtures import REAL_MNIST

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (REAL_MNIST / "MNIST" / "raw").is_dir(),
                                 reason=f"real MNIST not found at {REAL_MNIST}/MNIST/raw")]


def test_the_teacher_beats_95_percent_in_one_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    best = train_teacher.main(train_teacher.get_parser().parse_args([
        "--dataset", "mnist", "--model", "lenet5", "--batch_size", "64", "--lr", "0.02",
        "--weight_decay", "1e-4", "--epochs", "1", "--data_root", str(REAL_MNIST), "--device",
        "cpu", "--num_workers", "0", "--no_visdom"]))
    assert best > 0.95
    assert Path("checkpoint/teacher/mnist-lenet5.pt").is_file()
