"""DFAD on CIFAR with DeepInversion's BatchNorm-statistics term added to the generator's
objective (docs/extending.md, example 1).

The generator still maximises the student-teacher MAE, and is also asked to make the batches
the teacher's BatchNorm layers see look like the training data they kept statistics of (Yin et
al., CVPR 2020): the sum over those layers of ||mean - running_mean|| + ||var - running_var||.
Forward hooks on the teacher read its features; the term is logged as G_bn. Everything else is
DFAD_cifar.py: the same flags (and --bn_weight), loop, evaluation and logs, under names of its
own.

    .venv/bin/python examples/bn_statistics_cifar.py --dataset cifar10 --scheduler \
        --bn_weight 0.1 --data_root data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import torch
from torch import nn

import DFAD_cifar
from engine.dfad import Experiment, distill
from engine.objectives import Terms, generator_mae
from runtime.cli import help_example, run_main
from runtime.device import setup


class BatchNormStatistics:
    """Forward hooks on every BatchNorm2d of `model`: after a forward, `loss()` is how far that
    batch's per-channel feature statistics are from the layers' running ones."""

    def __init__(self, model: nn.Module) -> None:
        self.distances: list[torch.Tensor] = []
        model.register_forward_pre_hook(lambda module, inputs: self.distances.clear())
        for layer in model.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.register_forward_hook(self.record)

    def record(self, layer: nn.BatchNorm2d, inputs: tuple[torch.Tensor], output: torch.Tensor
               ) -> None:
        x = inputs[0].float()
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        self.distances.append(torch.linalg.vector_norm(mean - layer.running_mean)
                              + torch.linalg.vector_norm(var - layer.running_var))

    def loss(self) -> torch.Tensor:
        return torch.stack(self.distances).sum()


def get_parser() -> argparse.ArgumentParser:
    parser = DFAD_cifar.get_parser()
    parser.description = "DFAD CIFAR with DeepInversion's BatchNorm-statistics term"
    parser.epilog = help_example(
        ".venv/bin/python examples/bn_statistics_cifar.py --dataset cifar10 --scheduler "
        "--bn_weight 0.1 --data_root data",
        ["checkpoint/student/<dataset>-resnet18_8x-bn{,-generator,-state}.pt",
         "log/DFAD-<dataset>-bn.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-<dataset>-bn/latest-<panel>.png"])["epilog"]
    parser.add_argument("--bn_weight", type=float, default=0.1,
                        help="weight of the BatchNorm-statistics term (default: 0.1)")
    return parser


def build(args: argparse.Namespace) -> Experiment:
    exp = DFAD_cifar.build(args)
    statistics = BatchNormStatistics(exp.teacher)

    def generator_objective(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> Terms:
        bn = statistics.loss()  # of the teacher's forward on this very batch
        return {"loss": generator_mae(x, s, t) + args.bn_weight * bn, "bn": bn}

    exp.generator_objective = generator_objective
    exp.name = f"DFAD-{args.dataset}-bn"  # log/DFAD-cifar10-bn.*: never the plain run's files
    exp.student_ckpt = f"checkpoint/student/{args.dataset}-resnet18_8x-bn.pt"
    return exp


def main(args: argparse.Namespace) -> list[float]:
    device = setup(args)
    return distill(args, build(args), device)


if __name__ == "__main__":
    run_main(get_parser, main)
