"""The adversarial distillation loop of DFAD (docs/original-release.md#the-method,
#the-training-loop), shared by every DFAD_*.py script.

Per iteration: 5 student steps on detached generator samples (imitation), then 1 generator step
through teacher and student (generation). After each epoch of `--epoch_itrs` iterations the
student is evaluated on the real test set, the best student and its generator are saved under
the original file names, and the epoch's state is written. What an experiment is (networks,
objectives, metric, schedule, names) comes from its `build(args)` as an `Experiment`.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from engine.evaluation import Evaluate, eval_mode
from engine.objectives import Objective, Terms, as_terms, generator_mae, student_l1
from reporting.generator_health import GeneratorHealth
from reporting.results_csv import append_csv_row
from reporting.run_logger import DrawPanels, RunLogger, format_metrics, log_point
from runtime import device as devices
from runtime import original_numerics
from runtime.errors import UserError
from runtime.files import companion_path, load_weights
from runtime.speed import Precision, optimizer_options, speed_up
from runtime.state import RunState, begin, run_flags, step_schedulers

STUDENT_STEPS_PER_ITERATION = 5  # hard-coded in every original DFAD script
STUDENT_MOMENTUM = 0.9  # hard-coded; --momentum is ignored (docs/original-release.md)


@dataclass
class Experiment:
    """What `build(args)` returns: everything that says what a DFAD experiment is."""

    name: str  # the run: log/<name>.{csv,metrics.jsonl,config.json,visdom.log}, results/<name>/
    student_ckpt: str  # the best student; its generator beside it as <stem>-generator.pt
    teacher: nn.Module  # loaded and frozen (runtime.files.load_teacher)
    student: nn.Module
    generator: nn.Module
    test_loader: DataLoader
    evaluate: Evaluate
    metric: str  # the key of evaluate()'s result that selects the best student
    make_scheduler: Callable[[Optimizer], LRScheduler] | None = None  # with --scheduler
    scheduler_at_epoch_start: bool = True  # classification; segmentation steps at epoch end
    generator_objective: Objective = generator_mae
    student_objective: Objective = student_l1
    panels: DrawPanels | None = None  # the sample images of each evaluation
    visdom_env: str = ""  # default: the name


def sample_noise(batch_size: int, nz: int, device: torch.device) -> torch.Tensor:
    """Fresh N(0, I) latents for every step
    (docs/original-release.md#step-order-and-fresh-noise)."""
    return torch.randn(batch_size, nz, 1, 1, device=device)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters take no gradient inside the block; gradients still flow to the input."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def student_step(teacher: nn.Module, student: nn.Module, generator: nn.Module,
                 optimizer: Optimizer, z: torch.Tensor, objective: Objective,
                 precision: Precision) -> Terms:
    """Imitation: one SGD step of the student towards the teacher on a generated batch. The
    generator is in train mode, so its BatchNorm statistics move here too
    (docs/original-release.md#batchnorm-side-effects)."""
    with precision.autocast():
        with torch.no_grad():  # the same values as the original's detach
            x = generator(z)
            t = teacher(x)
        s = student(x)
    terms = as_terms(objective(x, s.float(), t.float()))
    optimizer.zero_grad(set_to_none=True)
    precision.backward_step(terms["loss"], optimizer, precision.scaler_S)
    return {k: v.detach() for k, v in terms.items()}


def generator_step(teacher: nn.Module, student: nn.Module, generator: nn.Module,
                   optimizer: Optimizer, z: torch.Tensor, objective: Objective,
                   precision: Precision) -> Terms:
    """Generation: one Adam step of the generator towards samples where S and T disagree. The
    gradient flows through both networks; the student's parameters take none, but its
    BatchNorm statistics absorb this batch (docs/original-release.md#gradient-hygiene)."""
    optimizer.zero_grad(set_to_none=True)
    with frozen(student), devices.no_sync(student):
        with precision.autocast():
            x = generator(z)
            s, t = student(x), teacher(x)
        terms = as_terms(objective(x, s.float(), t.float()))
        precision.backward_step(terms["loss"], optimizer, precision.scaler_G)
    return {k: v.detach() for k, v in terms.items()}


