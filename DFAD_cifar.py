"""DFAD on CIFAR-10/100: ResNet34_8x teacher -> ResNet18_8x student, GeneratorA (nz 256, 3x32x32).

Paper (Table 2): CIFAR-10 teacher 0.955, DFAD 0.933 +- 0.000; CIFAR-100 teacher 0.775, DFAD
0.677 +- 0.003. Defaults are the original's (docs/original-release.md#script-defaults).
"""
from __future__ import annotations

import argparse

from torch.optim import Optimizer
from torch.optim.lr_scheduler import MultiStepLR

from dataloader import CIFAR_MEAN, CIFAR_STD, DATASETS, get_dataloader
from engine.dfad import Recipe, distill, generator_loss_mae
from engine.evaluation import evaluate_classification
from engine.flags import add_dfad_args
from network import gan, resnet_8x
from reporting.run_logger import RunLogger
from reporting.sample_grids import ClassificationPanels, Denormalize
from runtime.checkpoint import load_teacher
from runtime.cli import help_example, run_main
from runtime.run_files import dump_config
from runtime.startup import setup_runtime

# docs/original-release.md#script-defaults: MultiStepLR, gamma 0.1; --step_size plays no part
MILESTONES = [100, 200]


def teacher_ckpt(dataset: str) -> str:
    """Where train_teacher.py saves (and the authors' release names) the --dataset's teacher."""
    return f"checkpoint/teacher/{dataset}-resnet34_8x.pt"


def make_scheduler(optimizer: Optimizer) -> MultiStepLR:
    """Stepped at epoch start, so the LR is already decayed in epochs 100 and 200
    (docs/original-release.md#the-training-loop)."""
    return MultiStepLR(optimizer, MILESTONES, gamma=0.1)


def make_recipe(dataset: str) -> Recipe:
    """What the CIFAR row changes in the shared loop: names, -MAE, accuracy, the schedule."""
    return Recipe(
        name=dataset,
        student_ckpt=f"checkpoint/student/{dataset}-resnet18_8x.pt",
        generator_loss=generator_loss_mae,
        evaluate=evaluate_classification,
        metric="acc",
        make_scheduler=make_scheduler,
        scheduler_at_epoch_start=True,
        compat_flags=("step_size",),  # the milestones are fixed
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DFAD CIFAR", **help_example(
        ".venv/bin/python DFAD_cifar.py --dataset cifar10 --scheduler --data_root data",
        ["checkpoint/student/cifar10-resnet18_8x{,-generator,-state}.pt",
         "log/DFAD-cifar10.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-cifar10/latest-<panel>.png"],
        note=f"Without --ckpt the teacher is the --dataset's: {teacher_ckpt('cifar10')} or "
             f"{teacher_ckpt('cifar100')}."))
    add_dfad_args(parser, datasets=("cifar10", "cifar100"), model="resnet18_8x",
                  ckpt=teacher_ckpt("cifar10"), batch_size=256, test_batch_size=128, epochs=500,
                  lr_S=0.1, weight_decay=5e-4, nz=256,
                  schedule=f"MultiStepLR({MILESTONES}, 0.1), stepped at the start of each epoch",
                  uses_step_size=False)
    # None = "not given": main() then picks the --dataset's teacher (the help shows cifar10's).
    parser.set_defaults(ckpt=None)
    return parser


def main(args: argparse.Namespace) -> list[float]:
    if args.ckpt is None:
        args.ckpt = teacher_ckpt(args.dataset)
        if args.dataset != "cifar10":
            print(f"no --ckpt given: using the {args.dataset} teacher {args.ckpt}")
    dump_config(args, f"log/DFAD-{args.dataset}.config.json")
    device = setup_runtime(args)
    num_classes = DATASETS[args.dataset].num_classes
    teacher = load_teacher(resnet_8x.ResNet34_8x(num_classes), args.ckpt, device)
    student = resnet_8x.ResNet18_8x(num_classes)
    generator = gan.GeneratorA(nz=args.nz, nc=3, img_size=32)
    _, test_loader = get_dataloader(args, train=False, device=device)
    logger = RunLogger.from_args(
        args, run=f"DFAD-{args.dataset}", env="DFAD-cifar",
        draw=ClassificationPanels(Denormalize(CIFAR_MEAN, CIFAR_STD), nz=args.nz))
    return distill(args, teacher, student, generator, test_loader, make_recipe(args.dataset),
                   device, logger)


if __name__ == "__main__":
    run_main(get_parser, main)
