"""What the baseline entry scripts share: their common flags and the MNIST run set-up."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from dataloader import get_dataloader
from engine.flags import add_run_args
from network import lenet
from reporting.run_logger import RunLogger
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime import distributed
from runtime.checkpoint import load_teacher
from runtime.errors import UserError
from runtime.run_files import dump_config
from runtime.startup import setup_runtime

TEACHER_CKPT = "checkpoint/teacher/mnist-lenet5.pt"


def add_common_args(parser: argparse.ArgumentParser, *, test_batch_size: int) -> None:
    """The MNIST baselines' test set, networks' files and runtime flags (engine/flags.py)."""
    add_run_args(parser, datasets=("mnist",), model="lenet5_half", ckpt=TEACHER_CKPT,
                 test_batch_size=test_batch_size)


@dataclass
class MnistRun:
    teacher: nn.Module
    test_loader: DataLoader
    device: torch.device
    logger: RunLogger | None


def mnist_run(args: argparse.Namespace, run: str, nz: int) -> MnistRun:
    """Config dump, seed, device, the LeNet5 teacher, the test set and the run's logger."""
    if distributed.launched_by_torchrun():
        raise UserError(f"{run} runs in one process (MNIST on one device): start it with "
                        "python, not torchrun")
    dump_config(args, f"log/{run}.config.json")
    device = setup_runtime(args)
    teacher = load_teacher(lenet.LeNet5(), args.ckpt, device)
    _, test_loader = get_dataloader(args, train=False, device=device)
    logger = RunLogger.from_args(args, run=run, env=run,
                                 draw=ClassificationPanels(MNIST_TO_UNIT, nz=nz))
    return MnistRun(teacher, test_loader, device, logger)
