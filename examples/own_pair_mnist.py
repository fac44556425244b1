"""DFAD on MNIST with a teacher and a student of your own (docs/extending.md, example 2).

Everything but `build` and the two classes comes from DFAD_mnist.py: the same flags, loop,
evaluation and logging. The run has its own names, so it never overwrites the LeNet5 run's
files. Save your trained teacher's `state_dict()` and pass it with --ckpt:

    .venv/bin/python examples/own_pair_mnist.py --ckpt checkpoint/teacher/mnist-my_teacher.pt \
        --data_root data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR

import DFAD_mnist
from dataloader import get_dataloader
from engine.dfad import Experiment, distill
from engine.evaluation import evaluate_classification
from network import gan
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime.cli import help_example, run_main
from runtime.device import setup
from runtime.files import load_teacher


class MyTeacher(nn.Module):
    """Your teacher: any module that maps 1x32x32 MNIST images to 10 logits."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MyStudent(MyTeacher):
    """Your student: here the teacher's layers at a quarter of the width."""

    def __init__(self) -> None:
        super().__init__(width=64)


def get_parser() -> argparse.ArgumentParser:
    parser = DFAD_mnist.get_parser()
    parser.description = "DFAD MNIST with your own teacher and student"
    parser.epilog = help_example(
        ".venv/bin/python examples/own_pair_mnist.py --ckpt "
        "checkpoint/teacher/mnist-my_teacher.pt --data_root data",
        ["checkpoint/student/mnist-my_student{,-generator,-state}.pt",
         "log/DFAD-mnist-my_student.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-mnist-my_student/latest-<panel>.png"])["epilog"]
    parser.set_defaults(ckpt="checkpoint/teacher/mnist-my_teacher.pt")
    return parser


def build(args: argparse.Namespace) -> Experiment:
    teacher = load_teacher(MyTeacher(), args.ckpt)  # strict: one line names what differs
    student = MyStudent()
    generator = gan.GeneratorA(nz=args.nz, nc=1, img_size=32)
    _, test_loader = get_dataloader(args, train=False)
    return Experiment(
        name="DFAD-mnist-my_student",  # log/DFAD-mnist-my_student.{csv,metrics.jsonl,...}
        student_ckpt="checkpoint/student/mnist-my_student.pt",
        teacher=teacher, student=student, generator=generator, test_loader=test_loader,
        evaluate=evaluate_classification, metric="acc",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, 0.1),
        panels=ClassificationPanels(MNIST_TO_UNIT, nz=args.nz),
    )


def main(args: argparse.Namespace) -> list[float]:
    device = setup(args)
    return distill(args, build(args), device)


if __name__ == "__main__":
    run_main(get_parser, main)
