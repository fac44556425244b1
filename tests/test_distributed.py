"""torchrun on the CPU (gloo): 2 processes compute what 1 does (segmentation generator loss, the
logged losses), ranks agree on a stop only at log points and stop at the same step, --download
is done by local rank 0 alone, a stopped run resumes with the printed torchrun command and every
rank draws one process's latents; the resume hint and the saved GPU RNG state."""
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runtime.run_state import capture_rng, restore_rng, resume_command, saved_cuda_rng
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

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
    deadline = time.monotonic() + 240
    while not (rank1.exists() and rank1.stat().st_size > 18 * batch_bytes):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode != 0
    hints = {line.strip() for line in err.splitlines()
             if line.strip().startswith(f"{sys.executable} -m torch.distributed.run ")}
    assert len(hints) == 1, err[-3000:]
    argv = shlex.split(hints.pop())
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
