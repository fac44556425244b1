"""KD-ORI and RANDOM of Table 2 (MNIST): DFAD's student side on real or random inputs.

Everything but the inputs is DFAD's MNIST student: LeNet5Half, SGD (momentum 0.9) at lr 0.01,
weight decay 1e-4, batch 512, 40 epochs x 50 iterations x 5 student steps, the L1 distance of
raw logits to the teacher's. `--inputs original`: MNIST training images with the test transform,
reshuffled every pass (paper: 0.988 +- 0.001). `--inputs random`: N(0, 1) images in the
normalised input space, fresh every step (paper: 0.747 +- 0.033).

    python baselines/kd_mnist.py --inputs original --data_root data
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/kd_mnist.py`

import torch
from torch import nn
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import StepLR

from baselines.common import add_mnist_args, mnist_experiment, place, run_epochs, start
from baselines.sources import GaussianImages, RealImages
from dataloader import DATASETS
from engine import dfad
from engine.dfad import Experiment
from engine.flags import add_student_args
from reporting.run_logger import RunLogger, log_point
from runtime.cli import help_example, run_main
from runtime.speed import Precision, optimizer_options

IMAGE_SHAPE = (1, 32, 32)
METHODS = {"original": "KD_ORI", "random": "RANDOM"}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="KD-ORI / RANDOM baselines on MNIST", **help_example(
            ".venv/bin/python baselines/kd_mnist.py --inputs original --data_root data",
            ["checkpoint/baselines/kd_ori-mnist-lenet5_half{,-state}.pt",
             "log/KD_ORI-mnist.{csv,metrics.jsonl,config.json,visdom.log}",
             "results/KD_ORI-mnist/latest-<panel>.png"],
            note="--inputs random writes the same files, with random / RANDOM for kd_ori / "
                 "KD_ORI."))
    parser.add_argument("--inputs", choices=tuple(METHODS), required=True,
                        help="original: MNIST training images (KD-ORI); random: N(0, 1) "
                             "images (RANDOM)")
    add_student_args(parser, batch_size=512, epochs=40, lr_S=0.01, weight_decay=1e-4,
                     min_batch=1, batch_help="inputs per student step",
                     iteration="of 5 student steps",
                     scheduler_help="StepLR(--step_size, 0.1) on the student, as DFAD_mnist.py")
    add_mnist_args(parser, test_batch_size=256)
    return parser


def source(args: argparse.Namespace) -> nn.Module:
    if args.inputs == "random":
        return GaussianImages(IMAGE_SHAPE)
    return RealImages.from_dataset(DATASETS["mnist"].build(args.data_root, True, args.download),
                                   seed=args.seed)


def build(args: argparse.Namespace) -> Experiment:
    """DFAD_mnist.py's experiment with a source of inputs as its generator. Sets args.nz, the
    latent size the loop draws: RANDOM's images are the latents, KD-ORI reads only their count."""
    args.nz = math.prod(IMAGE_SHAPE) if args.inputs == "random" else 1
    return mnist_experiment(args, METHODS[args.inputs], lambda: source(args),
                            generator_first=True, make_scheduler=lambda opt: StepLR(opt, args.step_size, 0.1))


def train_one_epoch(args: argparse.Namespace, exp: Experiment, optimizer_S: Optimizer,
                    precision: Precision, device: torch.device, epoch: int,
                    logger: RunLogger | None) -> dict[str, float]:
    """`--epoch_itrs` iterations of 5 of DFAD's student steps, the source in the generator's
    place (in train mode: RealImages moves on); the last logged loss."""
    exp.student.train()
    exp.generator.train()
    logged: dict[str, float] = {}
    for i in range(1, args.epoch_itrs + 1):
        for _ in range(dfad.STUDENT_STEPS_PER_ITERATION):
            z = dfad.sample_noise(args.batch_size, args.nz, device)
            terms = dfad.student_step(exp.teacher, exp.student, exp.generator, optimizer_S, z,
                                      exp.student_objective, precision)
        if i % args.log_interval == 0 or i == args.epoch_itrs:
            logged = log_point(dfad.named(terms, "S"), epoch, i, args, logger)
    return logged


def main(args: argparse.Namespace) -> list[float]:
    device = start(args, METHODS[args.inputs])
    exp = build(args)
    place(args, exp, device)
    optimizer_S = SGD(exp.student.parameters(), lr=args.lr_S, momentum=dfad.STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay, **optimizer_options(args, device))
    schedulers = [exp.make_scheduler(optimizer_S)] if args.scheduler else []
    precision = Precision(args.amp, device)
    # The source is part of the state: RealImages' position resumes with it.
    parts = {"student": exp.student, "generator": exp.generator, "optimizer_S": optimizer_S,
             "precision": precision}
    return run_epochs(args, exp, device, parts, schedulers, None, lambda epoch, logger:
                      train_one_epoch(args, exp, optimizer_S, precision, device, epoch, logger))


if __name__ == "__main__":
    run_main(get_parser, main)
