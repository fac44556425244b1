"""DFAD on MNIST: LeNet5 teacher -> LeNet5Half student, GeneratorA (nz 100, 1x32x32).

Paper (Table 2): teacher 0.989, DFAD 0.983 +- 0.002. Defaults are the original's
(docs/original-release.md#script-defaults).
"""
from __future__ import annotations

import argparse

from torch.optim.lr_scheduler import StepLR

from dataloader import get_dataloader
from engine.dfad import Experiment, distill
from engine.evaluation import evaluate_classification
from engine.flags import add_dfad_args
from network import gan, lenet
from reporting.sample_grids import MNIST_TO_UNIT, ClassificationPanels
from runtime.cli import help_example, run_main
from runtime.device import setup
from runtime.files import load_teacher


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DFAD MNIST", **help_example(
        ".venv/bin/python DFAD_mnist.py --ckpt checkpoint/teacher/mnist-lenet5.pt --data_root "
        "data",
        ["checkpoint/student/mnist-lenet5_half{,-generator,-state}.pt",
         "log/DFAD-mnist.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-mnist/latest-<panel>.png"]))
    compat = add_dfad_args(parser, datasets=("mnist",), model="lenet5_half",
                           ckpt="checkpoint/teacher/mnist-lenet5.pt", batch_size=512,
                           test_batch_size=256, epochs=40, lr_S=0.01, weight_decay=1e-4, nz=100)
    compat.add_argument("--verbose", action="store_true", help="log lines are always printed")
    return parser


def build(args: argparse.Namespace) -> Experiment:
    """The MNIST experiment: networks (in the original's order of construction, which fixes
    their initial weights), the test set, the objectives and the output names."""
    teacher = load_teacher(lenet.LeNet5(), args.ckpt)
    student = lenet.LeNet5Half()
    generator = gan.GeneratorA(nz=args.nz, nc=1, img_size=32)
    _, test_loader = get_dataloader(args, train=False)
    return Experiment(
        name="DFAD-mnist",
        student_ckpt="checkpoint/student/mnist-lenet5_half.pt",
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
