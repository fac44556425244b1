"""Checks of what every rank does under torchrun, run by tests/test_exactness.py:

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/helpers/rank_checks.py \
        CHECK OUT DATA [flags]

with the repository on PYTHONPATH, on the CPU (gloo). Each rank writes what it saw to
OUT/rank<R>.pt. CHECK is
* `streams`: a LeNet5 teacher on the MNIST in DATA (train_teacher.py's flags); a digest of the
  rank's torch RNG state at every training batch. Rank 0's evaluations happen between epochs, so
  equal digests mean they left every rank's stream alone (or, under --original_numerics, drew
  the same on every rank).
* `dropout`: a DFAD epoch whose student has dropout; each rank's first mask, RNG state after
  the epoch and student weights.
* `nan`: a DFAD run whose generator loss is NaN on rank 1 alone from its third step; the error
  each rank stopped with.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import train_teacher
from dataloader import get_dataloader
from engine.dfad import Recipe, distill, generator_loss_mae, setup_distillation, train_epoch
from engine.evaluation import evaluate_classification
from engine.teacher import fit_teacher
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime import distributed
from runtime.errors import UserError
from runtime.precision import optimizer_options, place
from runtime.startup import setup_runtime
from tests.helpers.script_args import dfad_args


def streams(out: Path, data: str, flags: list[str]) -> None:
    args = train_teacher.get_parser().parse_args(
        ["--dataset", "mnist", "--model", "lenet5", "--data_root", data, "--device", "cpu",
         "--num_workers", "0", "--no_visdom", *flags])
    device = setup_runtime(args)
    model = LeNet5()
    place(args, device, model)
    train_loader, test_loader = get_dataloader(args, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                **optimizer_options(args, device))
    digests: list[str] = []

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        digests.append(hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest())
        return F.cross_entropy(output, target)

    fit_teacher(args, model, train_loader, test_loader, optimizer, None, loss_fn,
                evaluate_classification, "acc", "checkpoint/teacher/streams.pt", device)
    torch.save({"digests": digests}, out / f"rank{distributed.rank()}.pt")


def nan_on_rank_1(out: Path, data: str, flags: list[str]) -> None:
    args = dfad_args(epochs=1, epoch_itrs=6, batch_size=4, nz=8, log_interval=3, device="cpu",
                     no_visdom=True)
    device = setup_runtime(args)
    steps = {"n": 0}

    def generator_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """-MAE; its value (not its gradient) NaN on rank 1 from the third step."""
        steps["n"] += 1
        loss = generator_loss_mae(s, t)
        if distributed.rank() == 1 and steps["n"] >= 3:
            loss = loss + torch.tensor(float("nan"))
        return loss

    recipe = Recipe(name="nan", student_ckpt="checkpoint/student/nan.pt",
                    generator_loss=generator_loss, evaluate=evaluate_classification, metric="acc")
    torch.manual_seed(0)
    teacher = LeNet5().eval().requires_grad_(False)
    loader = DataLoader(TensorDataset(torch.randn(4, 1, 32, 32), torch.arange(4)), batch_size=4)
    try:
        distill(args, teacher, LeNet5Half(), GeneratorA(nz=8, ngf=8), loader, recipe, device)
        error = ""
    except UserError as err:
        error = str(err)
    torch.save({"error": error}, out / f"rank{distributed.rank()}.pt")


def dropout(out: Path, data: str, flags: list[str]) -> None:
    """A DFAD epoch with a dropout student (p 0.5): each rank's first mask, its RNG state after
    the epoch (the run's stream) and the student's weights."""
    args = dfad_args(epochs=1, epoch_itrs=3, batch_size=8, nz=8, log_interval=3, device="cpu",
                     no_visdom=True)
    device = setup_runtime(args)
    torch.manual_seed(0)
    teacher = nn.Linear(16, 3).eval().requires_grad_(False)
    student = nn.Sequential(nn.Linear(16, 32), nn.Dropout(0.5), nn.Linear(32, 3))
    generator = nn.Sequential(nn.Flatten(), nn.Linear(8, 16))
    masks: list[torch.Tensor] = []
    student[1].register_forward_hook(lambda m, i, o: masks.append(o == 0))
    recipe = Recipe(name="dropout", student_ckpt="checkpoint/student/dropout.pt",
                    generator_loss=generator_loss_mae, evaluate=evaluate_classification,
                    metric="acc")
    run = setup_distillation(args, teacher, student, generator, recipe, device, None)
    train_epoch(run, 1)
    torch.save({"mask": masks[0], "masks": len(masks),
                "rng": hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest(),
                "student": [p.detach().clone() for p in student.parameters()]},
               out / f"rank{distributed.rank()}.pt")


if __name__ == "__main__":
    check = {"streams": streams, "nan": nan_on_rank_1, "dropout": dropout}[sys.argv[1]]
    check(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])
    distributed.cleanup()
