"""The two segmentation rows of Table 3 (CamVid, NYUv2), which differ only in their experiment
card: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px, the
-log(MAE + 1) generator loss, mIoU, StepLR stepped at the end of each epoch; the flags, the run
and `--save_img` for DFAD_camvid_deeplab.py and DFAD_nyu_deeplab.py."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.optim.lr_scheduler import StepLR

from dataloader import get_dataloader
from engine.dfad import Recipe, distill, generator_loss_log_mae
from engine.evaluation import evaluate_segmentation
from engine.flags import add_dfad_args
from network import gan
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from reporting.run_logger import RunLogger
from reporting.sample_grids import SegmentationPanels
from reporting.segmentation_images import save_segmentation_images
from runtime import distributed
from runtime.checkpoint import load_teacher
from runtime.cli import help_example
from runtime.run_files import dump_config
from runtime.startup import setup_runtime


@dataclass(frozen=True)
class SegmentationCard:
    """What one segmentation row sets (docs/original-release.md#script-defaults)."""

    script: str  # its entry script, for --help's example
    title: str  # the dataset as --help names it
    dataset: str  # --dataset; the run's files are <...>/<dataset>-... and DFAD-<dataset>.*
    data_root: str  # --help's example --data_root
    num_classes: int
    test_batch_size: int
    weight_decay: float
    gamma: float  # StepLR's decay factor
    decode_target: Callable[[Any], np.ndarray]  # training ids -> RGB, for the image panels
    images_dir: str  # where --save_img writes every test image

    @property
    def run(self) -> str:
        return f"DFAD-{self.dataset}"

    @property
    def teacher_ckpt(self) -> str:
        # docs/original-release.md#segmentation-teacher-file-names: the original default ended
        # in -256.pt, a name train_teacher_seg.py never wrote.
        return f"checkpoint/teacher/{self.dataset}-deeplabv3_resnet50.pt"

    @property
    def student_ckpt(self) -> str:
        return f"checkpoint/student/{self.dataset}-deeplabv3_mobilenet.pt"


def segmentation_parser(card: SegmentationCard) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"DFAD {card.title}", **help_example(
        f".venv/bin/python {card.script} --data_root {card.data_root} --scheduler",
        [f"{card.student_ckpt.removesuffix('.pt')}{{,-generator,-state}}.pt",
         f"log/{card.run}.{{csv,metrics.jsonl,config.json,visdom.log}}",
         f"results/{card.run}/latest-<panel>.png"
         + (" (and every test image with --save_img)" if card.images_dir == f"results/{card.run}"
            else f", {card.images_dir}/ (--save_img)")]))
    add_dfad_args(parser, datasets=(card.dataset,), model="deeplabv3_mobilenet",
                  ckpt=card.teacher_ckpt, batch_size=64, test_batch_size=card.test_batch_size,
                  epochs=300, lr_S=0.1, weight_decay=card.weight_decay, nz=256,
                  schedule=f"StepLR(--step_size, {card.gamma}) on both optimizers, "
                           "stepped at the end of each epoch "
                           "(docs/original-release.md#the-training-loop)")
    parser.add_argument("--save_img", action="store_true",
                        help="after the run, write <idx>_img/_target/_pred/_teacher.png for every "
                             f"test image to {card.images_dir}/")
    return parser


def distill_segmentation(args: argparse.Namespace, card: SegmentationCard) -> list[float]:
    """The row's run: networks, test set, recipe and logger, then `distill`; `--save_img`."""
    dump_config(args, f"log/{card.run}.config.json")
    device = setup_runtime(args)
    # The data first: a wrong --data_root is reported before 40M teacher weights load.
    _, test_loader = get_dataloader(args, train=False, device=device)
    # docs/original-release.md#needless-imagenet-download: no ImageNet download for a teacher
    # whose checkpoint overwrites it anyway.
    teacher = load_teacher(deeplabv3_resnet50(card.num_classes, pretrained_backbone=False),
                           args.ckpt, device)
    student = deeplabv3_mobilenet(card.num_classes, dropout_p=0.5, pretrained_backbone=False)
    generator = gan.GeneratorB(nz=args.nz, nc=3, img_size=128)
    recipe = Recipe(
        name=card.dataset,
        student_ckpt=card.student_ckpt,
        generator_loss=generator_loss_log_mae,
        evaluate=evaluate_segmentation,
        metric="mIoU",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, card.gamma),
        # docs/original-release.md#the-training-loop: the segmentation scripts step at epoch end
        scheduler_at_epoch_start=False,
    )
    logger = RunLogger.from_args(args, run=card.run, env=card.run,
                                 draw=SegmentationPanels(card.decode_target, nz=args.nz))
    history = distill(args, teacher, student, generator, test_loader, recipe, device, logger)
    if args.save_img and distributed.is_main():
        # The student as the run leaves it (the last epoch, like the original's last test pass;
        # with --test_only, the --stu_ckpt one).
        count = save_segmentation_images(student, teacher, test_loader, card.decode_target,
                                         card.images_dir, device)
        print(f"wrote {count} x 4 images to {card.images_dir}/")
    return history
