"""NYUv2 with the 13-class labels, the layout the original's NYUv2 teacher used
(docs/original-release.md#datasets-and-on-disk-layouts):

    <root>/nyuv2-meta-data/splits.mat                        trainNdxs / testNdxs, 1-based
    <root>/nyuv2-meta-data/{train,test}_labels_13/new_nyu_class13_<idx:04d>.png
    <root>/480_640/IMAGE/<idx - 1>.png                       RGB, 0-based names in .mat order

The meta-data folder is ankurhanda/nyuv2-meta-data; data/prepare_nyuv2.py exports the images from
the official nyu_depth_v2_labeled.mat. `<root>` is the NYUv2 folder itself
(`--data_root ./data/NYUv2`, as in the original README).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dataset.image_label_pairs import ImageLabelPairs, Transforms, label_lut
from runtime.errors import UserError

META_FROM = "ankurhanda/nyuv2-meta-data, cloned into <data_root>/nyuv2-meta-data"
IMAGES_FROM = ("the official nyu_depth_v2_labeled.mat: run `python data/prepare_nyuv2.py "
               "--mat nyu_depth_v2_labeled.mat --out <data_root>`")
CLASSES = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
           "table", "tv", "wall", "window")
# The PASCAL VOC palette: bit 3j + c of an id is bit 7 - j of colour channel c.
_IDS = np.arange(256)[:, None]
COLORMAP = sum(((_IDS >> (3 * j + np.arange(3))) & 1) << (7 - j) for j in range(8)).astype(np.uint8)


def decode_target(target: Any) -> np.ndarray:
    """Training ids -> uint8 RGB: id + 1 modulo 256 (255 becomes 0, black), then the VOC palette,
    as the original colours its NYUv2 predictions."""
    return COLORMAP[(np.asarray(target, dtype=np.int64) + 1) % 256]


class NYUv2(ImageLabelPairs):
    """The train (795) or test (654) pairs of splits.mat; raw 0 (unlabelled) becomes 255, raw k
    becomes k - 1."""

    classes = CLASSES
    lut = label_lut(1, len(CLASSES))
    decode_target = staticmethod(decode_target)

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Transforms | None = None) -> None:
        from scipy.io import loadmat  # scipy only matters to NYUv2 users
        from scipy.io.matlab import MatReadError

        root, key = Path(root), f"{split}Ndxs"
        splits = root / "nyuv2-meta-data" / "splits.mat"
        try:
            indices = loadmat(str(splits))[key].reshape(-1).astype(np.int64)
        except (OSError, ValueError, KeyError, MatReadError) as err:
            raise UserError(f"NYUv2 split {key} unreadable ({type(err).__name__}): expected "
                            f"{splits} (from {META_FROM})") from err
        images = [root / "480_640" / "IMAGE" / f"{i - 1}.png" for i in indices]
        labels = [root / "nyuv2-meta-data" / f"{split}_labels_13" / f"new_nyu_class13_{i:04d}.png"
                  for i in indices]
        for files, origin in ((images, IMAGES_FROM), (labels, META_FROM)):
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise UserError(f"NYUv2 {split}: {len(missing)} of {len(files)} files missing, "
                                f"first {missing[0]} (from {origin})")
        super().__init__(images, labels, transforms)
