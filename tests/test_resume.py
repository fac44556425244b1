"""Runs that survive: kill and resume (bit-identical on CPU), graceful SIGTERM, NaN, bad input."""
import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import DFAD_cifar
from engine.dfad import Recipe, distill, generator_loss_mae
from engine.evaluation import evaluate_classification
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.errors import UserError
from runtime.precision import Precision
from runtime.run_state import NonFiniteLoss, RunState, load_state, state_of
from tables.csv_rows import read_csv_runs
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.script_args import dfad_args
from tests.helpers.waiting import wait_for_file

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FAST = ["--device", "cpu", "--num_workers", "0", "--data_root", "data", "--no_visdom"]
DFAD = ["DFAD_mnist.py", "--epochs", "4", "--epoch_itrs", "3", "--batch_size", "16",
        "--test_batch_size", "16", "--scheduler", "--step_size", "2", *FAST]
TEACHER = ["train_teacher.py", "--epochs", "3", "--batch_size", "8", "--test_batch_size", "16",
           "--scheduler", "--step_size", "2", *FAST]
STUDENT_STATE = "checkpoint/student/mnist-lenet5_half-state.pt"
TEACHER_STATE = "checkpoint/teacher/mnist-lenet5-state.pt"


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / args[0]), *args[1:]], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def interrupt_after_first_epoch(args: list[str], cwd: Path, state: str,
                                signum: int) -> subprocess.CompletedProcess:
    """Start a run, send `signum` as soon as its first resumable state exists."""
    proc = subprocess.Popen([sys.executable, str(REPO / args[0]), *args[1:]], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_file(cwd / state, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def csv_rows(path: Path) -> list[tuple[list[float], dict]]:
    """Each run's metric list and flags (its run id is its own)."""
    return [(run.values, run.flags) for run in read_csv_runs(path)]


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Tiny MNIST plus a teacher, copied into every run folder."""
    root = tmp_path_factory.mktemp("resume_base")
    write_tiny_mnist(root / "data", n_train=400, n_test=16)
    write_random_teacher(root)
    return root


@pytest.fixture(scope="module")
def uninterrupted(base, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("straight")
    shutil.copytree(base, work, dirs_exist_ok=True)
    result = python(DFAD, work)
    assert result.returncode == 0, result.stderr
    return work


def test_sigkill_then_resume_is_bit_identical(base, uninterrupted, tmp_path):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    killed = interrupt_after_first_epoch(DFAD, tmp_path, STUDENT_STATE, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "log/DFAD-mnist.csv").exists()  # the run really did not finish
    resumed = python([*DFAD, "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoint/student/mnist-lenet5_half-state.pt" in resumed.stdout
    assert csv_rows(tmp_path / "log/DFAD-mnist.csv") == csv_rows(
        uninterrupted / "log/DFAD-mnist.csv")
    ours = torch.load(tmp_path / STUDENT_STATE, weights_only=True)
    theirs = torch.load(uninterrupted / STUDENT_STATE, weights_only=True)
    assert_same_tensors(ours["student"], theirs["student"])
    assert_same_tensors(ours["generator"], theirs["generator"])
    # One run, one id: in its CSV row and on every line of its metrics file, resumed or not.
    (row,) = read_csv_runs(tmp_path / "log/DFAD-mnist.csv")
    lines = (tmp_path / "log/DFAD-mnist.metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 4 and {json.loads(line)["run_id"] for line in lines} == {row.run_id}


def test_sigterm_saves_state_and_prints_the_resume_command(base, uninterrupted, tmp_path):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    stopped = interrupt_after_first_epoch(DFAD, tmp_path, STUDENT_STATE, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr
    command = stopped.stderr.strip().splitlines()[-1].strip()
    assert command.endswith(f"--resume {STUDENT_STATE}")
    argv = shlex.split(command)
    assert argv[:2] == [sys.executable, str(REPO / "DFAD_mnist.py")]  # works as printed
    resumed = subprocess.run(argv, cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert csv_rows(tmp_path / "log/DFAD-mnist.csv") == csv_rows(
        uninterrupted / "log/DFAD-mnist.csv")
    ours = torch.load(tmp_path / STUDENT_STATE, weights_only=True)
    theirs = torch.load(uninterrupted / STUDENT_STATE, weights_only=True)
    assert_same_tensors(ours["student"], theirs["student"])


def test_teacher_sigkill_then_resume_is_bit_identical(base, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for work in (straight, killed):
        shutil.copytree(base / "data", work / "data")
    assert python(TEACHER, straight).returncode == 0
    stopped = interrupt_after_first_epoch(TEACHER, killed, TEACHER_STATE, signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    resumed = python([*TEACHER, "--resume"], killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    for name in ("mnist-lenet5.pt", "mnist-lenet5-state.pt"):
        ours = torch.load(killed / "checkpoint/teacher" / name, weights_only=True)
        theirs = torch.load(straight / "checkpoint/teacher" / name, weights_only=True)
        assert_same_tensors(ours.get("model", ours), theirs.get("model", theirs))


def test_save_every_writes_every_nth_epoch_and_resumes_exactly(base, uninterrupted, tmp_path):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    every_2nd = [*DFAD, "--save_every", "2"]
    killed = interrupt_after_first_epoch(every_2nd, tmp_path, STUDENT_STATE, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    # The first state written is epoch 2's: epoch 1's never was.
    assert torch.load(tmp_path / STUDENT_STATE, weights_only=True)["epochs_done"] == 2
    resumed = python([*every_2nd, "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 epochs and 0 iterations done" in resumed.stdout
    assert csv_rows(tmp_path / "log/DFAD-mnist.csv") == csv_rows(
        uninterrupted / "log/DFAD-mnist.csv")
    # The last epoch's state is always written (a later --epochs can continue it).
    assert torch.load(tmp_path / STUDENT_STATE, weights_only=True)["epochs_done"] == 4


def test_teacher_writes_its_unsaved_state_on_sigterm(base, tmp_path):
    """With --save_every beyond the run, only a stop writes the state: the last complete
    epoch's, from which the run resumes."""
    shutil.copytree(base / "data", tmp_path / "data")
    teacher = [*TEACHER, "--epochs", "100", "--save_every", "1000"]
    proc = subprocess.Popen([sys.executable, str(REPO / teacher[0]), *teacher[1:]],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("Epoch 1 test:"):
            break
    assert not (tmp_path / TEACHER_STATE).exists()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err
    state = torch.load(tmp_path / TEACHER_STATE, weights_only=True)
    done = state["epochs_done"]
    assert f"holds the state after epoch {done};" in err and done >= 1
    resumed = python([*TEACHER, "--epochs", str(done + 1), "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {TEACHER_STATE}: {done} epochs done" in resumed.stdout


def test_resume_with_other_flags_is_refused(uninterrupted):
    result = python([*DFAD, "--resume", "--batch_size", "32"], uninterrupted)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {STUDENT_STATE} belongs to a run with other flags (--batch_size 16 -> 32): "
        "resume with the run's own flags"]


def test_resume_with_another_amp_is_refused_in_one_line(uninterrupted):
    result = python([*DFAD, "--resume", "--amp", "fp16"], uninterrupted)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {STUDENT_STATE} belongs to a run with other flags (--amp off -> fp16): "
        "resume with the run's own flags"]


def test_compatibility_only_flags_do_not_block_a_resume(uninterrupted, tmp_path):
    shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
    result = python([*DFAD, "--resume", "--momentum", "0.5", "--verbose"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "finished before: 4 of 4 epochs" in result.stdout  # accepted; nothing left to do


def tiny_distill(args: argparse.Namespace, recipe: Recipe) -> list[float]:
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(4, 1, 32, 32), torch.arange(4)), batch_size=4)
    return distill(args, LeNet5().eval().requires_grad_(False), LeNet5Half(),
                   GeneratorA(nz=8, nc=1), loader, recipe, torch.device("cpu"))


def test_cifar_step_size_is_compatibility_only_elsewhere_it_is_fixed(tmp_path, monkeypatch):
    """DFAD_cifar's --scheduler has fixed milestones: its --step_size may change on resume; the
    other rows' StepLR period may not."""
    monkeypatch.chdir(tmp_path)
    args = dfad_args(epoch_itrs=1, batch_size=4, nz=8, log_interval=1, lr_S=0.1, lr_G=1e-3,
                     weight_decay=5e-4, scheduler=True, epochs=1, step_size=100)
    cifar = DFAD_cifar.make_recipe("cifar10")
    tiny_distill(args, cifar)
    resumed = dfad_args(epoch_itrs=1, batch_size=4, nz=8, log_interval=1, lr_S=0.1, lr_G=1e-3,
                        weight_decay=5e-4, scheduler=True, epochs=2, step_size=7, resume="")
    step_lr = Recipe(name="steplr", student_ckpt=cifar.student_ckpt,
                     generator_loss=generator_loss_mae, evaluate=evaluate_classification,
                     metric="acc", make_scheduler=cifar.make_scheduler)
    with pytest.raises(UserError, match=r"--step_size 100 -> 7"):
        tiny_distill(resumed, step_lr)
    assert len(tiny_distill(resumed, cifar)) == 2


def test_resume_without_state_is_one_clear_line(base, tmp_path):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    result = python([*DFAD, "--resume"], tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"no resumable state at {STUDENT_STATE}" in result.stderr


def test_unwritable_output_folder(base, tmp_path):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    (tmp_path / "log").write_text("a file where the log folder should be")
    result = python(DFAD, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write to the output folder log/")


@pytest.mark.parametrize("flag, value, message", [
    ("--epochs", "0", "--epochs: must be >= 1"),
    ("--batch_size", "1", "--batch_size: must be >= 2"),
    ("--dataset", "imagenet", "--dataset: invalid choice: 'imagenet'"),
    ("--lr_S", "-1", "--lr_S: must be > 0"),
])
def test_flags_out_of_range_fail_in_argparse(flag, value, message, tmp_path):
    result = python(["DFAD_mnist.py", flag, value], tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "log").exists()  # nothing ran


def test_non_finite_loss_stops_and_keeps_the_last_good_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    calls = {"n": 0}

    def loss_that_explodes(s, t):
        calls["n"] += 1
        loss = generator_loss_mae(s, t)
        return loss * float("nan") if calls["n"] > 3 else loss  # epoch 2, iteration 2

    recipe = Recipe(name="nan", student_ckpt="checkpoint/student/nan.pt",
                    generator_loss=loss_that_explodes, evaluate=evaluate_classification,
                    metric="acc")
    args = dfad_args(epoch_itrs=2, batch_size=8, nz=100, log_interval=1, lr_S=0.01, lr_G=1e-3,
                     weight_decay=1e-4, epochs=3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(8, 1, 32, 32), torch.arange(8)), batch_size=8)
    with pytest.raises(NonFiniteLoss, match=r"generator loss at epoch 2, iteration 2 is nan.*"
                                            r"checkpoint/student/nan-state.pt"):
        distill(args, LeNet5().eval().requires_grad_(False), LeNet5Half(),
                GeneratorA(nz=100, nc=1), loader, recipe, torch.device("cpu"))
    state = load_state("checkpoint/student/nan-state.pt", args)
    assert state["epochs_done"] == 1 and state["iterations_done"] == 0
    LeNet5Half().load_state_dict(state["student"])
    assert all(torch.isfinite(v).all() for v in state["student"].values())


def test_run_state_resumes_a_teacher_state_file_of_the_older_format(tmp_path):
    """Teacher state files from before RunState hold no iterations, history, run id or
    precision: they still resume, with those at their start values."""
    args = dfad_args(resume=str(tmp_path / "old-state.pt"))
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    old = state_of(args, model=model, optimizer=optimizer, schedulers=[], epochs_done=3,
                   best=0.5)
    torch.save(old, tmp_path / "old-state.pt")
    fresh = nn.Linear(2, 2)
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    state = RunState(str(tmp_path / "own-state.pt"), args,
                     {"model": fresh, "optimizer": fresh_optimizer,
                      "precision": Precision(None, torch.device("cpu"))}, [])
    run_id = state.run_id
    assert state.resume() == str(tmp_path / "old-state.pt")
    assert (state.epochs_done, state.iterations_done, state.best, state.history,
            state.run_id) == (3, 0, 0.5, [], run_id)
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_optimizer.state_dict()["state"][0]["momentum_buffer"],
                       optimizer.state_dict()["state"][0]["momentum_buffer"])
    del old["optimizer"]  # only the objects of later versions may be missing
    torch.save(old, tmp_path / "old-state.pt")
    with pytest.raises(UserError, match="old-state.pt holds no optimizer: it is "):
        state.resume()
