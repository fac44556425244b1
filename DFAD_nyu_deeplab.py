"""DFAD on NYUv2: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px.

Paper (Table 3): teacher 0.517 mIoU, DFAD 0.364. Defaults are the original's
(docs/original-release.md#script-defaults), including the NYU-only weight decay 5e-5 and StepLR
gamma 0.3 (docs/original-release.md#scheduler-timing, #hard-coded-momentum-and-odd-defaults).
The original crashed before writing this run's CSV row
(docs/original-release.md#nyuv2-crash-before-the-csv-row); this one writes it.
"""
from __future__ import annotations

import argparse

from dataset.nyu import NYUv2
from engine.dfad import Experiment, distill
from engine.dfad_segmentation import (
    SegmentationCard,
    build_segmentation,
    save_images,
    segmentation_parser,
)
from runtime.cli import run_main
from runtime.device import setup

CARD = SegmentationCard(script="DFAD_nyu_deeplab.py", title="NYUv2", dataset="nyuv2",
                        test_batch_size=9, weight_decay=5e-5, gamma=0.3,
                        decode_target=NYUv2.decode_target, images_dir="results/nyu-DFAD")


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
