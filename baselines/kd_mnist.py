"""KD-ORI and RANDOM of Table 2 (MNIST): DFAD's student side on real or random inputs.

Everything but the inputs is DFAD's MNIST student: LeNet5Half, SGD (momentum 0.9) at lr 0.01,
weight decay 1e-4, batch 512, 40 epochs x 50 iterations x 5 student steps, the L1 distance of
raw logits to the teacher's. `--inputs original`: MNIST training images with the test transform,
reshuffled every pass (paper: 0.988 +- 0.001). `--inputs random`: N(0, 1) images in the
normalised input space, fresh every step (paper: 0.747 +- 0.033). The inputs stand in the
generator's place; with no parameters, nothing trains them and no generator file is written."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/kd_mnist.py`

import torch
from torch import nn
from torch.optim import SGD
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Dataset

from baselines.common import mnist_experiment, prepare, run_epochs
from dataloader import DATASETS
from engine import dfad
from engine.flags import add_run_args
from network import lenet
from runtime.cli import help_example, int_at_least, non_negative_float, positive_float, run_main
from runtime.files import load_teacher
from runtime.speed import Precision, optimizer_options

IMAGE_SHAPE = (1, 32, 32)
METHODS = {"original": "KD_ORI", "random": "RANDOM"}


class RealImages(nn.Module):
    """KD-ORI: the training images in a fresh order every pass (from the seed and the pass),
    batches running on across passes; only len(z) and z's device are read. The position, the
    buffer `drawn`, travels with the state file (a resumed run reads what an uninterrupted one
    would) and stays on the CPU (prepare() does not move a source): no GPU sync to read it. Only
    training-mode calls advance it: the eval-mode sample panel shows the next batch unconsumed."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        super().__init__()
        # every image through its own transform, once; not a buffer: not in checkpoints
        self.images = torch.cat([x for x, _ in DataLoader(dataset, batch_size=1000)])
        self.seed = seed
        self.register_buffer("drawn", torch.zeros((), dtype=torch.int64))
        self._order: tuple[int, torch.Tensor] | None = None  # (pass, its permutation)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of pass `epoch`, on the images' device."""
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.images), generator=g)
                           .to(self.images.device))
        return self._order[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.images.device != z.device:  # once: then every batch is a gather on the device
            self.images, self._order = self.images.to(z.device), None
        start, total = int(self.drawn), len(self.images)
        end = start + len(z)  # the batch runs on into the next pass, or several
        index = torch.cat([self.order(p) for p in range(start // total, (end - 1) // total + 1)])
        if self.training:
            self.drawn.fill_(end)
        return self.images[index[start % total:start % total + len(z)]]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="KD-ORI / RANDOM baselines on MNIST", **help_example(
            ".venv/bin/python baselines/kd_mnist.py --inputs original --data_root data",
            ["checkpoint/baselines/kd_ori-mnist-lenet5_half{,-state}.pt",
             "log/KD_ORI-mnist.{csv,metrics.jsonl,config.json,visdom.log}",
             "results/KD_ORI-mnist/latest-<panel>.png"],
            note="--inputs random writes the same files, with random / RANDOM for kd_ori / "
                 "KD_ORI."))
    add = parser.add_argument
    add("--inputs", choices=tuple(METHODS), required=True,
        help="original: MNIST training images (KD-ORI); random: N(0, 1) images (RANDOM)")
    add("--batch_size", type=int_at_least(1), default=512,
        help="inputs per student step (default: 512)")
    add("--epochs", type=int_at_least(1), default=40,
        help="number of 'epochs' of --epoch_itrs iterations (default: 40)")
    add("--epoch_itrs", type=int_at_least(1), default=50,
        help="iterations of 5 student steps per epoch (default: 50)")
    add("--lr_S", type=positive_float, default=0.01, help="student SGD LR (default: 0.01)")
    add("--weight_decay", type=non_negative_float, default=1e-4,
        help="student weight decay (default: 0.0001)")
    add("--scheduler", action="store_true",
        help="StepLR(--step_size, 0.1) on the student, as DFAD_mnist.py")
    add("--step_size", type=int_at_least(1), default=100,
        help="StepLR period in epochs, where the row uses StepLR (default: 100)")
    add_run_args(parser, datasets=("mnist",), model="lenet5_half",
                 ckpt="checkpoint/teacher/mnist-lenet5.pt", test_batch_size=256)
    return parser


def build(args: argparse.Namespace) -> dfad.Experiment:
    """DFAD_mnist.py's experiment with a source of inputs as its generator. Sets args.nz, the
    latent size the loop draws: RANDOM's images are the latents, KD-ORI reads only their count.
    The order of construction fixes the initial weights: the source (reading its images draws a
    loader seed) comes before the student."""
    args.nz = math.prod(IMAGE_SHAPE) if args.inputs == "random" else 1
    teacher = load_teacher(lenet.LeNet5(), args.ckpt)
    if args.inputs == "random":  # the N(0, 1) latents themselves, as images: fresh every step
        source: nn.Module = nn.Sequential(nn.Flatten(), nn.Unflatten(1, IMAGE_SHAPE))
    else:
        source = RealImages(DATASETS["mnist"].build(args.data_root, True, args.download), args.seed)
    return mnist_experiment(args, METHODS[args.inputs], teacher, lenet.LeNet5Half(), source)


def main(args: argparse.Namespace) -> list[float]:
    exp, device = prepare(args, METHODS[args.inputs], build)
    optimizer_S = SGD(exp.student.parameters(), lr=args.lr_S, momentum=dfad.STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay, **optimizer_options(args, device))
    schedulers = [StepLR(optimizer_S, args.step_size, 0.1)] if args.scheduler else []
    precision = Precision(args.amp, device)

    def step() -> dict[str, torch.Tensor]:
        """An iteration: 5 of DFAD's student steps, the source in the generator's place."""
        for _ in range(dfad.STUDENT_STEPS_PER_ITERATION):
            z = dfad.sample_noise(args.batch_size, args.nz, device)
            terms = dfad.student_step(exp.teacher, exp.student, exp.generator, optimizer_S, z,
                                      exp.student_objective, precision)
        return dfad.named(terms, "S")

    parts = {"optimizer_S": optimizer_S, "precision": precision}
    return run_epochs(args, exp, device, parts, schedulers, None, step)


if __name__ == "__main__":
    run_main(get_parser, main)
