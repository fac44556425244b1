"""DAFL of Table 2 (MNIST), its authors' recipe: 200 epochs x 120 joint steps at batch 512.

Generator: GeneratorA's layers with BatchNorm eps 0.8 in two inner layers, Adam lr 0.2.
Student: LeNet5Half, Adam lr 2e-3, KL divergence to the teacher on the generated batch.
Paper (DFAD's Table 2, re-run by the DFAD authors): 0.981 +- 0.001.

    python baselines/dafl_mnist.py --data_root data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/dafl_mnist.py`

from baselines.common import add_common_args, mnist_run
from baselines.dafl import dafl_generator, dafl_optimizers, dafl_step
from engine.dfad import Recipe, distill
from engine.evaluation import evaluate_classification
from engine.flags import add_health_args
from network import lenet
from runtime.cli import help_example, int_at_least, positive_float, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DAFL baseline on MNIST", **help_example(
        ".venv/bin/python baselines/dafl_mnist.py --ckpt checkpoint/teacher/mnist-lenet5.pt "
        "--data_root data",
        ["checkpoint/baselines/dafl-mnist-lenet5_half{,-generator,-state}.pt",
         "log/DAFL-mnist.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DAFL-mnist/latest-<panel>.png"]))
    parser.add_argument("--batch_size", type=int_at_least(2), default=512,
                        help="generated samples per step (default: 512)")
    parser.add_argument("--epochs", type=int_at_least(1), default=200,
                        help="number of epochs of --epoch_itrs steps (default: 200)")
    parser.add_argument("--epoch_itrs", type=int_at_least(1), default=120,
                        help="joint steps per epoch (default: 120)")
    parser.add_argument("--lr_S", type=positive_float, default=2e-3,
                        help="student Adam learning rate (default: 2e-3)")
    parser.add_argument("--lr_G", type=positive_float, default=0.2,
                        help="generator Adam learning rate (default: 0.2)")
    parser.add_argument("--nz", type=int_at_least(1), default=100,
                        help="latent size of the generator (default: 100)")
    add_common_args(parser, test_batch_size=64)
    add_health_args(parser)
    parser.set_defaults(scheduler=False)  # no schedule on MNIST in the authors' recipe
    return parser


def main(args: argparse.Namespace) -> list[float]:
    run = mnist_run(args, "DAFL-mnist", nz=args.nz)
    recipe = Recipe(
        name="mnist",
        method="DAFL",
        student_ckpt="checkpoint/baselines/dafl-mnist-lenet5_half.pt",
        generator_loss=None,
        evaluate=evaluate_classification,
        metric="acc",
        student_steps=0,
        joint_step=dafl_step,
        make_optimizers=dafl_optimizers,
    )
    return distill(args, run.teacher, lenet.LeNet5Half(), dafl_generator(nz=args.nz),
                   run.test_loader, recipe, run.device, run.logger)


if __name__ == "__main__":
    run_main(get_parser, main)
