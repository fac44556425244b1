"""The original release's DFAD iteration, and its whole runs (DFAD and teacher: epochs, LR
schedule, test passes), written as plainly as they were
(docs/original-release.md#the-method, #the-training-loop, #rng-across-evaluations).

None of this repository's speed-ups: NCHW as the networks come, the teacher's weights taking
gradients, the student step's generator pass recording autograd and detached afterwards, the
student collecting gradients it never applies in the generator step. benchmarks/benchmark.py
times it as the baseline ("reference"); tests/test_original_numerics.py holds the engine to it,
within rounding by default and bit for bit under --original_numerics through whole runs
(`original_dfad`), and tests/test_teachers.py the teacher (`original_teacher`).
"""
from __future__ import annotations

import argparse
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from dataset.image_label_pairs import IGNORE_INDEX
from engine.dfad import STUDENT_MOMENTUM, STUDENT_STEPS_PER_ITERATION
from utils.stream_metrics import StreamSegMetrics

# (student logits, teacher logits) -> the generator's loss, as the original wrote it
GeneratorLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# () -> (teacher, student, generator), built in the script's order after its seeding
BuildNetworks = Callable[[], tuple[nn.Module, nn.Module, nn.Module]]
MakeScheduler = Callable[[Optimizer], LRScheduler]


def original_iteration(teacher: nn.Module, student: nn.Module, generator: nn.Module,
                       optimizer_S: Optimizer, optimizer_G: Optimizer, batch_size: int, nz: int,
                       generator_loss: GeneratorLoss, device: torch.device) -> None:
    """5 student steps, then 1 generator step, in the original's order of operations."""
    for _ in range(STUDENT_STEPS_PER_ITERATION):
        z = torch.randn(batch_size, nz, 1, 1, device=device)
        optimizer_S.zero_grad()
        fake = generator(z).detach()
        t_logit = teacher(fake)
        s_logit = student(fake)
        loss_S = F.l1_loss(s_logit, t_logit.detach())
        loss_S.backward()
        optimizer_S.step()
    z = torch.randn(batch_size, nz, 1, 1, device=device)
    optimizer_G.zero_grad()
    generator.train()
    fake = generator(z)
    t_logit = teacher(fake)
    s_logit = student(fake)
    loss_G = generator_loss(s_logit, t_logit)
    loss_G.backward()
    optimizer_G.step()


def seed_everything(seed: int) -> None:
    """The original scripts' seeding (DFAD_caltech101.py seeded torch alone: the same stream)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)


@torch.no_grad()
def original_test(model: nn.Module, loader: DataLoader, metric: str, device: torch.device,
                  generator: nn.Module | None = None, nz: int = 0) -> float:
    """The original's test(): with a generator (DFAD), a latent batch per test batch for its
    "generated" panel; accuracy over the test set, or mIoU of one confusion matrix."""
    model.eval()
    if generator is not None:
        generator.eval()
    correct, seg = 0, None
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        if generator is not None:
            z = torch.randn((data.shape[0], nz, 1, 1), device=data.device, dtype=data.dtype)
            generator(z)
        output = model(data)
        if metric == "acc":
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
        else:
            seg = seg or StreamSegMetrics(output.shape[1], ignore_index=IGNORE_INDEX)
            seg.update(output.max(1)[1].cpu().numpy().astype("uint8"),
                       target.cpu().numpy().astype("uint8"))
    if metric == "acc":
        return correct / len(loader.dataset)  # type: ignore[arg-type]
    assert seg is not None
    return seg.get_results()["Mean IoU"]


def original_dfad(args: argparse.Namespace, build: BuildNetworks, test_loader: DataLoader,
                  generator_loss: GeneratorLoss, metric: str,
                  make_scheduler: MakeScheduler | None, at_epoch_start: bool,
                  device: torch.device) -> tuple[list[float], nn.Module, nn.Module]:
    """A DFAD_*.py run: seed, networks, optimizers, then per epoch [scheduler step at the start
    (classification) or the end (segmentation), `epoch_itrs` iterations, test()]. `test_loader`
    as the script built it (shuffled or not, its batch size). Returns the per-epoch metrics, the
    student and the generator."""
    seed_everything(args.seed)
    teacher, student, generator = build()
    teacher.to(device).eval()
    student.to(device)
    generator.to(device)
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, weight_decay=args.weight_decay,
                      momentum=STUDENT_MOMENTUM)
    optimizer_G = Adam(generator.parameters(), lr=args.lr_G)
    schedulers = ([make_scheduler(optimizer_S), make_scheduler(optimizer_G)]
                  if args.scheduler and make_scheduler is not None else [])
    history = []
    for _ in range(args.epochs):
        if at_epoch_start:
            for scheduler in schedulers:
                scheduler.step()
        student.train()
        generator.train()
        for _ in range(args.epoch_itrs):
            original_iteration(teacher, student, generator, optimizer_S, optimizer_G,
                               args.batch_size, args.nz, generator_loss, device)
        history.append(original_test(student, test_loader, metric, device, generator, args.nz))
        if not at_epoch_start:
            for scheduler in schedulers:
                scheduler.step()
    return history, student, generator


def original_teacher(args: argparse.Namespace, build: Callable[[], nn.Module],
                     train_loader: DataLoader, test_loader: DataLoader,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], metric: str,
                     gamma: float, device: torch.device) -> tuple[list[float], nn.Module]:
    """A train_teacher*.py run: seed, model, SGD, then per epoch [StepLR step (with
    --scheduler), one pass over the training set, test()]."""
    seed_everything(args.seed)
    model = build().to(device)
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, args.step_size, gamma)
    history = []
    for _ in range(args.epochs):
        if args.scheduler:
            scheduler.step()
        model.train()
        for data, target in train_loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(data), target)
            loss.backward()
            optimizer.step()
        history.append(original_test(model, test_loader, metric, device))
    return history, model
