"""What the MNIST baselines share: DFAD_mnist.py's networks and test set, and an epoch loop around
each one's own step; evaluation, checkpoints, state and logs are the engine's (engine/dfad.py)."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from dataloader import get_dataloader
from engine.dfad import Experiment, end_epoch, evaluate_epoch, place, test_only
from engine.evaluation import evaluate_classification
from reporting.generator_health import GeneratorHealth
from reporting.run_logger import RunLogger, log_point
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime import device as devices
from runtime.errors import UserError
from runtime.files import companion_path
from runtime.state import RunState, begin, step_schedulers


def prepare(args: argparse.Namespace, method: str,
            build: Callable[[argparse.Namespace], Experiment]) -> tuple[Experiment, torch.device]:
    """Seed and pick the device (one process only), build; the networks on the device with the
    run's speed-ups (a KD source stays on the CPU), then --stu_ckpt's student (and generator)."""
    if devices.launched_by_torchrun():
        raise UserError(f"{method} runs in one process (MNIST on one device): start it with "
                        "python, not torchrun")
    device = devices.setup(args)
    exp = build(args)
    place(args, exp, device)
    return exp, device


def mnist_experiment(args: argparse.Namespace, method: str, teacher: nn.Module,
                     student: nn.Module, generator: nn.Module) -> Experiment:
    """LeNet5 -> LeNet5Half on MNIST, best by test accuracy, saved as checkpoint/baselines/
    <method>-mnist-lenet5_half.pt; the generator is trained (DAFL) or a source of inputs (KD)."""
    return Experiment(
        name=f"{method}-mnist",
        student_ckpt=f"checkpoint/baselines/{method.lower()}-mnist-lenet5_half.pt",
        teacher=teacher, student=student, generator=generator,
        test_loader=get_dataloader(args, train=False)[1], evaluate=evaluate_classification,
        metric="acc", panels=ClassificationPanels(MNIST_TO_UNIT, nz=args.nz))


def run_epochs(args: argparse.Namespace, exp: Experiment, device: torch.device,
               parts: dict[str, Any], schedulers: list[LRScheduler],
               health: GeneratorHealth | None, step: Callable[[], dict[str, torch.Tensor]]
               ) -> list[float]:
    """Start, resume or refuse (the state: networks, a KD source's position, `parts`, health);
    per epoch: schedulers, --epoch_itrs calls of `step`, the test set, best student, state, logs."""
    if args.test_only:
        return [test_only(args, exp, device)]
    parts = {"student": exp.student, "generator": exp.generator, **parts,
             **({"health": health} if health is not None else {})}
    state = RunState(companion_path(exp.student_ckpt, "state"), args, parts, schedulers,
                     best_files=(exp.student_ckpt,), teacher=args.ckpt)
    if not begin(state, exp.name):
        return state.history
    logger = RunLogger.for_run(args, exp.name, exp.visdom_env, exp.panels, state)
    for epoch in range(state.epochs_done + 1, args.epochs + 1):
        start_time = time.perf_counter()
        step_schedulers(schedulers)
        exp.student.train()
        exp.generator.train()  # RealImages moves on in train mode only
        logged: dict[str, float] = {}
        for i in range(1, args.epoch_itrs + 1):
            losses = step()
            if i % args.log_interval == 0 or i == args.epoch_itrs:
                logged = log_point(losses, epoch, i, args, logger)
        metrics, gauges = evaluate_epoch(args, exp, health, epoch, device, test_latents=False)
        end_epoch(args, exp, state, logger, epoch, metrics, logged, gauges, start_time)
    print(f"Best {exp.metric}={state.best:.6f}")
    return state.history
