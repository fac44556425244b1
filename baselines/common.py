"""What the MNIST baselines share: their flags, their experiment (the DFAD MNIST networks and
test set) and their epoch loop, in which each baseline's own `train_one_epoch` runs; evaluation,
checkpoints, the state and the logs are the DFAD engine's (engine/dfad.py)."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from dataloader import get_dataloader
from engine.dfad import Experiment, end_epoch, evaluate_epoch, test_only
from engine.evaluation import evaluate_classification
from engine.flags import add_run_args
from network import lenet
from reporting.generator_health import GeneratorHealth
from reporting.run_logger import RunLogger
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime import device as devices
from runtime.errors import UserError
from runtime.files import companion_path, load_teacher, load_weights
from runtime.speed import speed_up
from runtime.state import RunState, begin, step_schedulers

# (epoch, logger) -> the epoch's last logged losses
TrainOneEpoch = Callable[[int, RunLogger | None], dict[str, float]]


def add_mnist_args(parser: argparse.ArgumentParser, *, test_batch_size: int) -> None:
    add_run_args(parser, datasets=("mnist",), model="lenet5_half",
                 ckpt="checkpoint/teacher/mnist-lenet5.pt", test_batch_size=test_batch_size)


def start(args: argparse.Namespace, method: str) -> torch.device:
    """Seed and pick the device. One process only: nothing here splits a batch over ranks."""
    if devices.launched_by_torchrun():
        raise UserError(f"{method} runs in one process (MNIST on one device): start it with "
                        "python, not torchrun")
    return devices.setup(args)


def mnist_experiment(args: argparse.Namespace, method: str,
                     make_generator: Callable[[], nn.Module], generator_first: bool = False,
                     **fields: Any) -> Experiment:
    """LeNet5 teacher -> LeNet5Half student on MNIST, best by test accuracy, saved as
    checkpoint/baselines/<method>-mnist-lenet5_half.pt; the generator is a trained one (DAFL)
    or a fixed source of inputs (KD). The order of construction fixes the initial weights:
    KD's source (reading its images draws a loader seed) comes before the student."""
    teacher = load_teacher(lenet.LeNet5(), args.ckpt)
    if generator_first:
        generator, student = make_generator(), lenet.LeNet5Half()
    else:
        student, generator = lenet.LeNet5Half(), make_generator()
    _, test_loader = get_dataloader(args, train=False)
    return Experiment(
        name=f"{method}-mnist",
        student_ckpt=f"checkpoint/baselines/{method.lower()}-mnist-lenet5_half.pt",
        teacher=teacher, student=student, generator=generator, test_loader=test_loader,
        evaluate=evaluate_classification, metric="acc",
        panels=ClassificationPanels(MNIST_TO_UNIT, nz=args.nz), **fields)


def place(args: argparse.Namespace, exp: Experiment, device: torch.device) -> None:
    """The networks on `device` with the run's speed-ups (a source of inputs is only moved),
    then --stu_ckpt's student (and its generator, where one is trained) to start from."""
    trained = any(True for _ in exp.generator.parameters())
    speed_up(args, device, exp.teacher, exp.student, *([exp.generator] if trained else []))
    exp.generator.to(device)
    if args.stu_ckpt:
        load_weights(exp.student, args.stu_ckpt)
        generator = companion_path(args.stu_ckpt, "generator")
        if trained and Path(generator).is_file():
            load_weights(exp.generator, generator)


def run_epochs(args: argparse.Namespace, exp: Experiment, device: torch.device,
               parts: dict[str, Any], schedulers: list[LRScheduler],
               health: GeneratorHealth | None, train_one_epoch: TrainOneEpoch) -> list[float]:
    """Start, resume or refuse (`parts` is what the state file holds), then per epoch: the
    schedulers, `train_one_epoch`, the test set, the best student, the state, the logs. Returns
    the per-epoch accuracies."""
    if args.test_only:
        return [test_only(args, exp, device)]
    state = RunState(companion_path(exp.student_ckpt, "state"), args,
                     {**parts, **({"health": health} if health is not None else {})},
                     schedulers, best_files=(exp.student_ckpt,), teacher=args.ckpt)
    if not begin(state, exp.name):
        return state.history
    logger = RunLogger.for_run(args, exp.name, exp.visdom_env, exp.panels, state)
    for epoch in range(state.epochs_done + 1, args.epochs + 1):
        start_time = time.perf_counter()
        step_schedulers(schedulers)
        losses = train_one_epoch(epoch, logger)
        metrics, health_values = evaluate_epoch(args, exp, health, epoch, device,
                                               test_latents=False)
        end_epoch(args, exp, state, logger, epoch, metrics, losses, health_values, start_time)
    return state.history
