"""Every torchrun test, on the CPU (gloo): 2 processes compute what 1 does (segmentation
generator loss, the logged losses), ranks agree on a stop only at log points and stop at the same
step, --download is done by local rank 0 alone, a stopped DFAD run or teacher resumes with the
printed torchrun command as if never stopped; the entry scripts under torchrun (one CSV row,
one evaluation, clear errors); every rank keeps rank 0's stream across evaluations, draws its
own dropout masks, and stops with the same line on a NaN of one rank; the resume hint and the
saved GPU RNG state."""
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from network.lenet import LeNet5
from runtime.run_state import capture_rng, restore_rng, resume_command, saved_cuda_rng
from tables.csv_rows import read_csv_runs
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.waiting import wait_for_file, wait_until

REPO = Path(__file__).resolve().parents[1]
CHECKS = REPO / "tests" / "helpers" / "torchrun_checks.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
RECORD = str(REPO / "tests" / "helpers" / "record_latents.py")
SCRIPT = str(REPO / "DFAD_mnist.py")
FLAGS = ["--epochs", "3", "--epoch_itrs", "3", "--batch_size", "16", "--test_batch_size", "16",
         "--log_interval", "2", "--device", "cpu", "--num_workers", "0", "--data_root", "data",
         "--no_visdom"]
STATE = "checkpoint/student/mnist-lenet5_half-state.pt"


def run_checks(out: Path, launcher: tuple[str, ...] = ()) -> list[dict]:
    out.mkdir()
    result = subprocess.run([sys.executable, *launcher, str(CHECKS), str(out)], env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    n = 2 if launcher else 1
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(n)]


@pytest.fixture(scope="module")
def one(tmp_path_factory) -> dict:
    (rank0,) = run_checks(tmp_path_factory.mktemp("checks") / "one")
    assert rank0["world_size"] == 1
    return rank0


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> list[dict]:
    ranks = run_checks(tmp_path_factory.mktemp("checks") / "two", TORCHRUN)
    assert [r["world_size"] for r in ranks] == [2, 2]
    return ranks


def test_segmentation_generator_loss_and_gradient_are_the_global_batchs(one, two):
    for rank in two:
        assert rank["generator"].keys() == one["generator"].keys()
        for name, value in one["generator"].items():
            torch.testing.assert_close(rank["generator"][name], value, rtol=1e-5, atol=1e-7,
                                       msg=name)


def test_logged_losses_are_the_global_batchs(one, two):
    for rank in two:
        for name in ("loss_S", "loss_G"):
            assert rank["training"][name] == pytest.approx(one["training"][name], rel=1e-5)


def test_ranks_compare_stop_flags_only_at_log_points(one, two):
    # 4 iterations, --log_interval 2: iterations 2 and 4; a single process has no one to ask.
    assert [r["training"]["stop_checks"] for r in two] == [2, 2]
    assert one["training"]["stop_checks"] == 0
    assert one["training"]["done"] == 4 and [r["training"]["done"] for r in two] == [4, 4]
    # The teachers' loop too: 4 batches per rank.
    assert [r["teacher_stop_checks"] for r in two] == [2, 2]
    assert one["teacher_stop_checks"] == 0


def test_a_signal_on_one_rank_stops_every_rank_at_the_same_log_point(one, two):
    assert one["stopped_after"] == 1  # alone: right after the step that saw the signal
    assert [r["stopped_after"] for r in two] == [4, 4]  # --log_interval 4


def test_download_is_done_by_local_rank_0_while_the_others_wait(one, two):
    for result in (one, *two):
        assert result["download"] == {"train": 8, "test": 4, "downloaded_by": [0]}


