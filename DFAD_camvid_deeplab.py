"""DFAD on CamVid: DeepLabV3-ResNet50 teacher -> DeepLabV3-MobileNetV2 student, GeneratorB 128 px.

Paper (Table 3): teacher 0.594 mIoU, DFAD 0.535 (README: 0.5346 at epoch 232). Defaults are the
original's (docs/original-release.md#script-defaults).
"""
from __future__ import annotations

import argparse

from dataset.camvid import CamVid
from engine import dfad_segmentation
from engine.dfad import Experiment
from runtime.cli import run_main

CARD = dfad_segmentation.SegmentationCard(
    script="DFAD_camvid_deeplab.py", title="CamVid", dataset="camvid", test_batch_size=16,
    weight_decay=5e-4, gamma=0.1, decode_target=CamVid.decode_target,
    images_dir="results/DFAD-camvid")


def get_parser() -> argparse.ArgumentParser:
    return dfad_segmentation.get_parser(CARD)


def build(args: argparse.Namespace) -> Experiment:
    return dfad_segmentation.build(args, CARD)


def main(args: argparse.Namespace) -> list[float]:
    return dfad_segmentation.main(args, CARD)


if __name__ == "__main__":
    run_main(get_parser, main)
