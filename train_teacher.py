"""Train a classification teacher from scratch on real data
(docs/original-release.md#classification-teacher-training)."""
from __future__ import annotations

import argparse

import torch.nn.functional as F
from torch import nn
from torch.optim import SGD
from torch.optim.lr_scheduler import StepLR

from dataloader import CIFAR_MEAN, CIFAR_STD, DATASETS, check_num_classes, get_dataloader
from engine.evaluation import evaluate_classification
from engine.teacher import fit_teacher
from network import lenet, resnet_8x, torchvision_resnet
from reporting.run_logger import RunLogger
from reporting.sample_grids import (
    MINUS_ONE_TO_ONE,
    MNIST_TO_UNIT,
    ClassificationPanels,
    Denormalize,
)
from runtime.checkpoint import load_weights
from runtime.cli import (
    add_runtime_args,
    help_example,
    int_at_least,
    non_negative_float,
    positive_float,
    run_main,
)
from runtime.errors import UserError
from runtime.precision import (
    add_original_numerics_arg,
    add_speed_args,
    optimizer_options,
    place,
)
from runtime.run_files import dump_config
from runtime.startup import setup_runtime

MODELS = ("lenet5", "resnet34_8x", "resnet34")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a teacher network", **help_example(
        ".venv/bin/python train_teacher.py --batch_size 256 --epochs 10 --lr 0.01 --dataset "
        "mnist --model lenet5 --weight_decay 1e-4 --data_root data --download",
        ["checkpoint/teacher/mnist-lenet5{,-state}.pt",
         "log/teacher-mnist-lenet5.{metrics.jsonl,config.json,visdom.log}",
         "results/teacher-mnist-lenet5/latest-<panel>.png"],
        note="CamVid and NYUv2 teachers: train_teacher_seg.py."))
    parser.add_argument("--num_classes", type=int_at_least(2), default=None,
                        help="classes of the model's head (default: the dataset's)")
    parser.add_argument("--batch_size", type=int_at_least(2), default=256,
                        help="training batch size (default: 256)")
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=128,
                        help="test batch size (default: 128)")
    parser.add_argument("--data_root", default="data", help="dataset folder (default: data)")
    parser.add_argument("--epochs", type=int_at_least(1), default=30,
                        help="training epochs (default: 30)")
    parser.add_argument("--lr", type=positive_float, default=0.1,
                        help="SGD learning rate (default: 0.1)")
    parser.add_argument("--weight_decay", type=non_negative_float, default=5e-4,
                        help="SGD weight decay (default: 5e-4)")
    parser.add_argument("--momentum", type=non_negative_float, default=0.9,
                        help="SGD momentum (default: 0.9)")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="mnist",
                        help="default: mnist")
    parser.add_argument("--model", choices=MODELS, default="lenet5", help="default: lenet5")
    parser.add_argument("--step_size", type=int_at_least(1), default=50,
                        help="StepLR period in epochs, with --scheduler (default: 50)")
    parser.add_argument("--scheduler", action="store_true",
                        help="decay the LR by 0.1 every --step_size epochs (the original README "
                             "commands do not pass it: constant LR)")
    parser.add_argument("--ckpt", default=None, help="start from this state_dict")
    parser.add_argument("--pretrained", action="store_true",
                        help="--model resnet34 only: start from torchvision's ImageNet weights "
                             "(a new fc for the dataset's classes; the README trains from scratch)")
    parser.add_argument("--verbose", action="store_true", help="print every --log_interval batches")
    add_runtime_args(parser)
    add_speed_args(parser)
    add_original_numerics_arg(parser)
    return parser


def build_model(name: str, dataset: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    if pretrained and name != "resnet34":
        raise UserError("--pretrained exists for --model resnet34 only")
    if name == "lenet5":
        if dataset != "mnist":
            raise UserError("--model lenet5 takes 1x32x32 MNIST images: use --dataset mnist")
        return lenet.LeNet5(num_classes)
    if name == "resnet34_8x":
        # docs/original-release.md#teacher-script-missing-cifar-model: the original called a
        # nonexistent network.resnet.resnet34 here.
        if dataset not in ("cifar10", "cifar100"):
            raise UserError("--model resnet34_8x takes 3x32x32 CIFAR images: "
                            "use --dataset cifar10 or cifar100")
        return resnet_8x.ResNet34_8x(num_classes)
    if name == "resnet34":
        if dataset != "caltech101":
            raise UserError("--model resnet34 is the 128 px Caltech101 teacher: "
                            "use --dataset caltech101 (resnet34_8x is the CIFAR one)")
        return torchvision_resnet.resnet34(num_classes, pretrained=pretrained)
    raise UserError(f"unknown model {name!r}")


def main(args: argparse.Namespace) -> float:
    if args.dataset in ("camvid", "nyuv2"):
        raise UserError(f"--dataset {args.dataset} is a segmentation dataset: train its teacher "
                        f"with train_teacher_seg.py --dataset {args.dataset}")
    num_classes = args.num_classes or DATASETS[args.dataset].num_classes
    ckpt_path = f"checkpoint/teacher/{args.dataset}-{args.model}.pt"
    dump_config(args, f"log/teacher-{args.dataset}-{args.model}.config.json")
    device = setup_runtime(args)
    model = build_model(args.model, args.dataset, num_classes, args.pretrained)
    if args.ckpt:
        load_weights(model, args.ckpt)
    place(args, device, model)  # channels_last, or --original_numerics
    train_loader, test_loader = get_dataloader(args, train=not args.test_only, device=device)
    check_num_classes(test_loader, num_classes)
    if args.test_only:
        metrics = evaluate_classification(model, test_loader, device)
        print(f"Test: acc={metrics['acc']:.4f} ({metrics['correct']}/{metrics['total']}) "
              f"loss={metrics['loss']:.4f}")
        return metrics["acc"]
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, **optimizer_options(args, device))
    scheduler = StepLR(optimizer, args.step_size, 0.1) if args.scheduler else None
    # Test images shown as they look, whatever Normalize the dataset's loader applied.
    to_unit = {"mnist": MNIST_TO_UNIT, "cifar10": Denormalize(CIFAR_MEAN, CIFAR_STD),
               "cifar100": Denormalize(CIFAR_MEAN, CIFAR_STD)}.get(args.dataset, MINUS_ONE_TO_ONE)
    logger = RunLogger.from_args(args, run=f"teacher-{args.dataset}-{args.model}",
                                 env=f"teacher-{args.dataset}", draw=ClassificationPanels(to_unit))
    return fit_teacher(args, model, train_loader, test_loader, optimizer, scheduler,
                       F.cross_entropy, evaluate_classification, "acc", ckpt_path, device, logger)


if __name__ == "__main__":
    run_main(get_parser, main)
