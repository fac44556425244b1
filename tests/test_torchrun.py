"""torchrun as a switch (docs/gpus-and-clusters.md): two CPU processes (gloo) train one run,
rank 0 alone evaluates and writes, and a non-finite loss on one rank stops both. Real processes
are the point here, so these tests start torchrun."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from reporting.results_csv import read_csv_runs

pytestmark = pytest.mark.slow  # torchrun starts three Python processes per run

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2"]
FLAGS = ["--epochs", "2", "--epoch_itrs", "2", "--batch_size", "8", "--test_batch_size", "8",
         "--log_interval", "1", "--device", "cpu", "--num_workers", "0", "--data_root", "data",
         "--no_visdom"]
STUDENT = Path("checkpoint/student")


def torchrun(script: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, str(script), *FLAGS], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


# DFAD_mnist as torchrun runs it, each rank then saving the student it ended with.
EVERY_RANKS_STUDENT = textwrap.dedent("""
    import torch
    import torch.distributed as dist

    import DFAD_mnist
    from engine.dfad import distill
    from runtime.cli import run_main
    from runtime.device import setup


    def main(args):
        device = setup(args)
        exp = DFAD_mnist.build(args)
        distill(args, exp, device)
        torch.save(exp.student.state_dict(), f"rank{dist.get_rank()}-student.pt")


    if __name__ == "__main__":
        run_main(DFAD_mnist.get_parser, main)
""")


def test_two_processes_train_one_run_and_rank_0_alone_writes(mnist_run):
    script = mnist_run / "every_ranks_student.py"
    script.write_text(EVERY_RANKS_STUDENT)
    result = torchrun(script, mnist_run)
    assert result.returncode == 0, result.stderr[-3000:]
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split(" test:")[0] for line in epoch_lines] == ["Epoch 1", "Epoch 2"]
    assert "2 processes" in result.stdout.splitlines()[0]
    (row,) = read_csv_runs(mnist_run / "log/DFAD-mnist.csv")
    assert row.flags["processes"] == 2 and len(row.values) == 2
    metrics = (mnist_run / "log/DFAD-mnist.metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 2  # one evaluation per epoch, by rank 0
    written = sorted(p.name for p in (mnist_run / STUDENT).iterdir())
    assert written == ["mnist-lenet5_half-generator.pt", "mnist-lenet5_half-state.pt",
                       "mnist-lenet5_half.pt"]  # no second writer's temporary files
    state = torch.load(mnist_run / STUDENT / "mnist-lenet5_half-state.pt", weights_only=True)
    assert state["epochs_done"] == 2 and state["config"]["batch_size"] == 8
    ranks = [torch.load(mnist_run / f"rank{r}-student.pt", weights_only=True) for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) and torch.equal(ranks[0][k], v)
               for k, v in state["student"].items())  # DDP kept the ranks' weights equal


# A new experiment as a user writes one (docs/extending.md): DFAD_mnist's build(args) with its
# own student objective, here one whose loss is NaN on rank 1 only.
NAN_ON_RANK_1 = textwrap.dedent("""
    import torch.distributed as dist

    import DFAD_mnist
    from engine.dfad import distill
    from engine.objectives import student_l1
    from runtime.cli import run_main
    from runtime.device import setup


    def nan_on_rank_1(x, s, t):
        loss = student_l1(x, s, t)
        return loss * float("nan") if dist.get_rank() == 1 else loss


    def main(args):
        device = setup(args)
        exp = DFAD_mnist.build(args)
        exp.student_objective = nan_on_rank_1
        return distill(args, exp, device)


    if __name__ == "__main__":
        run_main(DFAD_mnist.get_parser, main)
""")


def test_a_nan_on_one_rank_stops_both_with_one_error_line(mnist_run):
    script = mnist_run / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    result = torchrun(script, mnist_run)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]  # rank 0's; the generator's loss is NaN too
    assert errors[0].endswith("is nan at epoch 1, iteration 1: stopping; the state file holds "
                              "the last complete epoch (lower the learning rate, or --resume "
                              "from it)")
    # Each rank stopped by the one-line error, not a traceback (torchrun adds its own report).
    assert "UserError" not in result.stderr and "log_point" not in result.stderr
    assert "Epoch 1 test" not in result.stdout
    assert not (mnist_run / STUDENT / "mnist-lenet5_half-state.pt").exists()


def test_two_processes_train_a_teacher_and_resume_it(mnist_run):
    """The teacher loop under torchrun: every rank records each epoch (rank 0's metric), so a
    2-process teacher trained for one epoch resumes to a second on both ranks."""
    flags = ["--batch_size", "8", "--device", "cpu", "--num_workers", "0", "--data_root", "data",
             "--no_visdom", "--model", "lenet5", "--dataset", "mnist"]
    (mnist_run / "checkpoint/teacher/mnist-lenet5.pt").unlink()  # the fixture's DFAD teacher
    for extra in (["--epochs", "1"], ["--epochs", "2", "--resume"]):
        result = subprocess.run([*TORCHRUN, str(REPO / "train_teacher.py"), *flags, *extra],
                                cwd=mnist_run, env=ENV, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stdout and "Epoch 2 test:" in result.stdout
    state = torch.load(mnist_run / "checkpoint/teacher/mnist-lenet5-state.pt", weights_only=True)
    assert state["epochs_done"] == 2 and len(state["history"]) == 2
