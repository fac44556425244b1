"""The worked examples of docs/extending.md, run as a user runs them: each is one file outside
the engine, and its run keeps its own files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import DFAD_cifar
import DFAD_mnist
from examples import bn_statistics_cifar, own_pair_mnist
from network.resnet_8x import ResNet34_8x
from runtime.cli import run_main
from tests.helpers.cifar_fixtures import cifar_checksums_for, write_tiny_cifar10
from tests.helpers.local import snapshot
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

TINY = ["--epochs", "2", "--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4",
        "--num_workers", "0", "--no_visdom", "--data_root", "data"]


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


@pytest.mark.slow  # ResNet-34/18 at 32 px, three runs of one iteration
def test_bn_statistics_term_reaches_the_log_and_changes_the_generator(tmp_path, monkeypatch):
    """Example 1: a generator term reading the teacher's BatchNorm inputs through hooks; its
    new flag is recorded in each run's row."""
    monkeypatch.chdir(tmp_path)
    write_tiny_cifar10("data")
    Path("checkpoint/teacher").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(ResNet34_8x(10).state_dict(), "checkpoint/teacher/cifar10-resnet34_8x.pt")
    tiny = [*TINY, "--epochs", "1", "--nz", "8"]
    generators = {}
    with cifar_checksums_for("data"):
        DFAD_cifar.main(DFAD_cifar.get_parser().parse_args(tiny))
        plain = snapshot(tmp_path)
        for weight in ("0", "1"):
            bn_statistics_cifar.main(bn_statistics_cifar.get_parser().parse_args(
                [*tiny, "--bn_weight", weight]))
            for path in Path("checkpoint/student").glob("cifar10-resnet18_8x-bn*.pt"):
                if path.name.endswith("-state.pt"):
                    generators[weight] = torch.load(path, weights_only=True)["generator"]
                path.rename(f"{path.name}.run-{weight}")  # moved aside: the next run is new
    after = snapshot(tmp_path)
    assert {k: after[k] for k in plain} == plain  # the plain CIFAR run is untouched
    line = json.loads(Path("log/DFAD-cifar10-bn.metrics.jsonl").read_text().splitlines()[-1])
    assert line["G_bn"] > 0
    assert any(not torch.equal(generators["0"][k], generators["1"][k]) for k in generators["0"])
    rows = Path("log/DFAD-cifar10-bn.csv").read_text().splitlines()
    assert ['"bn_weight"": 0.0' in rows[0], '"bn_weight"": 1.0' in rows[1]] == [True, True]
