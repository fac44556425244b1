"""DFAD on CamVid: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px.

Paper (Table 3): teacher 0.594 mIoU, DFAD 0.535 (README: 0.5346 at epoch 232). Defaults are the
original's (docs/original-release.md#script-defaults).
"""
from __future__ import annotations

import argparse

from dataset.camvid import CamVid
from engine.dfad import Experiment, distill
from engine.dfad_segmentation import (
    SegmentationCard,
    build_segmentation,
    save_images,
    segmentation_parser,
)
from runtime.cli import run_main
from runtime.device import setup

CARD = SegmentationCard(script="DFAD_camvid_deeplab.py", title="CamVid", dataset="camvid",
                        test_batch_size=16, weight_decay=5e-4, gamma=0.1,
                        decode_target=CamVid.decode_target, images_dir="results/DFAD-camvid")


def get_parser() -> argparse.ArgumentParser:
    return segmentation_parser(CARD)


def build(args: argparse.Namespace) -> Experiment:
    return build_segmentation(args, CARD)


def main(args: argparse.Namespace) -> list[float]:
    device = setup(args)
    exp = build(args)
    history = distill(args, exp, device)
    save_images(args, CARD, exp, device)
    return history


if __name__ == "__main__":
    run_main(get_parser, main)
