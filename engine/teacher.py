"""Supervised training of the teachers (docs/original-release.md#classification-teacher-training,
#segmentation-teacher-training): the plain loop of train_teacher.py and train_teacher_seg.py, which
say what they train as a `TeacherRun`."""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from engine.evaluation import Evaluate
from reporting.run_logger import DrawPanels, RunLogger, format_metrics
from runtime import device as devices
from runtime import original_numerics
from runtime.errors import UserError
from runtime.files import companion_path, load_weights
from runtime.speed import Precision, optimizer_options, speed_up
from runtime.state import RunState, begin, step_schedulers

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TeacherRun:
    """What a teacher script passes to `fit_teacher`."""

    name: str  # log/<name>.{metrics.jsonl,config.json,visdom.log}, results/<name>/
    ckpt: str  # the best model; its state beside it as <stem>-state.pt
    loss_fn: LossFn
    evaluate: Evaluate
    metric: str  # the key of evaluate()'s result that selects the best model
    make_scheduler: Callable[[Optimizer], LRScheduler]  # with --scheduler
    panels: DrawPanels | None = None  # the sample images of each evaluation
    visdom_env: str = ""  # default: the name


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: Optimizer, loss_fn: LossFn,
                    precision: Precision, device: torch.device, epoch: int,
                    args: argparse.Namespace, logger: RunLogger | None) -> float:
    """One pass over the training set (this rank's share under torchrun, `model` then being
    DDP-wrapped); returns the last logged loss, the mean over the ranks."""
    model.train()
    logged = math.nan
    for i, (images, targets) in enumerate(loader, start=1):
        # Pinned batches (a CUDA run, dataloader.py) copy while the GPU still works.
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            output = model(images)
        loss = loss_fn(output.float(), targets)
        precision.backward_step(loss, optimizer, precision.scaler_S)
        if i % args.log_interval == 0 or i == len(loader):
            logged = log_loss(loss.detach(), epoch, i, len(loader), args, logger)
    return logged


def log_loss(loss: torch.Tensor, epoch: int, i: int, batches: int, args: argparse.Namespace,
             logger: RunLogger | None) -> float:
    """Every `--log_interval` batches: the loss over the ranks (one host sync), a NaN or inf
    stopping every rank at the same batch; printed with --verbose (the segmentation teacher's
    default, as the original), plotted to visdom."""
    value = devices.mean_over_ranks(loss.float().reshape(1)).item()
    if not math.isfinite(value):
        raise UserError(f"the training loss is {value} at epoch {epoch}, batch {i}: stopping; "
                        "the state file holds the last complete epoch (lower --lr, or --resume "
                        "from it)")
    if args.verbose and devices.is_main():
        print(f"Train Epoch: {epoch} [{i}/{batches} ({100 * i / batches:.0f}%)]\t"
              f"Loss: {value:.6f}", flush=True)
    if logger is not None:
        logger.losses((epoch - 1) * batches + i, {"train_loss": value})
    return value


def fit_teacher(args: argparse.Namespace, run: TeacherRun, model: nn.Module,
                train_loader: DataLoader | None, test_loader: DataLoader,
                device: torch.device) -> float:
    """Train for `--epochs` (or with --test_only evaluate), keeping the state_dict with the best
    test metric; returns that metric. Checkpoints and evaluation use `model` plain, the steps run
    through DDP under torchrun."""
    speed_up(args, device, model)
    if args.test_only:
        return test_only(args, run, model, test_loader, device)
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, **optimizer_options(args, device))
    schedulers = [run.make_scheduler(optimizer)] if args.scheduler else []
    precision = Precision(args.amp, device)
    state = RunState(companion_path(run.ckpt, "state"), args,
                     {"model": model, "optimizer": optimizer, "precision": precision},
                     schedulers, best_files=(run.ckpt,))
    if not begin(state, run.name):  # finished before: nothing is written
        return state.best
    logger = RunLogger.for_run(args, run.name, run.visdom_env, run.panels, state)
    train_model = devices.ddp(model, device, args.sync_bn)
    for epoch in range(state.epochs_done + 1, args.epochs + 1):
        start = time.perf_counter()
        step_schedulers(schedulers)  # at the epoch start, as the original
        if hasattr(train_loader.sampler, "set_epoch"):  # DistributedSampler: a new shuffle
            train_loader.sampler.set_epoch(epoch)
        train_loss = train_one_epoch(train_model, train_loader, optimizer, run.loss_fn,
                                     precision, device, epoch, args, logger)
        metrics: dict[str, float] = {}
        if devices.is_main():  # in a forked RNG (the original's draws: --original_numerics)
            batches, rng = original_numerics.test_batches(args, test_loader, None, device)
            with rng:
                metrics = run.evaluate(model, batches, device)
        # Every rank records rank 0's metric, so each holds the same history and best.
        is_best = state.end_epoch(devices.from_main(metrics.get(run.metric, 0.0), device))
        if devices.is_main():
            logger.epoch(epoch, run.metric, metrics, {"train_loss": train_loss}, {}, state,
                         optimizer.param_groups[0]["lr"], time.perf_counter() - start)
            state.save(*([(model.state_dict(), run.ckpt)] if is_best else []))
            logger.samples(test_loader, device, model)
    print(f"Best {run.metric}={state.best:.6f}")
    return state.best


def test_only(args: argparse.Namespace, run: TeacherRun, model: nn.Module,
              test_loader: DataLoader, device: torch.device) -> float:
    """`--test_only`: the teacher of `--ckpt` (loaded by the script), or this run's best one;
    writes nothing."""
    if not args.ckpt:
        if not Path(run.ckpt).is_file():
            raise UserError(f"no trained teacher at {run.ckpt}: train one first, or pass --ckpt")
        load_weights(model, run.ckpt)
    metrics = run.evaluate(model, test_loader, device)
    print(f"Test ({args.ckpt or run.ckpt}): {format_metrics(metrics)}")
    return metrics[run.metric]
