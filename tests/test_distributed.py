"""torchrun on the CPU (gloo): 2 processes compute what 1 does (segmentation generator loss, the
logged losses), ranks agree on a stop only at log points and stop at the same step, --download
is done by local rank 0 alone; the resume hint and the saved GPU RNG state."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from utils.run_state import capture_rng, restore_rng, resume_command, saved_cuda_rng

REPO = Path(__file__).resolve().parents[1]
CHECKS = REPO / "tests" / "torchrun_checks.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


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


def test_resume_hint_without_torchrun_is_python():
    assert resume_command("s.pt", ["DFAD_mnist.py", "--resume", "old.pt"], env={}) == (
        "python DFAD_mnist.py --resume s.pt")


def test_resume_hint_under_torchrun_on_one_node():
    env = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4", "GROUP_WORLD_SIZE": "1"}
    assert resume_command("s.pt", ["DFAD_cifar.py", "--scheduler"], env=env) == (
        "torchrun --standalone --nproc_per_node 4 DFAD_cifar.py --scheduler --resume s.pt")


def test_resume_hint_under_torchrun_on_several_nodes():
    env = {"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "GROUP_WORLD_SIZE": "2"}
    command = resume_command("s.pt", ["DFAD_cifar.py"], env=env)
    assert shlex.split(command, comments=True) == [
        "torchrun", "--nnodes", "2", "--nproc_per_node", "8", "--rdzv_backend", "c10d",
        "--rdzv_endpoint", "HOST:PORT", "DFAD_cifar.py", "--resume", "s.pt"]
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
