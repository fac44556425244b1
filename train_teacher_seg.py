"""Train a segmentation teacher, DeepLabV3-ResNet50, on CamVid or NYUv2
(docs/original-release.md#segmentation-teacher-training; the README commands: --help)."""
from __future__ import annotations

import argparse

from torch.optim.lr_scheduler import StepLR

from dataloader import check_num_classes, get_dataloader, num_classes
from dataset.camvid import CamVid
from dataset.nyu import NYUv2
from engine.evaluation import evaluate_segmentation
from engine.flags import add_teacher_args
from engine.objectives import focal_loss
from engine.teacher import TeacherRun, fit_teacher
from network.segmentation import deeplabv3_resnet50
from network.segmentation.deeplabv3 import DeepLabV3, PretrainedWeightsUnavailable
from reporting.sample_grids import SegmentationPanels
from runtime.cli import help_example, positive_float, run_main
from runtime.device import setup
from runtime.errors import UserError
from runtime.files import load_weights

MODELS = ("deeplabv3_resnet50",)  # not the original's segnet_vgg*: no DFAD experiment uses them
TEACHER_DROPOUT = 0.5  # in training; 0 in DFAD (docs/original-release.md#deeplabv3-teacher)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a segmentation teacher (DeepLabV3)", **help_example(
            ".venv/bin/python train_teacher_seg.py --model deeplabv3_resnet50 --dataset camvid "
            "--data_root data/CamVid",
            ["checkpoint/teacher/camvid-deeplabv3_resnet50{,-state}.pt",
             "log/teacher-camvid-deeplabv3_resnet50.{metrics.jsonl,config.json,visdom.log}",
             "results/teacher-camvid-deeplabv3_resnet50/latest-<panel>.png"],
            note="The README trains CamVid with --scheduler --lr 0.1 --num_classes 11 and NYUv2 "
                 "with --scheduler --lr 0.05 --num_classes 13. The original's SegNet models are "
                 "not implemented: no DFAD experiment uses them."))
    add_teacher_args(parser, datasets=("camvid", "nyuv2"), models=MODELS, batch_size=16,
                     test_batch_size=16, epochs=200, step_size=100,
                     scheduler_help="StepLR(--step_size, --gamma), stepped at the start of each "
                                    "epoch")
    parser.add_argument("--gamma", type=positive_float, default=0.1,
                        help="StepLR decay factor (default: 0.1)")
    parser.add_argument("--no_pretrained", "--no-pretrained", dest="no_pretrained",
                        action="store_true",
                        help="start the ResNet-50 backbone from random weights instead of "
                             "torchvision's ImageNet weights (which are downloaded to the torch "
                             "hub cache unless already there, and not fetched with --ckpt; the "
                             "paper's teachers are ImageNet-initialised)")
    parser.add_argument("--cache_images", action="store_true",
                        help="decode and resize every train and test image once, at start, and "
                             "keep them in memory (CamVid about 270 MB, NYUv2 about 650 MB, per "
                             "process); the random crops and flips still run every epoch, so "
                             "the samples are the same as without it")
    # The original prints every --log_interval batches unconditionally
    # (docs/original-release.md#segmentation-teacher-training).
    parser.set_defaults(verbose=True)
    return parser


def build(args: argparse.Namespace) -> DeepLabV3:
    """The teacher with ASPP dropout 0.5, built after setup(args) seeded; ImageNet weights only
    when --ckpt does not replace them."""
    pretrained = not args.no_pretrained and not args.ckpt
    try:
        model = deeplabv3_resnet50(num_classes(args), dropout_p=TEACHER_DROPOUT,
                                   pretrained_backbone=pretrained)
    except PretrainedWeightsUnavailable as err:
        raise UserError(f"{err} (on the command line: --no_pretrained)") from err
    return load_weights(model, args.ckpt) if args.ckpt else model


def main(args: argparse.Namespace) -> float:
    """Train (or with --test_only evaluate) the teacher; returns its best test mIoU."""
    device = setup(args)
    train_loader, test_loader = get_dataloader(args, train=not args.test_only)
    check_num_classes(test_loader, num_classes(args))
    model = build(args)
    decode_target = CamVid.decode_target if args.dataset == "camvid" else NYUv2.decode_target
    run = TeacherRun(
        name=f"teacher-{args.dataset}-{args.model}",
        ckpt=f"checkpoint/teacher/{args.dataset}-{args.model}.pt",
        loss_fn=focal_loss, evaluate=evaluate_segmentation, metric="mIoU",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, args.gamma),
        panels=SegmentationPanels(decode_target), visdom_env=f"teacher-seg-{args.dataset}")
    return fit_teacher(args, run, model, train_loader, test_loader, device)


if __name__ == "__main__":
    run_main(get_parser, main)
