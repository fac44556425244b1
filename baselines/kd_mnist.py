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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python baselines/kd_mnist.py`

from torch.optim.lr_scheduler import StepLR

from baselines.common import add_common_args, mnist_run
from baselines.sources import GaussianImages, RealImages
from dataloader import DATASETS
from engine.dfad import Recipe, distill
from engine.evaluation import evaluate_classification
from engine.flags import add_student_args
from network import lenet
from runtime.cli import help_example, run_main

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
    # DFAD_mnist.py's student side (engine/flags.py)
    add_student_args(parser, batch_size=512, epochs=40, lr_S=0.01, weight_decay=1e-4,
                     min_batch=1, batch_help="inputs per student step",
                     iteration="of 5 student steps",
                     scheduler_help="StepLR(--step_size, 0.1) on the student, as DFAD_mnist.py")
    add_common_args(parser, test_batch_size=256)
    # The loop's latent size: RANDOM's images are the latents themselves; KD-ORI ignores them.
    parser.set_defaults(nz=None, lr_G=None)
    return parser


def main(args: argparse.Namespace) -> list[float]:
    method = METHODS[args.inputs]
    args.nz = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2] if args.inputs == "random" else 1
    run = mnist_run(args, f"{method}-mnist", nz=args.nz)
    if args.inputs == "random":
        source = GaussianImages(IMAGE_SHAPE)
    else:
        train_set = DATASETS["mnist"].build(args.data_root, True, args.download)
        source = RealImages.from_dataset(train_set, seed=args.seed)
    recipe = Recipe(
        name="mnist",
        method=method,
        student_ckpt=f"checkpoint/baselines/{method.lower()}-mnist-lenet5_half.pt",
        generator_loss=None,
        evaluate=evaluate_classification,
        metric="acc",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, 0.1),
    )
    return distill(args, run.teacher, lenet.LeNet5Half(), source, run.test_loader, recipe,
                   run.device, run.logger)


if __name__ == "__main__":
    run_main(get_parser, main)