def sigterm_and_resume_hint(proc: subprocess.Popen) -> str:
    """SIGTERM to torchrun; the run stops, and rank 0 alone says so and prints the resume
    command, once."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode != 0
    hints = [line.strip() for line in err.splitlines()
             if line.strip().startswith(f"{sys.executable} -m torch.distributed.run ")]
    assert len(hints) == 1, err[-3000:]
    assert err.count("SIGTERM received: stopping") == 1, err[-3000:]
    return hints[0]


def test_sigterm_under_torchrun_then_resume_every_rank_draws_the_single_process_stream(
        tmp_path):
    """2 CPU processes (gloo), stopped by SIGTERM to torchrun and resumed with the printed
    torchrun command: each rank's latents, before and after the stop, are one uninterrupted
    single process's."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for work in (straight, stopped):
        write_tiny_mnist(work / "data", n_train=16, n_test=16)
        write_random_teacher(work)
    one = subprocess.run([sys.executable, RECORD, str(straight), SCRIPT, *FLAGS], cwd=straight,
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    proc = subprocess.Popen([sys.executable, *TORCHRUN, RECORD, str(stopped), SCRIPT, *FLAGS],
                            cwd=stopped, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Signal once rank 1 has begun epoch 2 (18 latent batches per epoch): it stops at a log
    # point in epoch 2 or after it, wherever the signal lands.
    rank1, batch_bytes = stopped / "latents-rank1.bin", 16 * 100 * 4
    wait_until(lambda: rank1.exists() and rank1.stat().st_size > 18 * batch_bytes, proc, 240,
               f"{rank1} holds more than 18 batches")
    argv = shlex.split(sigterm_and_resume_hint(proc))
    assert argv[:7] == [sys.executable, *TORCHRUN, SCRIPT]
    assert argv[-2:] == ["--resume", STATE]
    resumed = subprocess.run([*argv[:6], RECORD, str(stopped), *argv[6:]], cwd=stopped, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "student weights identical on all 2 ranks" in resumed.stdout
    expected = (straight / "latents-rank0.bin").read_bytes()
    assert len(expected) == 3 * 3 * 6 * batch_bytes  # epochs x iterations x draws
    for rank in (0, 1):
        assert (stopped / f"latents-rank{rank}.bin").read_bytes() == expected, f"rank {rank}"


def test_sigterm_under_torchrun_then_resume_of_a_teacher_equals_an_uninterrupted_one(tmp_path):
    """A 2-process teacher stopped by SIGTERM to torchrun drops its partial epoch; resumed with
    the printed command, every rank continues the stream it had (rank 0 evaluates alone between
    epochs), so the weights equal those of a run never stopped."""
    teacher = [str(REPO / "train_teacher.py"), "--dataset", "mnist", "--model", "lenet5",
               "--epochs", "8", "--batch_size", "8", "--test_batch_size", "16",
               "--log_interval", "2", "--device", "cpu", "--num_workers", "0",
               "--data_root", "data", "--no_visdom"]
    state = "checkpoint/teacher/mnist-lenet5-state.pt"
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for work in (straight, stopped):
        write_tiny_mnist(work / "data", n_train=64, n_test=16)
    done = subprocess.run([sys.executable, *TORCHRUN, *teacher], cwd=straight, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    proc = subprocess.Popen([sys.executable, *TORCHRUN, *teacher], cwd=stopped, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_file(stopped / state, proc)  # epoch 1 is done and saved
    resumed = subprocess.run(shlex.split(sigterm_and_resume_hint(proc)), cwd=stopped, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    ours = torch.load(stopped / state, weights_only=True)
    theirs = torch.load(straight / state, weights_only=True)
    assert ours["epochs_done"] == theirs["epochs_done"] == 8
    assert ours["model"].keys() == theirs["model"].keys()
    for name, value in theirs["model"].items():
        assert torch.equal(ours["model"][name], value), name


def test_resume_hint_without_torchrun_is_this_interpreter_and_the_scripts_path(tmp_path):
    script = tmp_path / "DFAD_mnist.py"
    script.touch()
    assert shlex.split(resume_command("s.pt", [str(script), "--resume", "old.pt"], env={})) == [
        sys.executable, str(script), "--resume", "s.pt"]


def test_resume_hint_under_torchrun_on_one_node(monkeypatch):
    monkeypatch.chdir(REPO)  # the script by a relative path: the hint names it absolutely
    env = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4", "GROUP_WORLD_SIZE": "1"}
    assert shlex.split(resume_command("s.pt", ["DFAD_cifar.py", "--scheduler"], env=env)) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
        str(REPO / "DFAD_cifar.py"), "--scheduler", "--resume", "s.pt"]


def test_resume_hint_under_torchrun_on_several_nodes(monkeypatch):
    monkeypatch.chdir(REPO)
    env = {"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "GROUP_WORLD_SIZE": "2"}
    command = resume_command("s.pt", ["DFAD_cifar.py"], env=env)
    assert shlex.split(command, comments=True) == [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "8",
        "--rdzv_backend", "c10d",
        "--rdzv_endpoint", "HOST:PORT", str(REPO / "DFAD_cifar.py"), "--resume", "s.pt"]
    assert command.endswith("# on every node; HOST:PORT: the run's --rdzv_endpoint")


def test_old_state_files_with_every_gpus_rng_give_cuda0s():
    states = [torch.full((8,), i, dtype=torch.uint8) for i in range(3)]
    assert torch.equal(saved_cuda_rng(states), states[0])  # rank 0 drew from cuda:0
    assert saved_cuda_rng([]) is None and saved_cuda_rng(None) is None
    assert saved_cuda_rng(states[2]) is states[2]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_round_trip_on_the_current_device_and_from_an_old_file():
    saved = capture_rng()
    assert isinstance(saved["cuda"], torch.Tensor)
    first = torch.randn(4, device="cuda")
    restore_rng(saved)
    assert torch.equal(torch.randn(4, device="cuda"), first)
    # An old file: one state per GPU of the machine that saved it, more than this one has.
    restore_rng({**saved, "cuda": [saved["cuda"]] * (torch.cuda.device_count() + 2)})
    assert torch.equal(torch.randn(4, device="cuda"), first)


# --- The entry scripts under torchrun (2 CPU processes) ---

def dfad(mnist_workdir: Path, *flags: str) -> subprocess.CompletedProcess:
    """DFAD_mnist.py for 2 epochs of 2 iterations, in 2 processes."""
    return subprocess.run([sys.executable, *TORCHRUN, SCRIPT, "--data_root", "data",
                           "--epochs", "2", "--epoch_itrs", "2", "--batch_size", "8",
                           "--device", "cpu", "--num_workers", "0", "--no_visdom", *flags],
                          cwd=mnist_workdir, env=ENV, capture_output=True, text=True, timeout=600)


def test_torchrun_two_cpu_processes(mnist_workdir):
    csv_path = mnist_workdir / "log/DFAD-mnist.csv"
    rows_before = len(csv_path.read_text().splitlines()) if csv_path.exists() else 0
    result = dfad(mnist_workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "student weights identical on all 2 ranks" in result.stdout
    # Rank 0 alone evaluates and writes: one log line per epoch, one CSV row.
    assert result.stdout.count("Epoch 2 test:") == 1
    rows = read_csv_runs(csv_path)
    assert len(rows) == rows_before + 1 and len(rows[-1].values) == 2
    assert rows[-1].flags["processes"] == 2
    state = torch.load(mnist_workdir / "checkpoint/student/mnist-lenet5_half-state.pt",
                       weights_only=True)
    assert state["epochs_done"] == 2


def test_teacher_under_torchrun_two_cpu_processes(mnist_workdir, tmp_path):
    shutil.copytree(mnist_workdir / "data", tmp_path / "data")
    result = subprocess.run([sys.executable, *TORCHRUN, str(REPO / "train_teacher.py"),
                             "--dataset", "mnist", "--model", "lenet5", "--epochs", "2",
                             "--batch_size", "8", "--data_root", "data", "--device", "cpu",
                             "--num_workers", "0", "--no_visdom"], cwd=tmp_path,
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Epoch 2 test:") == 1  # rank 0 alone evaluates and prints
    state = torch.load(tmp_path / "checkpoint/teacher/mnist-lenet5-state.pt", weights_only=True)
    assert state["epochs_done"] == 2
    LeNet5().load_state_dict(torch.load(tmp_path / "checkpoint/teacher/mnist-lenet5.pt",
                                        weights_only=True), strict=True)


def test_batch_that_does_not_split_over_the_ranks_is_one_clear_error(mnist_workdir):
    result = dfad(mnist_workdir, "--batch_size", "9")
    assert result.returncode != 0
    assert "error: --batch_size 9 does not split evenly over 2 processes" in result.stderr


# --- Every rank's stream stays rank 0's; a NaN on one rank stops them all ---

def rank_checks(check: str, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """tests/helpers/rank_checks.py's `check` in 2 CPU processes, writing cwd/rank<R>.pt."""
    return subprocess.run([sys.executable, *TORCHRUN, str(REPO / "tests/helpers/rank_checks.py"),
                           check, str(cwd), *argv], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("numerics", [(), ("--original_numerics",)], ids=["default", "original"])
def test_teacher_ranks_keep_one_stream_across_rank_0s_evaluations(numerics, tmp_path):
    """Only rank 0 evaluates, and its test loader draws seeds: by default inside a fork, under
    --original_numerics on every rank. Either way the ranks' RNG states agree at every training
    batch of every epoch, so augmentations and dropout draw alike and a resume, which gives
    every rank rank 0's saved stream, continues what each rank had."""
    write_tiny_mnist(tmp_path / "data", n_train=32, n_test=8)
    result = rank_checks("streams", tmp_path, "data", "--epochs", "3",
                      "--batch_size", "8", "--test_batch_size", "4", *numerics)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["digests"] for r in (0, 1)]
    # LeNet5 draws nothing while training: one state per epoch, moved by the epoch's seed draws.
    assert len(ranks[0]) == 3 * 4 and len(set(ranks[0])) == 3
    assert ranks[0] == ranks[1]


def test_a_nan_on_one_rank_stops_every_rank_with_the_same_line(tmp_path):
    """The ranks agree on finiteness at the log point: no rank is left waiting in the next
    collective for one that has already raised."""
    result = rank_checks("nan", tmp_path, "-")
    assert result.returncode == 0, result.stderr[-3000:]
    errors = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["error"] for r in (0, 1)]
    assert errors[0] == errors[1]
    assert errors[0].startswith("generator loss at epoch 1, iteration 3 is not finite on rank 1: "
                                "stopping;"), errors[0]


def test_dropout_under_ddp_draws_its_own_masks_on_each_rank_the_latents_together(tmp_path):
    """A dropout student in 2 processes: each rank's slice gets its own masks, while the run's
    stream (the global latent batches every rank draws and slices) stays the same on both
    ranks; DDP keeps the weights equal."""
    result = rank_checks("dropout", tmp_path, "-")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["masks"] == ranks[1]["masks"] == 3 * 6  # 5 student + 1 generator steps
    assert not torch.equal(ranks[0]["mask"], ranks[1]["mask"])
    assert ranks[0]["rng"] == ranks[1]["rng"]
    for a, b in zip(ranks[0]["student"], ranks[1]["student"], strict=True):
        assert torch.equal(a, b)
