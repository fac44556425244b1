"""Train a segmentation teacher, DeepLabV3-ResNet50, on CamVid or NYUv2
(docs/original-release.md#segmentation-teacher-training).

README commands (docs/original-release.md#segmentation-teacher-training):
  python train_teacher_seg.py --model deeplabv3_resnet50 --dataset camvid \
      --data_root ./data/CamVid --scheduler --lr 0.1 --num_classes 11
  python train_teacher_seg.py --dataset nyuv2 --data_root ./data/NYUv2 --scheduler --lr 0.05 \
      --num_classes 13
"""
from __future__ import annotations

import argparse

from torch.optim import SGD
from torch.optim.lr_scheduler import StepLR

from dataloader import DATASETS, check_num_classes, get_dataloader
from dataset.camvid import CamVid
from dataset.nyu import NYUv2
from engine.evaluation import evaluate_segmentation
from engine.losses import focal_loss
from engine.teacher import fit_teacher
from network.segmentation import deeplabv3_resnet50
from network.segmentation.deeplabv3 import DeepLabV3, PretrainedWeightsUnavailable
from reporting.run_logger import RunLogger
from reporting.sample_grids import SegmentationPanels
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
from runtime.run_files import dump_config, format_metrics
from runtime.startup import setup_runtime

SEG_DATASETS = ("camvid", "nyuv2")
# The original also offered segnet_vgg13/16/19; no DFAD experiment uses them, so they are out of
# scope here.
MODELS = ("deeplabv3_resnet50",)
# ASPP dropout while training the teacher (docs/original-release.md#deeplabv3-teacher); DFAD loads
# it at 0
TEACHER_DROPOUT = 0.5


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a segmentation teacher (DeepLabV3)", **help_example(
        ".venv/bin/python train_teacher_seg.py --model deeplabv3_resnet50 --dataset camvid "
        "--data_root data/CamVid",
        ["checkpoint/teacher/camvid-deeplabv3_resnet50{,-state}.pt",
         "log/teacher-camvid-deeplabv3_resnet50.{metrics.jsonl,config.json,visdom.log}",
         "results/teacher-camvid-deeplabv3_resnet50/latest-<panel>.png"]))
    parser.add_argument("--num_classes", type=int_at_least(2), default=None,
                        help="classes of the model's head (default: the dataset's, 11 for "
                             "camvid, 13 for nyuv2)")
    parser.add_argument("--batch_size", type=int_at_least(2), default=16,
                        help="training batch size (default: 16)")
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=16,
                        help="test batch size (default: 16)")
    parser.add_argument("--epochs", type=int_at_least(1), default=200,
                        help="training epochs (default: 200)")
    parser.add_argument("--lr", type=positive_float, default=0.1,
                        help="SGD learning rate (default: 0.1; the README uses 0.05 for nyuv2)")
    parser.add_argument("--data_root", default="data",
                        help="the dataset folder itself, e.g. ./data/CamVid or ./data/NYUv2 "
                             "(default: data)")
    parser.add_argument("--dataset", choices=SEG_DATASETS, default="camvid",
                        help="default: camvid")
    parser.add_argument("--model", choices=MODELS, default="deeplabv3_resnet50",
                        help="default: deeplabv3_resnet50 (the original's SegNet options are not "
                             "implemented: no DFAD experiment uses them)")
    parser.add_argument("--weight_decay", type=non_negative_float, default=5e-4,
                        help="SGD weight decay (default: 5e-4)")
    parser.add_argument("--momentum", type=non_negative_float, default=0.9,
                        help="SGD momentum (default: 0.9)")
    parser.add_argument("--scheduler", action="store_true",
                        help="StepLR(--step_size, --gamma), stepped at the start of each epoch")
    parser.add_argument("--step_size", type=int_at_least(1), default=100,
                        help="StepLR period in epochs (default: 100)")
    parser.add_argument("--gamma", type=positive_float, default=0.1,
                        help="StepLR decay factor (default: 0.1)")
    parser.add_argument("--ckpt", default=None,
                        help="start from this state_dict (then no ImageNet weights are fetched)")
    parser.add_argument("--no_pretrained", "--no-pretrained", dest="no_pretrained",
                        action="store_true",
                        help="start the ResNet-50 backbone from random weights instead of "
                             "torchvision's ImageNet weights (which are downloaded to the torch "
                             "hub cache unless already there; the paper's teachers are "
                             "ImageNet-initialised)")
    parser.add_argument("--cache_images", action="store_true",
                        help="decode and resize every train and test image once, at start, and "
                             "keep them in memory (CamVid about 270 MB, NYUv2 about 650 MB, per "
                             "process); the random crops and flips still run every epoch, so "
                             "the samples are the same as without it")
    add_runtime_args(parser)
    add_speed_args(parser)
    add_original_numerics_arg(parser)
    # The original prints every --log_interval batches unconditionally
    # (docs/original-release.md#segmentation-teacher-training).
    parser.set_defaults(verbose=True)
    return parser


def build_model(args: argparse.Namespace, num_classes: int) -> DeepLabV3:
    """The teacher with ASPP dropout 0.5; ImageNet weights only when they are not overwritten."""
    pretrained = not args.no_pretrained and not args.ckpt
    try:
        model = deeplabv3_resnet50(num_classes, dropout_p=TEACHER_DROPOUT,
                                   pretrained_backbone=pretrained)
    except PretrainedWeightsUnavailable as err:
        raise UserError(f"{err} (on the command line: --no_pretrained)") from err
    if args.ckpt:
        load_weights(model, args.ckpt)
    return model


def main(args: argparse.Namespace) -> float:
    num_classes = args.num_classes or DATASETS[args.dataset].num_classes
    ckpt_path = f"checkpoint/teacher/{args.dataset}-{args.model}.pt"
    dump_config(args, f"log/teacher-{args.dataset}-{args.model}.config.json")
    device = setup_runtime(args)
    train_loader, test_loader = get_dataloader(args, train=not args.test_only, device=device)
    check_num_classes(test_loader, num_classes)
    model = build_model(args, num_classes)
    place(args, device, model)  # channels_last, or --original_numerics
    if args.test_only:
        metrics = evaluate_segmentation(model, test_loader, device)
        print(f"Test: {format_metrics(metrics)}")
        return metrics["mIoU"]
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, **optimizer_options(args, device))
    scheduler = StepLR(optimizer, args.step_size, args.gamma) if args.scheduler else None
    decode_target = CamVid.decode_target if args.dataset == "camvid" else NYUv2.decode_target
    logger = RunLogger.from_args(args, run=f"teacher-{args.dataset}-{args.model}",
                                 env=f"teacher-seg-{args.dataset}",
                                 draw=SegmentationPanels(decode_target))
    return fit_teacher(args, model, train_loader, test_loader, optimizer, scheduler, focal_loss,
                       evaluate_segmentation, "mIoU", ckpt_path, device, logger)


if __name__ == "__main__":
    run_main(get_parser, main)
