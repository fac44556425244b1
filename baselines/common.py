"""What the baseline entry scripts share: their common flags and the MNIST run set-up."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from dataloader import get_dataloader
from network import lenet
from reporting.run_logger import RunLogger
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime import distributed
from runtime.checkpoint import load_teacher
from runtime.cli import add_runtime_args, int_at_least
from runtime.errors import UserError
from runtime.precision import add_original_numerics_arg, add_speed_args
from runtime.run_files import dump_config
from runtime.startup import setup_runtime

TEACHER_CKPT = "checkpoint/teacher/mnist-lenet5.pt"


def add_common_args(parser: argparse.ArgumentParser, *, test_batch_size: int) -> None:
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=test_batch_size,
                        help=f"batch size of the real test set (default: {test_batch_size})")
    parser.add_argument("--data_root", default="data", help="dataset folder (default: data)")
    parser.add_argument("--dataset", choices=("mnist",), default="mnist", help="default: mnist")
    parser.add_argument("--model", choices=("lenet5_half",), default="lenet5_half",
                        help="the student (a label: the script fixes the architecture)")
    parser.add_argument("--ckpt", default=TEACHER_CKPT,
                        help=f"teacher state_dict (default: {TEACHER_CKPT})")
    parser.add_argument("--stu_ckpt", default=None,
                        help="start from this student state_dict (and its -generator.pt)")
    add_runtime_args(parser)
    add_speed_args(parser)
    add_original_numerics_arg(parser)


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