def train_one_epoch(args: argparse.Namespace, exp: Experiment, student: nn.Module,
                    generator: nn.Module, optimizer_S: Optimizer, optimizer_G: Optimizer,
                    precision: Precision, device: torch.device, epoch: int,
                    logger: RunLogger | None) -> dict[str, float]:
    """`--epoch_itrs` iterations of [5 student steps, 1 generator step]; the last logged
    losses. `student` and `generator` are the DDP-wrapped networks under torchrun."""
    exp.teacher.eval()
    student.train()
    generator.train()
    batch = devices.local_batch(args.batch_size)
    logged: dict[str, float] = {}
    for i in range(1, args.epoch_itrs + 1):
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            z = sample_noise(batch, args.nz, device)
            terms_S = student_step(exp.teacher, student, generator, optimizer_S, z,
                                   exp.student_objective, precision)
        z = sample_noise(batch, args.nz, device)
        terms_G = generator_step(exp.teacher, student, generator, optimizer_G, z,
                                 exp.generator_objective, precision)
        if i % args.log_interval == 0 or i == args.epoch_itrs:
            losses = {**named(terms_G, "G"), **named(terms_S, "S")}
            logged = log_point(losses, epoch, i, args, logger)
    return logged


def named(terms: Terms, side: str) -> Terms:
    """loss -> loss_G / loss_S (the original's names), any other term -> G_<term> / S_<term>."""
    return {(f"loss_{side}" if k == "loss" else f"{side}_{k}"): v for k, v in terms.items()}


def distill(args: argparse.Namespace, exp: Experiment, device: torch.device) -> list[float]:
    """The whole run: set-up, epochs (train, evaluate, save, log), the CSV row. Returns the
    per-epoch metric list. Under torchrun every rank trains its slice of each batch; rank 0
    evaluates and writes."""
    if args.test_only:
        return [test_only(args, exp, device)]
    place(args, exp, device)
    student, generator = exp.student, exp.generator
    options = optimizer_options(args, device)
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, momentum=STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay, **options)
    optimizer_G = Adam(generator.parameters(), lr=args.lr_G, **options)
    # The same schedule drives both optimizers (docs/original-release.md#scheduler-timing).
    schedulers = ([exp.make_scheduler(optimizer_S), exp.make_scheduler(optimizer_G)]
                  if args.scheduler and exp.make_scheduler else [])
    precision = Precision(args.amp, device)
    health = GeneratorHealth.from_args(args, exp.test_loader) if devices.is_main() else None
    parts = {"student": student, "generator": generator, "optimizer_S": optimizer_S,
             "optimizer_G": optimizer_G, "precision": precision,
             **({"health": health} if health is not None else {})}
    state = RunState(companion_path(exp.student_ckpt, "state"), args, parts, schedulers,
                     best_files=(exp.student_ckpt,), teacher=args.ckpt)
    student_ddp = devices.ddp(student, device, args.sync_bn)
    generator_ddp = devices.ddp(generator, device, args.sync_bn)
    if not begin(state, exp.name):
        return state.history
    logger = RunLogger.for_run(args, exp.name, exp.visdom_env, exp.panels, state)
    for epoch in range(state.epochs_done + 1, args.epochs + 1):
        start = time.perf_counter()
        if exp.scheduler_at_epoch_start:
            step_schedulers(schedulers)
        lr = optimizer_S.param_groups[0]["lr"]  # this epoch's, also when stepped at its end
        losses = train_one_epoch(args, exp, student_ddp, generator_ddp, optimizer_S,
                                 optimizer_G, precision, device, epoch, logger)
        if not exp.scheduler_at_epoch_start:
            step_schedulers(schedulers)
        if devices.is_main():
            metrics, health_values = evaluate_epoch(args, exp, health, epoch, device)
            end_epoch(args, exp, state, logger, epoch, metrics, losses, health_values, start,
                      lr)
    if devices.is_main():
        print(f"Best {exp.metric}={state.best:.6f}")  # the original's last line
    return state.history


