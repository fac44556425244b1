"""The row scripts (run_mnist.sh, scripts/run_*.sh, scripts/common.sh) as a user runs them, with
bash: the teacher then DFAD, each with its own flags; run again, a finished row trains nothing
and changes no file; FRESH=1 starts over with the old files moved aside; a flag for the wrong
script or a bad NPROC / FRESH is one line before anything starts."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from network.lenet import LeNet5, LeNet5Half
from tests.helpers.mnist_fixtures import write_tiny_mnist

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
OUTPUTS = {"checkpoint", "log", "data", "results", "runs"}
# Accepted by both scripts of the MNIST row; tiny.
SHARED = ["--device", "cpu", "--num_workers", "0", "--epochs", "1", "--batch_size", "4",
          "--test_batch_size", "20", "--no_visdom"]
TEACHER = "checkpoint/teacher/mnist-lenet5.pt"
STUDENT = "checkpoint/student/mnist-lenet5_half.pt"


@pytest.fixture
def repo(tmp_path) -> Path:
    """The repository as symlinks, so the scripts (which cd to the repository) write their
    checkpoints and logs into a temporary folder."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in OUTPUTS and not entry.name.startswith("."):
            (copy / entry.name).symlink_to(entry)
    return copy


def run_script(repo: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / script), *args], cwd=repo, capture_output=True,
                          text=True, timeout=900, env={**ENV, **env})


def digests(folder: Path) -> dict[str, str]:
    """Every checkpoint and log file (the lock files aside) by content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for top in ("checkpoint", "log") for p in sorted((folder / top).rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_run_mnist_trains_then_reruns_nothing_then_starts_over_when_asked(repo, tmp_path):
    # Every class twice in the test set: an untrained teacher scores above 0, so it is saved.
    write_tiny_mnist(tmp_path / "mnist", n_train=16, n_test=20)
    # --lr: train_teacher.py only; --epoch_itrs: DFAD_mnist.py only.
    row = {"DATA_ROOT": str(tmp_path / "mnist"), "TEACHER_ARGS": "--lr 0.02",
           "DFAD_ARGS": "--epoch_itrs 1"}
    first = ok(run_script(repo, "run_mnist.sh", *SHARED, **row))
    assert "===== Teacher =====" in first and "===== DFAD =====" in first
    assert first.count("\ndevice: cpu (") == 2  # each script says what it runs on
    state = torch.load(repo / "checkpoint/student/mnist-lenet5_half-state.pt", weights_only=True)
    assert state["epochs_done"] == 1 and state["config"]["epoch_itrs"] == 1
    assert state["config"]["ckpt"] == TEACHER and state["config"]["data_root"] == row["DATA_ROOT"]
    teacher = torch.load(repo / "checkpoint/teacher/mnist-lenet5-state.pt", weights_only=True)
    assert teacher["config"]["lr"] == 0.02 and teacher["epochs_done"] == 1
    files = digests(repo)
    assert TEACHER in files and STUDENT in files

    again = ok(run_script(repo, "run_mnist.sh", *SHARED, **row))
    assert "===== Teacher: continuing from checkpoint/teacher/mnist-lenet5-state.pt" in again
    assert "===== DFAD: continuing from checkpoint/student/mnist-lenet5_half-state.pt" in again
    assert again.count("finished before: 1 of 1 epochs") == 2
    assert "Train Epoch" not in again  # nothing trained
    assert digests(repo) == files  # nothing written: no row, no config, no checkpoint

    fresh = ok(run_script(repo, "run_mnist.sh", *SHARED, **row, FRESH="1"))
    assert "===== Teacher =====" in fresh and "===== DFAD =====" in fresh
    for path in (TEACHER, "checkpoint/teacher/mnist-lenet5-state.pt", STUDENT,
                 "checkpoint/student/mnist-lenet5_half-generator.pt",
                 "checkpoint/student/mnist-lenet5_half-state.pt"):
        assert f"moved aside: {path} -> {path}.old-" in fresh
        [old] = (repo / path).parent.glob(Path(path).name + ".old-*")
        assert hashlib.sha256(old.read_bytes()).hexdigest() == files[path]
        assert (repo / path).is_file()  # and trained again
    assert len((repo / "log/DFAD-mnist.csv").read_text().splitlines()) == 2  # two runs


@pytest.mark.slow
def test_a_best_student_without_its_state_is_moved_aside(repo, tmp_path):
    """A student checkpoint from elsewhere (no state file): the DFAD script would refuse to
    replace it, so the row moves it aside and trains; the teacher without a state is reused."""
    write_tiny_mnist(tmp_path / "mnist", n_train=16, n_test=20)
    for path in (TEACHER, STUDENT):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(LeNet5().state_dict(), repo / TEACHER)
    torch.save(LeNet5Half().state_dict(), repo / STUDENT)
    out = ok(run_script(repo, "run_mnist.sh", *SHARED, DATA_ROOT=str(tmp_path / "mnist"),
                        DFAD_ARGS="--epoch_itrs 1"))
    assert f"===== Teacher: reusing {TEACHER} (no state file beside it" in out
    assert f"moved aside: {STUDENT} -> {STUDENT}.old-" in out and "===== DFAD =====" in out
    assert (repo / "checkpoint/student/mnist-lenet5_half-state.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("script", "flag", "refuser"), [
    ("run_mnist.sh", "--epoch_itrs", "train_teacher.py"),
    ("scripts/run_caltech101.sh", "--pretrained", "DFAD_caltech101.py"),
    ("scripts/run_camvid.sh", "--no_pretrained", "DFAD_camvid_deeplab.py"),
    ("scripts/run_cifar10.sh", "--verbose", "DFAD_cifar.py"),
    ("scripts/run_cifar100.sh", "--epoch_itrs", "train_teacher.py"),
    ("scripts/run_nyuv2.sh", "--gamma", "DFAD_nyu_deeplab.py")])
def test_a_flag_for_one_side_only_fails_at_once_in_one_line(repo, script, flag, refuser):
    args = [flag, "0.1"] if flag == "--gamma" else [flag]
    result = run_script(repo, script, *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {refuser}: ") and flag in result.stderr
    assert "TEACHER_ARGS or DFAD_ARGS" in result.stderr
    assert "=====" not in result.stdout and not (repo / "checkpoint").exists()


@pytest.mark.parametrize(("env", "message"), [
    ({"NPROC": "four"}, "error: NPROC=four is not a number of processes"),
    ({"NPROC": "0"}, "error: NPROC=0 is not a number of processes"),
    ({"FRESH": "yes"}, "error: FRESH=yes: use FRESH=1")])
def test_bad_nproc_or_fresh_is_one_line(repo, env, message):
    result = run_script(repo, "scripts/run_cifar10.sh", **env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(message) and not (repo / "checkpoint").exists()
