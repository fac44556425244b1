"""The worked examples of docs/extending.md, run as a user runs them: each is one file outside
the engine, and its run keeps its own files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from examples import own_pair_mnist
from runtime.cli import run_main
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

TINY = ["--epochs", "2", "--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4",
        "--num_workers", "0", "--no_visdom", "--data_root", "data"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def mnist_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_tiny_mnist(tmp_path / "data")
    write_random_teacher(tmp_path)
    return tmp_path


def test_own_teacher_and_student_run_beside_the_lenet_run_without_touching_it(mnist_folder):
    """Example 2: a teacher/student pair of one's own, distilled with DFAD_mnist's flags."""
    DFAD_mnist.main(DFAD_mnist.get_parser().parse_args(TINY))
    lenet_files = snapshot(mnist_folder)
    torch.save(own_pair_mnist.MyTeacher().state_dict(), "checkpoint/teacher/mnist-my_teacher.pt")
    history = own_pair_mnist.main(own_pair_mnist.get_parser().parse_args(TINY))
    assert len(history) == 2
    after = snapshot(mnist_folder)
    assert {k: after[k] for k in lenet_files} == lenet_files  # the LeNet5 run is untouched
    state = torch.load("checkpoint/student/mnist-my_student-state.pt", weights_only=True)
    assert state["student"].keys() == own_pair_mnist.MyStudent().state_dict().keys()
    row = Path("log/DFAD-mnist-my_student.csv").read_text()
    assert row.startswith(f"run={state['run_id']},")
    config = json.loads(Path("log/DFAD-mnist-my_student.config.json").read_text())
    assert config[state["run_id"]]["ckpt"] == "checkpoint/teacher/mnist-my_teacher.pt"


def test_own_teacher_that_does_not_match_its_class_is_one_line(mnist_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(own_pair_mnist.get_parser, own_pair_mnist.main,
                 [*TINY, "--ckpt", "checkpoint/teacher/mnist-lenet5.pt"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and "\n" not in err
    assert err.startswith("error: checkpoint checkpoint/teacher/mnist-lenet5.pt does not match "
                          "MyTeacher: missing keys ['net.1.weight'")
