"""The run scripts (run_mnist.sh, scripts/run_*.sh) end to end on tiny data, each with a flag that
only its teacher script accepts (TEACHER_ARGS) and one that only its DFAD script accepts
(DFAD_ARGS); for every run script, a flag for the wrong side fails at once in one line."""
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.caltech_fixtures import write_tiny_caltech
from tests.helpers.cifar_fixtures import write_tiny_cifar10
from tests.helpers.forked_runs import ForkedRunner
from tests.helpers.mnist_fixtures import write_tiny_mnist
from tests.helpers.segmentation_fixtures import write_tiny_camvid

REPO = Path(__file__).resolve().parents[1]
# Accepted by both scripts of every row; tiny everywhere.
SHARED = ["--device", "cpu", "--num_workers", "0", "--epochs", "1", "--batch_size", "4",
          "--test_batch_size", "50"]
OUTPUTS = {"checkpoint", "log", "data", "results", "runs", ".git", ".venv"}


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


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
WARM_PYTHON: str | None = None


@pytest.fixture(scope="module", autouse=True)
def warm_python(tmp_path_factory) -> Iterator[None]:
    """The scripts' PYTHON: every `$PYTHON script.py` forks one warm interpreter
    (tests/helpers/forked_runs.py) instead of importing torch again."""
    global WARM_PYTHON
    runner = ForkedRunner(ENV, tmp_path_factory.mktemp("warm"))
    WARM_PYTHON = runner.python()
    yield
    runner.close()
    WARM_PYTHON = None


def run_script(repo: Path, script: str, *args: str, python: str | None = None,
               **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / script), *args], cwd=repo, capture_output=True,
                          text=True, timeout=900,
                          env={**ENV, "PYTHON": python or WARM_PYTHON, **env})