def trained(generator: nn.Module) -> bool:
    """Whether the generator has weights to train and save (not a KD baseline's input source)."""
    return any(True for _ in generator.parameters())


def place(args: argparse.Namespace, exp: Experiment, device: torch.device) -> None:
    """The networks on `device` with the run's speed-ups (a KD input source stays where it is),
    then --stu_ckpt's student and, where it has one beside it, its generator."""
    speed_up(args, device, exp.teacher, exp.student,
             *([exp.generator] if trained(exp.generator) else []))
    if args.stu_ckpt:
        load_weights(exp.student, args.stu_ckpt)
        generator = companion_path(args.stu_ckpt, "generator")
        if trained(exp.generator) and Path(generator).is_file():
            load_weights(exp.generator, generator)


def evaluate_epoch(args: argparse.Namespace, exp: Experiment, health: GeneratorHealth | None,
                   epoch: int, device: torch.device, test_latents: bool = True
                   ) -> tuple[dict[str, float], dict]:
    """The student on the real test set, and the generator's health on its fixed batch.
    `test_latents`: under --original_numerics, draw the latent batch per test batch that the
    original DFAD's test() drew (the baselines, not the original's code, draw none)."""
    nz = args.nz if test_latents else None
    batches, rng = original_numerics.test_batches(args, exp.test_loader, nz, device)
    with eval_mode(exp.student, exp.generator), rng:
        metrics = exp.evaluate(exp.student, batches, device)
    if health is None:
        return metrics, {}
    with eval_mode(exp.teacher, exp.student, exp.generator):
        values = health.measure(exp.teacher, exp.student, exp.generator, device)
    health.watch(epoch, values)
    return metrics, values


def end_epoch(args: argparse.Namespace, exp: Experiment, state: RunState, logger: RunLogger,
              epoch: int, metrics: dict[str, float], losses: dict[str, float], health: dict,
              start: float, lr: float | None = None) -> None:
    """Rank 0, after each evaluation: the log, the CSV row after the last epoch, then the state
    with a new best student (and its generator, when it has weights) under the original names,
    in one atomic group. A kill before the state redoes the epoch (its log line and row again).
    `lr`: the student's LR this epoch trained with (default: the optimizer's now)."""
    best = []
    if state.end_epoch(metrics[exp.metric]):
        best.append((exp.student.state_dict(), exp.student_ckpt))
        if trained(exp.generator):
            best.append((exp.generator.state_dict(),
                         companion_path(exp.student_ckpt, "generator")))
    if lr is None:
        lr = state.parts["optimizer_S"].param_groups[0]["lr"]
    logger.epoch(epoch, exp.metric, metrics, losses, health, state, lr,
                 time.perf_counter() - start)
    if epoch == args.epochs:
        teacher = {"teacher_sha256": state.teacher_sha256[:16]} if state.teacher_sha256 else {}
        append_csv_row(f"log/{exp.name}.csv", state.history, state.run_id,
                       {**run_flags(args), **teacher})  # runs of other teachers never pool
    state.save(*best)
    device = next(exp.student.parameters()).device
    logger.samples(exp.test_loader, device, exp.student, exp.teacher, exp.generator)


def test_only(args: argparse.Namespace, exp: Experiment, device: torch.device) -> float:
    """`--test_only`: the student of `--stu_ckpt`, or this run's best one; writes nothing."""
    path = args.stu_ckpt or exp.student_ckpt
    if not Path(path).is_file():
        raise UserError(f"no trained student at {path}: train one first, or pass --stu_ckpt")
    load_weights(exp.student, path)
    metrics = exp.evaluate(exp.student.to(device), exp.test_loader, device)
    print(f"Test ({path}): {format_metrics(metrics)}")
    return metrics[exp.metric]
