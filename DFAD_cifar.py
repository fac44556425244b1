"""DFAD on CIFAR-10/100: ResNet34_8x teacher -> ResNet18_8x student, GeneratorA (nz 256, 3x32x32).

Paper (Table 2): CIFAR-10 teacher 0.955, DFAD 0.933 +- 0.000; CIFAR-100 teacher 0.775, DFAD
0.677 +- 0.003. Defaults are the original's (docs/original-release.md#script-defaults).
"""
from __future__ import annotations

import argparse

from torch.optim.lr_scheduler import MultiStepLR

from dataloader import CIFAR_MEAN, CIFAR_STD, DATASETS, get_dataloader
from engine.dfad import Experiment, distill
from engine.evaluation import evaluate_classification
from engine.flags import add_dfad_args
from network import gan, resnet_8x
from reporting.sample_grids import ClassificationPanels, Denormalize
from runtime.cli import help_example, run_main
from runtime.device import setup
from runtime.files import load_teacher

# MultiStepLR, gamma 0.1, stepped at epoch start: the LR is already decayed in epochs 100 and 200
# (docs/original-release.md#script-defaults, #the-training-loop); --step_size plays no part.
MILESTONES = [100, 200]
TEACHER = "checkpoint/teacher/{}-resnet34_8x.pt"  # train_teacher.py's (and the release's) name


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DFAD CIFAR", **help_example(
        ".venv/bin/python DFAD_cifar.py --dataset cifar10 --scheduler --data_root data",
        ["checkpoint/student/cifar10-resnet18_8x{,-generator,-state}.pt",
         "log/DFAD-cifar10.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-cifar10/latest-<panel>.png"]))
    add_dfad_args(parser, datasets=("cifar10", "cifar100"), model="resnet18_8x",
                  ckpt=TEACHER.format("<dataset>"), batch_size=256, test_batch_size=128,
                  epochs=500, lr_S=0.1, weight_decay=5e-4, nz=256,
                  schedule=f"MultiStepLR({MILESTONES}, 0.1), stepped at the start of each epoch",
                  uses_step_size=False)
    parser.set_defaults(ckpt=None)  # not given: build() takes the --dataset's teacher
    return parser


def build(args: argparse.Namespace) -> Experiment:
    """The networks in the original's order (which fixes their initial weights), the test set,
    the names. Without --ckpt, the --dataset's teacher (args.ckpt names it in config and state)."""
    if args.ckpt is None:
        args.ckpt = TEACHER.format(args.dataset)
        if args.dataset != "cifar10":
            print(f"no --ckpt given: using the {args.dataset} teacher {args.ckpt}")
    num_classes = DATASETS[args.dataset].num_classes
    teacher = load_teacher(resnet_8x.ResNet34_8x(num_classes), args.ckpt)
    student = resnet_8x.ResNet18_8x(num_classes)
    generator = gan.GeneratorA(nz=args.nz, nc=3, img_size=32)
    _, test_loader = get_dataloader(args, train=False)
    return Experiment(
        name=f"DFAD-{args.dataset}",
        student_ckpt=f"checkpoint/student/{args.dataset}-resnet18_8x.pt",
        teacher=teacher, student=student, generator=generator, test_loader=test_loader,
        evaluate=evaluate_classification, metric="acc",
        make_scheduler=lambda optimizer: MultiStepLR(optimizer, MILESTONES, gamma=0.1),
        panels=ClassificationPanels(Denormalize(CIFAR_MEAN, CIFAR_STD), nz=args.nz),
        visdom_env="DFAD-cifar",
    )


def main(args: argparse.Namespace) -> list[float]:
    device = setup(args)
    return distill(args, build(args), device)


if __name__ == "__main__":
    run_main(get_parser, main)
