"""The adversarial distillation loop of DFAD (SPEC §1, §3.1), shared by every DFAD_*.py script.

Per iteration: 5 student steps on detached generator samples (imitation), then 1 generator step
that maximises the student-teacher discrepancy through both networks (generation). Every
`epoch_itrs` iterations the student is evaluated on the real test set; the best student and its
generator are saved under the original file names and one CSV row per run lists every epoch's
metric. What differs between experiments (generator loss, metric, LR schedule) is a `Recipe`.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from utils.checkpoint import load_weights, save_atomic
from utils.misc import append_csv_row, format_metrics, step_schedulers

STUDENT_STEPS_PER_ITERATION = 5  # hard-coded in every original DFAD script (SPEC §1)
STUDENT_MOMENTUM = 0.9  # hard-coded; --momentum is ignored (SPEC §10.16)


def discrepancy(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element of the raw logits (SPEC §1, §10.8)."""
    return F.l1_loss(s, t)


def generator_loss_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Classification generator objective: -MAE (SPEC §1)."""
    return -discrepancy(s, t)


def generator_loss_log_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Segmentation generator objective: -log(MAE + 1) (SPEC §1)."""
    return -torch.log(discrepancy(s, t) + 1)


GeneratorLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Evaluate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


@dataclass(frozen=True)
class Recipe:
    """What differs between the DFAD experiments; the loop itself is the same for all."""

    name: str  # log/DFAD-<name>.csv
    student_ckpt: str  # best student; the generator is saved as <stem>-generator.pt
    generator_loss: GeneratorLoss
    evaluate: Evaluate
    metric: str  # the key of evaluate()'s result that selects the best student
    make_scheduler: Callable[[Optimizer], LRScheduler] | None = None
    # Classification scripts step the schedulers at the start of each epoch, segmentation
    # scripts at the end (SPEC §3.1, §10.15).
    scheduler_at_epoch_start: bool = True

    @property
    def generator_ckpt(self) -> str:
        return str(Path(self.student_ckpt).with_suffix("")) + "-generator.pt"

    @property
    def csv_path(self) -> str:
        return f"log/DFAD-{self.name}.csv"


def sample_noise(batch_size: int, nz: int, device: torch.device) -> torch.Tensor:
    """Fresh N(0, I) latents for every step (SPEC §10.10)."""
    return torch.randn(batch_size, nz, 1, 1, device=device)


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Parameters take no gradient inside the block; gradients still flow through to the input."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Evaluate in eval mode, then put every module back in the mode it had."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def student_step(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_S: Optimizer,
    z: torch.Tensor,
) -> torch.Tensor:
    """Imitation: one SGD step of the student towards the teacher on a generated batch."""
    with torch.no_grad():
        # The generator is in train mode here, so its BN running stats update on every student
        # step (SPEC §10.11). no_grad gives the same values as the original's detach.
        x = generator(z)
        t = teacher(x)
    s = student(x)
    loss = discrepancy(s, t)
    # Clearing first means nothing the generator step may have left can reach this update.
    optimizer_S.zero_grad(set_to_none=True)
    loss.backward()
    optimizer_S.step()
    return loss.detach()


def generator_step(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_G: Optimizer,
    z: torch.Tensor,
    generator_loss: GeneratorLoss,
) -> torch.Tensor:
    """Generation: one Adam step of the generator towards samples where S and T disagree."""
    optimizer_G.zero_grad(set_to_none=True)
    x = generator(z)
    # The gradient reaches G through both networks, but the student's parameters collect none
    # (SPEC §10.12). The student stays in train mode, so its BN running stats absorb this batch
    # too (SPEC §10.11).
    with frozen(student):
        loss = generator_loss(student(x), teacher(x))
        loss.backward()
    optimizer_G.step()
    return loss.detach()


def train_epoch(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_S: Optimizer,
    optimizer_G: Optimizer,
    recipe: Recipe,
    args: argparse.Namespace,
    epoch: int,
    device: torch.device,
) -> dict[str, float]:
    """`epoch_itrs` iterations of [5 student steps, 1 generator step]."""
    teacher.eval()
    student.train()
    generator.train()
    loss_S = loss_G = torch.zeros(())
    for i in range(1, args.epoch_itrs + 1):
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            z = sample_noise(args.batch_size, args.nz, device)
            loss_S = student_step(teacher, student, generator, optimizer_S, z)
        z = sample_noise(args.batch_size, args.nz, device)
        loss_G = generator_step(teacher, student, generator, optimizer_G, z, recipe.generator_loss)
        if i % args.log_interval == 0 or i == args.epoch_itrs:
            print(f"Train Epoch: {epoch} [{i}/{args.epoch_itrs} ({100 * i / args.epoch_itrs:.0f}%)]"
                  f"\tG_Loss: {loss_G.item():.6f} S_Loss: {loss_S.item():.6f}", flush=True)
    return {"loss_S": loss_S.item(), "loss_G": loss_G.item()}


def distill(
    args: argparse.Namespace,
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    test_loader: DataLoader,
    recipe: Recipe,
    device: torch.device,
) -> list[float]:
    """The whole run: optimizers, schedulers, epochs, evaluation, checkpoints, the CSV row.

    Returns the per-epoch metric list (the CSV row).
    """
    student.to(device)
    # channels_last runs the generator's convolutions about 1.5-2x faster on CPU; same maths.
    generator.to(device, memory_format=torch.channels_last)
    if args.stu_ckpt:
        load_weights(student, args.stu_ckpt)
        generator_path = str(Path(args.stu_ckpt).with_suffix("")) + "-generator.pt"
        if Path(generator_path).is_file():
            load_weights(generator, generator_path)
        else:
            print(f"no generator checkpoint at {generator_path}: the generator starts fresh")
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, momentum=STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay)
    optimizer_G = Adam(generator.parameters(), lr=args.lr_G)
    schedulers: list[LRScheduler] = []
    if args.scheduler and recipe.make_scheduler is not None:
        # The same schedule drives the generator's Adam too (SPEC §10.15).
        schedulers = [recipe.make_scheduler(optimizer_S), recipe.make_scheduler(optimizer_G)]

    if args.test_only:
        metrics = recipe.evaluate(student, test_loader, device)
        print(f"Test: {format_metrics(metrics)}")
        return [metrics[recipe.metric]]

    best = 0.0
    history: list[float] = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        if recipe.scheduler_at_epoch_start:
            step_schedulers(schedulers)
        losses = train_epoch(teacher, student, generator, optimizer_S, optimizer_G, recipe,
                             args, epoch, device)
        with eval_mode(student, generator):
            metrics = recipe.evaluate(student, test_loader, device)
        if not recipe.scheduler_at_epoch_start:
            step_schedulers(schedulers)
        value = metrics[recipe.metric]
        history.append(value)
        if value > best:  # strictly better, as the original
            best = value
            save_atomic(student.state_dict(), recipe.student_ckpt)
            save_atomic(generator.state_dict(), recipe.generator_ckpt)
        print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {recipe.metric}={best:.4f} | "
              f"lr_S={optimizer_S.param_groups[0]['lr']:.2e} | {format_metrics(losses)} | "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    print(f"Best {recipe.metric}={best:.6f}")
    append_csv_row(recipe.csv_path, history)
    return history
