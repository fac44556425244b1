"""End to end as a user runs them: train_teacher.py, DFAD_mnist.py on a tiny real-format MNIST."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import DFAD_caltech101
import DFAD_cifar
import DFAD_mnist
from engine.flags import COMPAT_TITLE
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.cli import int_at_least
from tables.csv_rows import read_csv_runs
from tests.helpers.mnist_fixtures import write_tiny_mnist

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0"]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A tiny MNIST and a teacher trained on it for one epoch (shared by the tests below)."""
    work = tmp_path_factory.mktemp("mnist_run")
    write_tiny_mnist(work / "data", n_train=32, n_test=16)
    result = run("train_teacher.py", "--dataset", "mnist", "--model", "lenet5", "--epochs", "1",
                 "--batch_size", "8", "--test_batch_size", "8", "--lr", "0.01",
                 "--data_root", "data", *FAST, cwd=work)
    assert result.returncode == 0, result.stderr
    return work


def test_teacher_checkpoint_is_a_plain_state_dict(workdir):
    state = torch.load(workdir / "checkpoint/teacher/mnist-lenet5.pt", weights_only=True)
    LeNet5().load_state_dict(state, strict=True)
    assert (workdir / "log/teacher-mnist-lenet5.config.json").is_file()


def test_dfad_mnist_writes_original_files(workdir):
    result = run("DFAD_mnist.py", "--epochs", "1", "--epoch_itrs", "2", "--batch_size", "4",
                 "--test_batch_size", "8", "--data_root", "data", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Best acc=" in result.stdout
    rows = [run.values for run in read_csv_runs(workdir / "log/DFAD-mnist.csv")]
    assert len(rows[-1]) == 1 and 0.0 <= float(rows[-1][0]) <= 1.0
    if float(rows[-1][0]) > 0:  # the original saves only on a strict improvement over 0
        student = torch.load(workdir / "checkpoint/student/mnist-lenet5_half.pt",
                             weights_only=True)
        LeNet5Half().load_state_dict(student, strict=True)
        generator = torch.load(workdir / "checkpoint/student/mnist-lenet5_half-generator.pt",
                               weights_only=True)
        GeneratorA(nz=100, nc=1, img_size=32).load_state_dict(generator, strict=True)


def test_missing_teacher_checkpoint_is_one_clear_line(workdir):
    result = run("DFAD_mnist.py", "--ckpt", "checkpoint/teacher/nope.pt", "--epochs", "1",
                 "--data_root", "data", *FAST, cwd=workdir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "teacher checkpoint not found: checkpoint/teacher/nope.pt" in lines[0]
    assert "Traceback" not in result.stderr


def test_checkpoint_of_another_architecture_is_one_clear_line(workdir):
    torch.save(LeNet5Half().state_dict(), workdir / "half.pt")
    result = run("DFAD_mnist.py", "--ckpt", "half.pt", "--epochs", "1", "--data_root", "data",
                 *FAST, cwd=workdir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "does not match LeNet5" in lines[0]
    assert "conv1.weight: checkpoint [3, 1, 5, 5] vs model [6, 1, 5, 5]" in lines[0]


def test_missing_dataset_is_one_clear_line(tmp_path):
    torch.save(LeNet5().state_dict(), tmp_path / "teacher.pt")
    result = run("DFAD_mnist.py", "--ckpt", "teacher.pt", "--data_root", "nowhere", *FAST,
                 cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "MNIST not found in nowhere/MNIST/raw" in lines[0] and "--download" in lines[0]


def test_bad_flag_value_is_rejected_by_argparse(tmp_path):
    result = run("DFAD_mnist.py", "--batch_size", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "--batch_size: must be >= 2" in result.stderr


def test_help_lists_the_original_flags():
    result = run("DFAD_mnist.py", "--help", cwd=REPO)
    for flag in ("--lr_S", "--lr_G", "--epoch_itrs", "--nz", "--scheduler", "--log-interval",
                 "--test-only", "--no-cuda", "--device", "--stu_ckpt"):
        assert flag in result.stdout


def compat_group_flags(parser) -> set[str]:
    """The flags listed under the compatibility-only heading of a script's --help."""
    groups = [g for g in parser._action_groups if g.title == COMPAT_TITLE]
    assert len(groups) == 1
    return {a.option_strings[0] for a in groups[0]._group_actions}


def test_compatibility_only_flags_are_grouped_as_such_in_help():
    result = run("DFAD_mnist.py", "--help", cwd=REPO)
    heading = result.stdout.index(COMPAT_TITLE + ":")
    assert "--momentum" in result.stdout[heading:] and "--verbose" in result.stdout[heading:]
    assert compat_group_flags(DFAD_mnist.get_parser()) == {"--momentum", "--verbose"}
    # CIFAR's --scheduler has fixed milestones: its --step_size is compatibility only, the StepLR
    # rows' is not.
    assert compat_group_flags(DFAD_cifar.get_parser()) == {"--momentum", "--step_size"}
    assert compat_group_flags(DFAD_caltech101.get_parser()) == {"--momentum"}


@pytest.mark.parametrize(("minimum", "text", "ok"), [
    (0, "0", True), (1, "0", False), (1, "1", True), (2, "1", False), (2, "2", True),
    (1, "x", False)])
def test_int_at_least(minimum, text, ok):
    parse = int_at_least(minimum)
    if ok:
        assert parse(text) == int(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
