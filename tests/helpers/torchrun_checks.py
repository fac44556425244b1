"""What N processes must do as one does, run by tests/test_distributed.py in two ways:

    python tests/helpers/torchrun_checks.py OUT                             (one process)
    python -m torch.distributed.run --standalone --nproc_per_node 2 \
        tests/helpers/torchrun_checks.py OUT

with the repository on PYTHONPATH. Every rank runs the same checks on the CPU (gloo) and writes
what it saw to OUT/rank<R>.pt; the test compares the ranks with each other and with one process.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets

import train_teacher
from dataloader import get_dataloader
from engine.dfad import (
    Recipe,
    generator_loss_log_mae,
    generator_step,
    setup_distillation,
    train_epoch,
)
from engine.evaluation import evaluate_classification
from engine.teacher import train_one_epoch
from runtime import distributed
from runtime.run_state import GracefulStop
from tests.helpers.mnist_fixtures import write_tiny_mnist
from tests.helpers.script_args import dfad_args, parse

NZ, BATCH = 8, 8
CPU = torch.device("cpu")


def tiny_segmentation_nets() -> tuple[nn.Module, nn.Module, nn.Module]:
    """Per-pixel logits from 1x8x8 images; no BatchNorm, so a slice of the batch normalises
    nothing differently from the whole batch."""
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    student = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 3, 1))
    generator = nn.Sequential(nn.Flatten(), nn.Linear(NZ, 64), nn.Unflatten(1, (1, 8, 8)),
                              nn.Tanh())
    return teacher.eval().requires_grad_(False), student, generator


def generator_gradient() -> dict[str, torch.Tensor]:
    """Loss and gradient of one generator step on the same global batch."""
    teacher, student, generator = tiny_segmentation_nets()
    train_student = distributed.wrap(student, CPU, sync_bn=False)
    train_generator = distributed.wrap(generator, CPU, sync_bn=False)
    torch.manual_seed(1)
    z = distributed.shard(torch.randn(BATCH, NZ, 1, 1))
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.0)
    loss = generator_step(teacher, train_student, train_generator, optimizer, z,
                          generator_loss_log_mae)
    return {"loss": loss, **{f"grad.{name}": p.grad.clone()
                             for name, p in generator.named_parameters()}}


def args(**overrides: object) -> argparse.Namespace:
    values = dict(epoch_itrs=4, log_interval=2, batch_size=BATCH, nz=NZ, epochs=1, lr_S=0.05,
                  weight_decay=0)
    values.update(overrides)
    return dfad_args(**values)


def recipe(generator_loss=generator_loss_log_mae) -> Recipe:
    return Recipe(name="checks", student_ckpt="unused.pt", generator_loss=generator_loss,
                  evaluate=evaluate_classification, metric="acc")


@contextmanager
def counting_stop_checks() -> Iterator[list[bool]]:
    """Every stop-flag comparison between the ranks (a collective and a host sync each)."""
    checks: list[bool] = []
    any_rank = distributed.any_rank

    def counted(flag: bool, device: torch.device) -> bool:
        checks.append(flag)
        return any_rank(flag, device)

    distributed.any_rank = counted
    try:
        yield checks
    finally:
        distributed.any_rank = any_rank


def training_losses() -> dict[str, object]:
    """An epoch of 4 iterations: the logged losses and how often the ranks compared stop flags."""
    run = setup_distillation(args(), *tiny_segmentation_nets(), recipe(), CPU, test_loader=None)
    torch.manual_seed(2)
    with counting_stop_checks() as checks:
        losses, done = train_epoch(run, 1)
    return {**losses, "done": done, "stop_checks": len(checks)}


def teacher_stop_checks() -> int:
    """A teacher epoch of 4 batches per rank at --log_interval 2."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 8, 8), torch.arange(16) % 10)
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    with counting_stop_checks() as checks:
        train_one_epoch(distributed.wrap(model, CPU, False), loader,
                        torch.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, CPU,
                        epoch=1, log_interval=2, verbose=False, stop=GracefulStop())
    return len(checks)


def stop_on_one_rank() -> int:
    """SIGTERM reaches the last rank alone, in iteration 1: the iteration every rank stops after."""
    teacher, student, generator = tiny_segmentation_nets()
    calls = []

    def loss_then_signal(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 1 and distributed.rank() == distributed.world_size() - 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return generator_loss_log_mae(s, t)

    run = setup_distillation(args(epoch_itrs=6, log_interval=4), teacher, student, generator,
                             recipe(loss_then_signal), CPU, test_loader=None)
    with run.stop.installed():
        _, done = train_epoch(run, 1)
    return done


def download(out: Path) -> dict[str, object]:
    """`--download` into one folder: a stand-in for torchvision's MNIST download (no network)
    logs who calls it, and leaves the four idx files where the real one would."""
    log = out / "downloads.txt"

    def fake_download(self: datasets.MNIST) -> None:
        with open(log, "a") as f:
            f.write(f"{distributed.rank()}\n")
        time.sleep(1.0)  # long enough for every rank to try at once, without a barrier
        write_tiny_mnist(self.root, n_train=8, n_test=4)

    real = datasets.MNIST.download
    datasets.MNIST.download = fake_download
    try:
        train_loader, test_loader = get_dataloader(parse(
            train_teacher.get_parser(), data_root=out / "data", batch_size=4, test_batch_size=4,
            num_workers=0, download=True, seed=1))
    finally:
        datasets.MNIST.download = real
    return {"train": len(train_loader.dataset), "test": len(test_loader.dataset),
            "downloaded_by": [int(r) for r in log.read_text().split()]}


def main(out: Path) -> None:
    distributed.init(CPU)
    results = {"world_size": distributed.world_size(), "generator": generator_gradient(),
               "training": training_losses(), "teacher_stop_checks": teacher_stop_checks(),
               "stopped_after": stop_on_one_rank(),
               "download": download(out)}
    torch.save(results, out / f"rank{distributed.rank()}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
