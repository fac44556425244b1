"""DAFL (Chen et al., ICCV 2019) of Table 2 (MNIST), its authors' recipe: 200 epochs x 120
joint steps at batch 512 (paper, re-run by the DFAD authors: 0.981 +- 0.001).

The generator (GeneratorA's layers, BatchNorm eps 0.8 in two inner layers, Adam lr 0.2) is
trained to make the teacher confident (one-hot loss), to use all classes evenly (the entropy of
the batch-mean prediction, in log base 10 as the authors' code) and to excite the teacher's
features (activation loss); the student (LeNet5Half, Adam lr 2e-3) imitates the teacher on the
same batch with a KL divergence. The recipe and its sources: docs/table2-mnist.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/dafl_mnist.py`

import torch
import torch.nn.functional as F
from torch.optim import Adam, Optimizer

from baselines.common import mnist_experiment, prepare, run_epochs
from engine.dfad import Experiment, named, sample_noise
from engine.flags import add_health_args, add_run_args
from engine.objectives import Terms
from network import gan, lenet
from reporting.generator_health import GeneratorHealth
from runtime.cli import help_example, int_at_least, positive_float, run_main
from runtime.files import load_teacher
from runtime.speed import Precision, optimizer_options

WEIGHT_ONE_HOT, WEIGHT_ENTROPY, WEIGHT_ACTIVATION = 1.0, 5.0, 0.1


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DAFL baseline on MNIST", **help_example(
        ".venv/bin/python baselines/dafl_mnist.py --data_root data",
        ["checkpoint/baselines/dafl-mnist-lenet5_half{,-generator,-state}.pt",
         "log/DAFL-mnist.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DAFL-mnist/latest-<panel>.png"]))
    add = parser.add_argument
    add("--batch_size", type=int_at_least(2), default=512,
        help="generated samples per step (default: 512)")
    add("--epochs", type=int_at_least(1), default=200,
        help="number of epochs of --epoch_itrs steps (default: 200)")
    add("--epoch_itrs", type=int_at_least(1), default=120,
        help="joint steps per epoch (default: 120)")
    add("--lr_S", type=positive_float, default=2e-3, help="student Adam LR (default: 2e-3)")
    add("--lr_G", type=positive_float, default=0.2, help="generator Adam LR (default: 0.2)")
    add("--nz", type=int_at_least(1), default=100, help="generator latent size (default: 100)")
    add_run_args(parser, datasets=("mnist",), model="lenet5_half",
                 ckpt="checkpoint/teacher/mnist-lenet5.pt", test_batch_size=64)
    add_health_args(parser)
    return parser


def dafl_generator(nz: int) -> gan.GeneratorA:
    """GeneratorA's layers and keys, with eps 0.8 (the authors', a public-GAN quirk) in the
    BatchNorms after the 128->128 and 128->64 convolutions."""
    generator = gan.GeneratorA(nz=nz, nc=1, img_size=32)
    generator.conv_blocks1[1].eps = generator.conv_blocks2[1].eps = 0.8
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


def joint_step(exp: Experiment, optimizer_S: Optimizer, optimizer_G: Optimizer, z: torch.Tensor,
               precision: Precision) -> dict[str, torch.Tensor]:
    """One backward of the summed objectives, then both optimizers step (one objective: one
    loss scale). The frozen teacher passes the gradient to the generator; the student learns
    on the detached images. Returns loss_G, G_<term>, loss_S."""
    optimizer_G.zero_grad(set_to_none=True)
    optimizer_S.zero_grad(set_to_none=True)
    with precision.autocast():
        x = exp.generator(z)
        t, feature = exp.teacher(x, out_feature=True)
        s = exp.student(x.detach())
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
    teacher = load_teacher(lenet.LeNet5(), args.ckpt)
    student, generator = lenet.LeNet5Half(), dafl_generator(args.nz)
    return mnist_experiment(args, "DAFL", teacher, student, generator)


def main(args: argparse.Namespace) -> list[float]:
    exp, device = prepare(args, "DAFL", build)
    options = optimizer_options(args, device)  # Adam, default betas, no weight decay
    optimizer_S = Adam(exp.student.parameters(), lr=args.lr_S, **options)
    optimizer_G = Adam(exp.generator.parameters(), lr=args.lr_G, **options)
    precision = Precision(args.amp, device)
    parts = {"optimizer_S": optimizer_S, "optimizer_G": optimizer_G, "precision": precision}
    health = GeneratorHealth.from_args(args, exp.test_loader)
    return run_epochs(args, exp, device, parts, [], health, lambda: joint_step(
        exp, optimizer_S, optimizer_G, sample_noise(args.batch_size, args.nz, device), precision))

if __name__ == "__main__":
    run_main(get_parser, main)
