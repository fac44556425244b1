"""Supervised training of the teachers (SPEC §3.3): one loop for every dataset."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from utils.checkpoint import save_atomic
from utils.dfad import Evaluate
from utils.misc import format_metrics, step_schedulers

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: Optimizer,
    loss_fn: LossFn,
    device: torch.device,
    epoch: int,
    log_interval: int,
    verbose: bool,
) -> float:
    """One pass over the training set; returns the last batch's loss."""
    model.train()
    loss = torch.zeros(())
    for i, (images, targets) in enumerate(loader, start=1):
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        if verbose and i % log_interval == 0:
            print(f"Train Epoch: {epoch} [{i}/{len(loader)}]\tLoss: {loss.item():.6f}", flush=True)
    return loss.item()


def fit_teacher(
    args: argparse.Namespace,
    model: nn.Module,
    train_loader: DataLoader,
    test_loader: DataLoader,
    optimizer: Optimizer,
    scheduler: LRScheduler | None,
    loss_fn: LossFn,
    evaluate: Evaluate,
    metric: str,
    ckpt_path: str,
    device: torch.device,
) -> float:
    """Train for `args.epochs`, keeping the state_dict with the best test metric; returns it."""
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        if scheduler is not None:
            step_schedulers([scheduler])  # at epoch start, as the original (SPEC §3.1)
        train_loss = train_one_epoch(model, train_loader, optimizer, loss_fn, device, epoch,
                                     args.log_interval, args.verbose)
        metrics = evaluate(model, test_loader, device)
        if metrics[metric] > best:
            best = metrics[metric]
            save_atomic(model.state_dict(), ckpt_path)
        print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {metric}={best:.4f} | "
              f"lr={optimizer.param_groups[0]['lr']:.2e} | train_loss={train_loss:.4f} | "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    print(f"Best {metric}={best:.6f}")
    return best
