"""DFAD on NYUv2: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px.

Paper (Table 3): teacher 0.517 mIoU, DFAD 0.364. Defaults are the original's, with the NYU-only
weight decay 5e-5 and StepLR gamma 0.3 (docs/original-release.md#script-defaults). This one writes
the CSV row (docs/original-release.md#nyuv2-crash-before-the-csv-row).
"""
from __future__ import annotations

import argparse

from dataset.nyu import NYUv2
from engine import dfad_segmentation
from engine.dfad import Experiment
from runtime.cli import run_main

CARD = dfad_segmentation.SegmentationCard(
    script="DFAD_nyu_deeplab.py", title="NYUv2", dataset="nyuv2", test_batch_size=9,
    weight_decay=5e-5, gamma=0.3, decode_target=NYUv2.decode_target,
    images_dir="results/nyu-DFAD")


def get_parser() -> argparse.ArgumentParser:
    return dfad_segmentation.get_parser(CARD)


def build(args: argparse.Namespace) -> Experiment:
    return dfad_segmentation.build(args, CARD)


def main(args: argparse.Namespace) -> list[float]:
    return dfad_segmentation.main(args, CARD)


if __name__ == "__main__":
    run_main(get_parser, main)
