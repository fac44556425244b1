"""DFAD on NYUv2: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px.

Paper (Table 3): teacher 0.517 mIoU, DFAD 0.364. Defaults are the original's
(docs/original-release.md#script-defaults), including the NYU-only weight decay 5e-5 and StepLR
gamma 0.3 (docs/original-release.md#scheduler-timing, #hard-coded-momentum-and-odd-defaults).
"""
from __future__ import annotations

import argparse

from torch.optim.lr_scheduler import StepLR

from dataloader import get_dataloader
from dataset.nyu import NYUv2
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
from runtime.cli import help_example, run_main
from runtime.run_files import dump_config
from runtime.startup import setup_runtime

NUM_CLASSES = 13
GAMMA = 0.3  # docs/original-release.md#script-defaults: NYUv2 decays by 0.3, the other rows by 0.1


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DFAD NYUv2", **help_example(
        ".venv/bin/python DFAD_nyu_deeplab.py --data_root data/NYUv2 --scheduler",
        ["checkpoint/student/nyuv2-deeplabv3_mobilenet{,-generator,-state}.pt",
         "log/DFAD-nyuv2.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-nyuv2/latest-<panel>.png, results/nyu-DFAD/ (--save_img)"]))
    # docs/original-release.md#segmentation-teacher-file-names: the original default ended in
    # -256.pt, a name train_teacher_seg.py never wrote.
    add_dfad_args(parser, datasets=("nyuv2",), model="deeplabv3_mobilenet",
                  ckpt="checkpoint/teacher/nyuv2-deeplabv3_resnet50.pt", batch_size=64,
                  test_batch_size=9, epochs=300, lr_S=0.1, weight_decay=5e-5, nz=256,
                  schedule=f"StepLR(--step_size, {GAMMA}) on both optimizers, "
                           "stepped at the end of each epoch "
                           "(docs/original-release.md#the-training-loop)")
    parser.add_argument("--save_img", action="store_true",
                        help="after the run, write <idx>_img/_target/_pred/_teacher.png for every "
                             "test image to results/nyu-DFAD/")
    return parser


def main(args: argparse.Namespace) -> list[float]:
    dump_config(args, "log/DFAD-nyuv2.config.json")
    device = setup_runtime(args)
    # The data first: a wrong --data_root is reported before 40M teacher weights load.
    _, test_loader = get_dataloader(args, train=False, device=device)
    # docs/original-release.md#needless-imagenet-download: no ImageNet download for a teacher whose
    # checkpoint overwrites it anyway.
    teacher = load_teacher(deeplabv3_resnet50(NUM_CLASSES, pretrained_backbone=False), args.ckpt,
                           device)
    student = deeplabv3_mobilenet(NUM_CLASSES, dropout_p=0.5, pretrained_backbone=False)
    generator = gan.GeneratorB(nz=args.nz, nc=3, img_size=128)
    recipe = Recipe(
        # docs/original-release.md#nyuv2-crash-before-the-csv-row: the original crashed before
        # writing this CSV row
        name="nyuv2",
        student_ckpt="checkpoint/student/nyuv2-deeplabv3_mobilenet.pt",
        generator_loss=generator_loss_log_mae,
        evaluate=evaluate_segmentation,
        metric="mIoU",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, GAMMA),
        # docs/original-release.md#the-training-loop: the segmentation scripts step at epoch end
        scheduler_at_epoch_start=False,
    )
    logger = RunLogger.from_args(args, run="DFAD-nyuv2", env="DFAD-nyuv2",
                                 draw=SegmentationPanels(NYUv2.decode_target, nz=args.nz))
    history = distill(args, teacher, student, generator, test_loader, recipe, device, logger)
    if args.save_img and distributed.is_main():
        # The student as the run leaves it (the last epoch, like the original's last test pass;
        # with --test_only, the --stu_ckpt one).
        count = save_segmentation_images(student, teacher, test_loader, NYUv2.decode_target,
                                         "results/nyu-DFAD", device)
        print(f"wrote {count} x 4 images to results/nyu-DFAD/")
    return history


if __name__ == "__main__":
    run_main(get_parser, main)
