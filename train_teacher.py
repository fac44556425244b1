"""Train a classification teacher from scratch on real data
(docs/original-release.md#classification-teacher-training)."""
from __future__ import annotations

import argparse

import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR

from dataloader import (
    CIFAR_MEAN,
    CIFAR_STD,
    DATASETS,
    check_num_classes,
    get_dataloader,
    num_classes,
)
from engine.evaluation import evaluate_classification
from engine.flags import add_teacher_args
from engine.teacher import TeacherRun, fit_teacher
from network import lenet, resnet_8x, torchvision_resnet
from reporting.sample_grids import (
    MINUS_ONE_TO_ONE,
    MNIST_TO_UNIT,
    ClassificationPanels,
    Denormalize,
)
from runtime.cli import help_example, run_main
from runtime.device import setup
from runtime.errors import UserError
from runtime.files import load_weights

MODELS = ("lenet5", "resnet34_8x", "resnet34")
SEGMENTATION = ("camvid", "nyuv2")  # train_teacher_seg.py's


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a teacher network", **help_example(
        ".venv/bin/python train_teacher.py --batch_size 256 --epochs 10 --lr 0.01 --dataset "
        "mnist --model lenet5 --weight_decay 1e-4 --data_root data --download",
        ["checkpoint/teacher/mnist-lenet5{,-state}.pt",
         "log/teacher-mnist-lenet5.{metrics.jsonl,config.json,visdom.log}",
         "results/teacher-mnist-lenet5/latest-<panel>.png"],
        note="CamVid and NYUv2 teachers: train_teacher_seg.py."))
    add_teacher_args(parser, datasets=tuple(DATASETS), models=MODELS, batch_size=256,
                     test_batch_size=128, epochs=30, step_size=50,
                     scheduler_help="decay the LR by 0.1 every --step_size epochs, at the start "
                                    "of each epoch (the original README commands do not pass "
                                    "it: constant LR)")
    parser.add_argument("--pretrained", action="store_true",
                        help="--model resnet34 only: start from torchvision's ImageNet weights "
                             "(a new fc for the dataset's classes; the README trains from scratch)")
    parser.add_argument("--verbose", action="store_true", help="print every --log_interval batches")
    return parser


def build(args: argparse.Namespace) -> nn.Module:
    """The teacher, built after setup(args) seeded (fixing its initial weights); --ckpt's."""
    if args.dataset in SEGMENTATION:
        raise UserError(f"--dataset {args.dataset} is a segmentation dataset: train its teacher "
                        f"with train_teacher_seg.py --dataset {args.dataset}")
    if args.pretrained and args.model != "resnet34":
        raise UserError("--pretrained exists for --model resnet34 only")
    classes = num_classes(args)
    if args.model == "lenet5":
        if args.dataset != "mnist":
            raise UserError("--model lenet5 takes 1x32x32 MNIST images: use --dataset mnist")
        model = lenet.LeNet5(classes)
    elif args.model == "resnet34_8x":
        # docs/original-release.md#teacher-script-missing-cifar-model: the original called a
        # nonexistent network.resnet.resnet34 here.
        if args.dataset not in ("cifar10", "cifar100"):
            raise UserError("--model resnet34_8x takes 3x32x32 CIFAR images: "
                            "use --dataset cifar10 or cifar100")
        model = resnet_8x.ResNet34_8x(classes)
    else:
        if args.dataset != "caltech101":
            raise UserError("--model resnet34 is the 128 px Caltech101 teacher: "
                            "use --dataset caltech101 (resnet34_8x is the CIFAR one)")
        model = torchvision_resnet.resnet34(classes, pretrained=args.pretrained)
    return load_weights(model, args.ckpt) if args.ckpt else model


def main(args: argparse.Namespace) -> float:
    """Train (or with --test_only evaluate) the teacher; returns its best test accuracy."""
    device = setup(args)
    model = build(args)
    train_loader, test_loader = get_dataloader(args, train=not args.test_only)
    check_num_classes(test_loader, num_classes(args))
    # Test images shown as they look, whatever Normalize the dataset's loader applied.
    to_unit = {"mnist": MNIST_TO_UNIT, "cifar10": Denormalize(CIFAR_MEAN, CIFAR_STD),
               "cifar100": Denormalize(CIFAR_MEAN, CIFAR_STD)}.get(args.dataset, MINUS_ONE_TO_ONE)
    run = TeacherRun(
        name=f"teacher-{args.dataset}-{args.model}",
        ckpt=f"checkpoint/teacher/{args.dataset}-{args.model}.pt",
        loss_fn=F.cross_entropy, evaluate=evaluate_classification, metric="acc",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, 0.1),
        panels=ClassificationPanels(to_unit), visdom_env=f"teacher-{args.dataset}")
    return fit_teacher(args, run, model, train_loader, test_loader, device)


if __name__ == "__main__":
    run_main(get_parser, main)
