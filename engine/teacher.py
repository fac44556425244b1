"""Supervised training of the teachers (docs/original-release.md#classification-teacher-training):
one loop for every dataset."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from engine.epoch_progress import EpochProgress
from engine.evaluation import Evaluate, OriginalTestDraws
from reporting.run_logger import RunLogger
from runtime import distributed
from runtime.checkpoint import companion_path, save_atomic
from runtime.precision import Precision, maybe_compile
from runtime.run_files import (
    ensure_writable,
    format_metrics,
    remove_stale_tmp,
    step_schedulers,
    write_config,
)
from runtime.run_state import GracefulStop, RunState, state_due

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
    stop: GracefulStop | None = None,
    state_path: str = "",
    precision: Precision | None = None,
) -> float:
    """One pass over the training set; returns the last batch's loss.

    Stops early (after the current batch) when a stop is requested; the caller then discards the
    partial epoch, so a resumed run repeats it exactly (runtime/run_state.py RunState says why).
    `precision` is `--amp` (runtime/precision.py); its student scaler is the teacher's one
    objective.
    """
    precision = precision or Precision(None, device)
    model.train()
    loss = torch.zeros(())
    progress = EpochProgress(len(loader), f"epoch {epoch}", log_interval, stop, device,
                             state_path)
    for i, (images, targets) in enumerate(loader, start=1):
        # Pinned batches (a CUDA run, dataloader.py) copy while the GPU still works.
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            output = model(images)
        loss = loss_fn(output.float(), targets)
        precision.backward_step(loss, optimizer, precision.scaler_S)
        progress.watch(loss.detach(), f"training loss at epoch {epoch}, batch {i}")
        if progress.log_point(i):
            if verbose and progress.bar.disable:
                print(f"Train Epoch: {epoch} [{i}/{len(loader)}]\tLoss: {loss.item():.6f}",
                      flush=True)
            progress.bar.set_postfix_str(f"loss={loss.item():.4f}", refresh=False)
        if progress.advance():
            break
    progress.close()
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
    logger: RunLogger | None = None,
) -> float:
    """Train for `args.epochs`, keeping the state_dict with the best test metric; returns it.

    After every `--save_every` epochs and on SIGINT/SIGTERM it writes `<ckpt stem>-state.pt`,
    the state after the last complete epoch, from which `--resume` continues exactly.
    """
    state_path = companion_path(ckpt_path, "state")
    if distributed.is_main():
        ensure_writable(Path(ckpt_path).parent)
        remove_stale_tmp(ckpt_path, state_path)
    schedulers = [scheduler] if scheduler is not None else []
    precision = Precision(args.amp, device)
    # A stop falls back to the last complete epoch (RunState says why).
    state = RunState(state_path, args,
                     {"model": model, "optimizer": optimizer, "precision": precision}, schedulers,
                     mid_epoch=False)
    state_file = state.resume()
    if state_file is not None and not state.finished:
        print(f"resumed from {state_file}: {state.epochs_done} epochs done, best "
              f"{metric}={state.best:.4f}")
    if state.finished:  # a resume of a finished teacher writes nothing
        print(f"teacher finished before: {state.epochs_done} of {args.epochs} epochs, best "
              f"{metric}={state.best:.4f} in {ckpt_path}: nothing to do (--epochs N trains it "
              "longer)")
        return state.best
    if distributed.is_main():
        write_config()
    # Under torchrun the steps run through DDP (gradients averaged over the ranks); rank 0
    # evaluates and writes while the others wait for it in the next epoch's first step. With
    # --compile the steps call the compiled view; evaluation and checkpoints use the plain module.
    train_model = distributed.wrap(maybe_compile(model, args.compile), device, args.sync_bn)
    stop = GracefulStop()
    with stop.installed():
        for epoch in range(state.epochs_done + 1, args.epochs + 1):
            start = time.perf_counter()
            # at epoch start, as the original (docs/original-release.md#the-training-loop)
            step_schedulers(schedulers)
            if hasattr(train_loader.sampler, "set_epoch"):  # DistributedSampler, EpochSeeds
                train_loader.sampler.set_epoch(epoch)  # a new shuffle per epoch, on every rank
            train_loss = train_one_epoch(train_model, train_loader, optimizer, loss_fn, device,
                                         epoch, args.log_interval, args.verbose, stop,
                                         state.last_saved, precision)
            if distributed.any_rank(stop.requested, device):
                raise state.stopped_in_epoch(stop, epoch)
            # The test loader draws its seeds from the global RNG. By default forking keeps the
            # training stream independent of evaluation, and so every rank's stream equal to
            # rank 0's; --original_numerics draws what the original's test() did, on every rank
            # (docs/original-release.md#rng-across-evaluations).
            draws = OriginalTestDraws(test_loader, None, device)
            if not distributed.is_main():
                if args.original_numerics:
                    draws.skip()
                continue
            with nullcontext() if args.original_numerics else torch.random.fork_rng(devices=[]):
                metrics = evaluate(model, draws, device)
            if state.record(metrics[metric]):
                save_atomic(model.state_dict(), ckpt_path)
            state.end_epoch(epoch, save=state_due(args, epoch))
            print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {metric}="
                  f"{state.best:.4f} | lr={optimizer.param_groups[0]['lr']:.2e} | "
                  f"train_loss={train_loss:.4f} | {time.perf_counter() - start:.1f}s", flush=True)
            if logger is not None:  # visdom, metrics file, sample PNGs (reporting/run_logger.py)
                logger.epoch(epoch, {**metrics, "train_loss": train_loss,
                                     f"best_{metric}": state.best,
                                     "lr": optimizer.param_groups[0]["lr"]}, state.run_id)
                logger.samples(test_loader, device, model)
    print(f"Best {metric}={state.best:.6f}")
    return state.best