def cifar_python(tmp_path: Path, data_root: Path) -> str:
    """An interpreter that registers the tiny CIFAR files' checksums
    (tests/helpers/run_with_tiny_cifar.py) before it runs a script."""
    wrapper = tmp_path / "python-tiny-cifar"
    wrapper.write_text(f'#!/bin/sh\nexec "{WARM_PYTHON}" '
                       f'"{REPO / "tests/helpers/run_with_tiny_cifar.py"}" "{data_root}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def assert_both_ran(result: subprocess.CompletedProcess, repo: Path, teacher: str) -> None:
    """The teacher wrote its checkpoint, DFAD read it and finished its epoch (its state file;
    a student that scores 0 on tiny data writes no best checkpoint)."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "===== Teacher =====" in result.stdout and "===== DFAD =====" in result.stdout
    assert result.stdout.count("\ndevice: cpu (") == 2  # each script says what it runs on
    assert (repo / "checkpoint/teacher" / f"{teacher}.pt").is_file()
    assert len(list((repo / "checkpoint/student").glob("*-state.pt"))) == 1


def test_run_mnist_under_torchrun_with_flags_for_each_side(repo):
    # Every class twice in the test set: an untrained teacher scores above 0, so it is saved.
    write_tiny_mnist(repo / "data", n_train=16, n_test=20)
    # --verbose: train_teacher.py only; --epoch_itrs: DFAD only. Two processes (gloo).
    result = run_script(repo, "run_mnist.sh", *SHARED, TEACHER_ARGS="--verbose --lr 0.01",
                        DFAD_ARGS="--epoch_itrs 1", NPROC="2")
    assert_both_ran(result, repo, "mnist-lenet5")
    assert "]\tLoss: " in result.stdout  # the teacher's --verbose lines
    assert "student weights identical on all 2 ranks" in result.stdout


# run_cifar100.sh and run_nyuv2.sh differ from run_cifar10.sh and run_camvid.sh only in their
# fixed flags, which the flag check below runs through the real parsers: their full runs would
# add a minute of CPU to the suite and nothing else.
def test_run_cifar10(repo, tmp_path):
    data = repo / "data"
    # Every class in the test set: an untrained teacher scores above 0, so it is saved.
    write_tiny_cifar10(data, n_train=4, n_test=10)
    result = run_script(repo, "scripts/run_cifar10.sh", *SHARED,
                        python=cifar_python(tmp_path, data), DATA_ROOT=str(data),
                        TEACHER_ARGS="--lr 0.01", DFAD_ARGS="--epoch_itrs 1")
    assert_both_ran(result, repo, "cifar10-resnet34_8x")


def test_run_caltech101(repo):
    write_tiny_caltech(repo / "data")
    split = subprocess.run([sys.executable, str(REPO / "data/split_caltech101.py"), "--root",
                            "data"], cwd=repo, capture_output=True, text=True)
    assert split.returncode == 0, split.stderr
    # --lr: train_teacher.py only (--pretrained is too, but needs the ImageNet weights).
    result = run_script(repo, "scripts/run_caltech101.sh", *SHARED, TEACHER_ARGS="--lr 0.01",
                        DFAD_ARGS="--epoch_itrs 1")
    assert_both_ran(result, repo, "caltech101-resnet34")


def test_run_camvid(repo):
    write_tiny_camvid(repo / "data/CamVid", n_train=2, n_test=1)
    # --no_pretrained: train_teacher_seg.py only (and no ImageNet download in a test).
    result = run_script(repo, "scripts/run_camvid.sh", *SHARED, "--batch_size", "2",
                        "--test_batch_size", "2", TEACHER_ARGS="--no_pretrained",
                        DFAD_ARGS="--epoch_itrs 1")
    assert_both_ran(result, repo, "camvid-deeplabv3_resnet50")


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


def test_nproc_must_be_a_number(repo):
    result = run_script(repo, "scripts/run_cifar10.sh", NPROC="four")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: NPROC=four")


def digests(folder: Path) -> dict[str, str]:
    import hashlib
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def test_run_mnist_again_reuses_continues_and_starts_over_only_when_asked(repo):
    """Run twice: nothing is retrained and nothing changes; with a larger --epochs both steps
    continue from their states; FRESH=1 moves the old files aside, FRESH=dfad keeps the
    teacher."""
    write_tiny_mnist(repo / "data", n_train=16, n_test=20)
    flags = [*SHARED, "--no_visdom"]
    first = run_script(repo, "run_mnist.sh", *flags, DFAD_ARGS="--epoch_itrs 1")
    assert_both_ran(first, repo, "mnist-lenet5")
    outputs = {name: digest for name, digest in digests(repo).items()
               if name.split("/")[0] in ("checkpoint", "log")}
    again = run_script(repo, "run_mnist.sh", *flags, DFAD_ARGS="--epoch_itrs 1")
    assert again.returncode == 0, again.stderr
    assert "teacher finished before: 1 of 1 epochs" in again.stdout
    assert "finished before: 1 of 1 epochs" in again.stdout.replace("teacher finished", "")
    assert {name: digest for name, digest in digests(repo).items() if name in outputs} == outputs
    assert set(outputs) <= set(digests(repo))
    longer = run_script(repo, "run_mnist.sh", *flags, "--epochs", "2",
                        DFAD_ARGS="--epoch_itrs 1")
    assert longer.returncode == 0, longer.stderr
    assert "resumed from checkpoint/teacher/mnist-lenet5-state.pt: 1 epochs done" in longer.stdout
    assert ("resumed from checkpoint/student/mnist-lenet5_half-state.pt: 1 epochs"
            in longer.stdout)
    rows = (repo / "log/DFAD-mnist.csv").read_text().splitlines()
    assert len(rows) == 1  # one run, trained longer: still one row
    teacher = digests(repo)["checkpoint/teacher/mnist-lenet5.pt"]
    dfad_only = run_script(repo, "run_mnist.sh", *flags, "--epochs", "2",
                           DFAD_ARGS="--epoch_itrs 1", FRESH="dfad")
    assert dfad_only.returncode == 0, dfad_only.stderr
    assert "moved aside: checkpoint/student/mnist-lenet5_half-state.pt -> " in dfad_only.stdout
    assert "teacher finished before: 2 of 2 epochs" in dfad_only.stdout
    assert digests(repo)["checkpoint/teacher/mnist-lenet5.pt"] == teacher
    assert len((repo / "log/DFAD-mnist.csv").read_text().splitlines()) == 2  # a new run
    fresh = run_script(repo, "run_mnist.sh", *flags, DFAD_ARGS="--epoch_itrs 1", FRESH="1")
    assert fresh.returncode == 0, fresh.stderr
    assert "===== Teacher =====" in fresh.stdout and "===== DFAD =====" in fresh.stdout
    old = sorted(p.name for p in (repo / "checkpoint/teacher").glob("*.old-*"))
    assert [name.split(".old-")[0] for name in old] == ["mnist-lenet5-state.pt",
                                                         "mnist-lenet5.pt"]
    assert len(list((repo / "checkpoint/student").glob("*-state.pt.old-*"))) == 2


def test_fresh_must_be_1_or_dfad(repo):
    result = run_script(repo, "run_mnist.sh", FRESH="yes")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: FRESH=yes")
