"""The two segmentation rows of Table 3 (CamVid, NYUv2), which differ only in their card:
DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px, the -log(MAE + 1)
generator objective, mIoU, StepLR at each epoch's end (docs/original-release.md#the-training-loop).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import StepLR

from dataloader import DATASETS, get_dataloader
from engine.dfad import Experiment, distill
from engine.evaluation import evaluate_segmentation
from engine.flags import add_dfad_args
from engine.objectives import generator_log_mae
from network import gan
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from reporting.sample_grids import SegmentationPanels, save_segmentation_images
from runtime import device as devices
from runtime.cli import help_example
from runtime.files import companion_path, load_teacher, load_tensors


@dataclass(frozen=True)
class SegmentationCard:
    """What one segmentation row sets (docs/original-release.md#script-defaults)."""

    script: str  # its entry script, for --help's example
    title: str  # the dataset as --help names it, and its folder under data/
    dataset: str  # --dataset; the run's files are <...>/<dataset>-... and DFAD-<dataset>.*
    test_batch_size: int
    weight_decay: float
    gamma: float  # StepLR's decay factor
    decode_target: Callable[[Any], np.ndarray]  # training ids -> RGB, for the images
    images_dir: str  # where --save_img writes every test image

    @property
    def run(self) -> str:
        return f"DFAD-{self.dataset}"

    @property
    def student_ckpt(self) -> str:
        return f"checkpoint/student/{self.dataset}-deeplabv3_mobilenet.pt"


def get_parser(card: SegmentationCard) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"DFAD {card.title}", **help_example(
        f".venv/bin/python {card.script} --data_root data/{card.title} --scheduler",
        [f"{card.student_ckpt.removesuffix('.pt')}{{,-generator,-state}}.pt",
         f"log/{card.run}.{{csv,metrics.jsonl,config.json,visdom.log}}",
         f"results/{card.run}/latest-<panel>.png",
         f"{card.images_dir}/<index>_{{img,target,pred,teacher}}.png (--save_img)"]))
    # docs/original-release.md#segmentation-teacher-file-names: the original default ended in
    # -256.pt, a name train_teacher_seg.py never wrote.
    add_dfad_args(parser, datasets=(card.dataset,), model="deeplabv3_mobilenet",
                  ckpt=f"checkpoint/teacher/{card.dataset}-deeplabv3_resnet50.pt",
                  batch_size=64, test_batch_size=card.test_batch_size, epochs=300, lr_S=0.1,
                  weight_decay=card.weight_decay, nz=256,
                  schedule=f"StepLR(--step_size, {card.gamma}) on both optimizers, stepped at "
                           "the end of each epoch (docs/original-release.md#the-training-loop)")
    parser.add_argument("--save_img", action="store_true",
                        help="after the run, write <index>_img/_target/_pred/_teacher.png for "
                             f"every test image to {card.images_dir}/")
    return parser


def build(args: argparse.Namespace, card: SegmentationCard) -> Experiment:
    """The row's experiment: the test set first (a wrong --data_root is reported before 40M
    teacher weights load), then the networks in the original's order of construction."""
    _, test_loader = get_dataloader(args, train=False)
    num_classes = DATASETS[card.dataset].num_classes
    # docs/original-release.md#needless-imagenet-download: no ImageNet download for a teacher
    # whose checkpoint overwrites it anyway.
    teacher = load_teacher(deeplabv3_resnet50(num_classes, pretrained_backbone=False), args.ckpt)
    student = deeplabv3_mobilenet(num_classes, dropout_p=0.5, pretrained_backbone=False)
    generator = gan.GeneratorB(nz=args.nz, nc=3, img_size=128)
    return Experiment(
        name=card.run, student_ckpt=card.student_ckpt,
        teacher=teacher, student=student, generator=generator, test_loader=test_loader,
        evaluate=evaluate_segmentation, metric="mIoU",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, card.gamma),
        scheduler_at_epoch_start=False, generator_objective=generator_log_mae,
        panels=SegmentationPanels(card.decode_target, nz=args.nz),
    )


def main(args: argparse.Namespace, card: SegmentationCard) -> list[float]:
    """The run (setup first: it seeds), then `--save_img`."""
    device = devices.setup(args)
    exp = build(args, card)
    history = distill(args, exp, device)
    save_images(args, card, exp, device)
    return history


def save_images(args: argparse.Namespace, card: SegmentationCard, exp: Experiment,
                device: torch.device) -> None:
    """`--save_img`, after the run: every test image, the student's prediction as the run left
    it (its last epoch's, from the state file, like the original's last test pass: so also when
    the run had finished before; with --test_only the --stu_ckpt one) and the teacher's."""
    if not (args.save_img and devices.is_main()):
        return
    if not args.test_only:
        state = load_tensors(companion_path(exp.student_ckpt, "state"), "state file")
        exp.student.load_state_dict(state["student"])
    count = save_segmentation_images(exp.student, exp.teacher.to(device), exp.test_loader,
                                     card.decode_target, card.images_dir, device)
    print(f"wrote {count} x 4 images to {card.images_dir}/")
