"""DAFL (Chen et al., ICCV 2019) of Table 2 (MNIST), its authors' recipe: 200 epochs x 120
joint steps at batch 512 (paper, re-run by the DFAD authors: 0.981 +- 0.001).

The generator (GeneratorA's layers, BatchNorm eps 0.8 in two inner layers, Adam lr 0.2) is
trained to make the teacher confident (one-hot loss), to use all classes evenly (the entropy of
the batch-mean prediction, in log base 10 as the authors' code) and to excite the teacher's
features (activation loss); the student (LeNet5Half, Adam lr 2e-3) imitates the teacher on the
same batch with a KL divergence. The recipe and its sources: docs/table2-mnist.md.

    python baselines/dafl_mnist.py --data_root data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/dafl_mnist.py`

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Adam, Optimizer

from baselines.common import add_mnist_args, mnist_experiment, place, run_epochs, start
from engine.dfad import Experiment, named, sample_noise
from engine.flags import add_health_args
from engine.objectives import Terms
from network import gan
from reporting.generator_health import GeneratorHealth
from reporting.run_logger import RunLogger, log_point
from runtime.cli import help_example, int_at_least, positive_float, run_main
from runtime.speed import Precision, optimizer_options

WEIGHT_ONE_HOT, WEIGHT_ENTROPY, WEIGHT_ACTIVATION = 1.0, 5.0, 0.1
INNER_BN_EPS = 0.8  # the two inner BatchNorms of the authors' generator (a public-GAN quirk)


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
    add_mnist_args(parser, test_batch_size=64)
    add_health_args(parser)
    return parser


def dafl_generator(nz: int) -> gan.GeneratorA:
    """GeneratorA's layers and keys, with eps 0.8 in the BatchNorms after the 128->128 and
    128->64 convolutions."""
    generator = gan.GeneratorA(nz=nz, nc=1, img_size=32)
    generator.conv_blocks1[1].eps = INNER_BN_EPS
    generator.conv_blocks2[1].eps = INNER_BN_EPS
    return generator


def generator_terms(t: torch.Tensor, feature: torch.Tensor) -> Terms:
    """The generator's objective from the teacher's logits and feature, with its three terms."""
    one_hot = F.cross_entropy(t, t.argmax(dim=1))
    mean_p = F.softmax(t, dim=1).mean(dim=0)
    entropy = (mean_p * torch.log10(mean_p)).sum()  # minimising it balances the classes
    activation = -feature.abs().mean()
    return {"loss": WEIGHT_ONE_HOT * one_hot + WEIGHT_ENTROPY * entropy
            + WEIGHT_ACTIVATION * activation,
            "one_hot": one_hot, "entropy": entropy, "activation": activation}


def student_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """KL(softmax(t) || softmax(s)) summed over classes, averaged over the batch, temperature 1."""
    return F.kl_div(F.log_softmax(s, dim=1), F.softmax(t, dim=1), reduction="batchmean")


def joint_step(teacher: nn.Module, student: nn.Module, generator: nn.Module,
               optimizer_S: Optimizer, optimizer_G: Optimizer, z: torch.Tensor,
               precision: Precision) -> dict[str, torch.Tensor]:
    """One backward of the summed objectives, then both optimizers step (one objective: one
    loss scale). The frozen teacher passes the gradient to the generator; the student learns
    on the detached images. Returns loss_G, G_<term>, loss_S."""
    optimizer_G.zero_grad(set_to_none=True)
    optimizer_S.zero_grad(set_to_none=True)
    with precision.autocast():
        x = generator(z)
        t, feature = teacher(x, out_feature=True)
        s = student(x.detach())
    terms_G = generator_terms(t.float(), feature.float())
    terms_S = {"loss": student_kl(s.float(), t.detach().float())}
    scaler = precision.scaler_S
    scaler.scale(terms_G["loss"] + terms_S["loss"]).backward()
    scaler.step(optimizer_G)
    scaler.step(optimizer_S)
    scaler.update()
    return {k: v.detach() for k, v in {**named(terms_G, "G"), **named(terms_S, "S")}.items()}


def build(args: argparse.Namespace) -> Experiment:
    """DFAD_mnist.py's networks and test set with DAFL's generator; no learning-rate schedule
    (the authors' recipe). Its step (`joint_step`) takes no objective from the experiment."""
    return mnist_experiment(args, "DAFL", lambda: dafl_generator(args.nz))


def train_one_epoch(args: argparse.Namespace, exp: Experiment, optimizer_S: Optimizer,
                    optimizer_G: Optimizer, precision: Precision, device: torch.device,
                    epoch: int, logger: RunLogger | None) -> dict[str, float]:
    """`--epoch_itrs` joint steps on fresh latents; the last logged losses."""
    exp.student.train()
    exp.generator.train()
    logged: dict[str, float] = {}
    for i in range(1, args.epoch_itrs + 1):
        z = sample_noise(args.batch_size, args.nz, device)
        losses = joint_step(exp.teacher, exp.student, exp.generator, optimizer_S, optimizer_G,
                            z, precision)
        if i % args.log_interval == 0 or i == args.epoch_itrs:
            logged = log_point(losses, epoch, i, args, logger)
    return logged


def main(args: argparse.Namespace) -> list[float]:
    device = start(args, "DAFL")
    exp = build(args)
    place(args, exp, device)
    options = optimizer_options(args, device)  # Adam, default betas, no weight decay
    optimizer_S = Adam(exp.student.parameters(), lr=args.lr_S, **options)
    optimizer_G = Adam(exp.generator.parameters(), lr=args.lr_G, **options)
    precision = Precision(args.amp, device)
    parts = {"student": exp.student, "generator": exp.generator, "optimizer_S": optimizer_S,
             "optimizer_G": optimizer_G, "precision": precision}
    health = GeneratorHealth.from_args(args, exp.test_loader)
    return run_epochs(args, exp, device, parts, [], health, lambda epoch, logger: train_one_epoch(
        args, exp, optimizer_S, optimizer_G, precision, device, epoch, logger))


if __name__ == "__main__":
    run_main(get_parser, main)
