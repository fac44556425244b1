"""NYUv2 with the 13-class labels (docs/original-release.md#datasets-and-on-disk-layouts): the
layout the original's NYUv2 teacher used.

    <root>/nyuv2-meta-data/splits.mat                        trainNdxs / testNdxs, 1-based
    <root>/nyuv2-meta-data/{train,test}_labels_13/new_nyu_class13_<idx:04d>.png
    <root>/480_640/IMAGE/<idx - 1>.png                       RGB, 0-based names in .mat order

The meta-data folder is ankurhanda/nyuv2-meta-data; the images are exported from the official
nyu_depth_v2_labeled.mat by data/prepare_nyuv2.py. `<root>` is the NYUv2 folder itself
(`--data_root ./data/NYUv2`, as in the original README).
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

SPLITS = ("train", "test")
IGNORE_INDEX = 255
META_FROM = "ankurhanda/nyuv2-meta-data, cloned into <data_root>/nyuv2-meta-data"
IMAGES_FROM = ("the official nyu_depth_v2_labeled.mat: run `python data/prepare_nyuv2.py "
               "--mat nyu_depth_v2_labeled.mat --out <data_root>`")

# The 13 classes in meta-data order (raw label k + 1),
# docs/original-release.md#datasets-and-on-disk-layouts.
CLASSES = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
           "table", "tv", "wall", "window")

# Raw 0 (unlabelled) → 255, raw k → k - 1 (docs/original-release.md#datasets-and-on-disk-layouts).
# The original's table had 14 entries; ids above 13 never occur in the 13-class maps and are ignored
# here instead of raising.
_LUT = torch.full((256,), IGNORE_INDEX, dtype=torch.long)
_LUT[1:len(CLASSES) + 1] = torch.arange(len(CLASSES))


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC palette: the bits of the id spread over the high bits of R, G and B."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        rgb, c = [0, 0, 0], i
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        cmap[i] = rgb
    return cmap


COLORMAP = voc_colormap()


def remap_target(target: torch.Tensor) -> torch.Tensor:
    """Raw 13-class ids → training ids as int64 (0 → 255, k → k - 1)."""
    return _LUT[target.long()]


def decode_target(target: Any) -> np.ndarray:
    """Training ids → uint8 RGB: id + 1 in uint8 (255 wraps to 0, black), then the VOC palette,
    exactly as the original colours its NYUv2 predictions
    (docs/original-release.md#datasets-and-on-disk-layouts)."""
    ids = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target)
    return COLORMAP[(ids.astype(np.int64) + 1) % 256]


def _read_split(path: Path, split: str) -> np.ndarray:
    from scipy.io import loadmat  # scipy only matters to NYUv2 users

    key = f"{split}Ndxs"
    try:
        indices = loadmat(str(path))[key]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"cannot read {key} from {path} ({type(err).__name__}: {err}); "
                        f"expected the splits.mat of {META_FROM}") from err
    return np.asarray(indices, dtype=np.int64).reshape(-1)


class NYUv2(ImageLabelPairs):
    """(image, label) pairs of the train (795) or test (654) split; labels as int64 ids."""

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
        meta = self.root / "nyuv2-meta-data"
        splits_file = meta / "splits.mat"
        label_dir = meta / f"{split}_labels_13"
        image_dir = self.root / "480_640" / "IMAGE"
        if not splits_file.is_file():
            raise UserError(f"NYUv2 split file not found: expected {splits_file} "
                            f"(from {META_FROM})")
        if not label_dir.is_dir():
            raise UserError(f"NYUv2 {split} labels not found: expected {label_dir}/"
                            f"new_nyu_class13_<idx>.png (from {META_FROM})")
        if not image_dir.is_dir():
            raise UserError(f"NYUv2 images not found: expected {image_dir}/<i>.png "
                            f"(made from {IMAGES_FROM})")
        indices = _read_split(splits_file, split)
        self.images = [image_dir / f"{i - 1}.png" for i in indices]
        self.labels = [label_dir / f"new_nyu_class13_{i:04d}.png" for i in indices]
        for files, origin in ((self.images, IMAGES_FROM), (self.labels, META_FROM)):
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise UserError(f"NYUv2 {split}: {len(missing)} of {len(files)} files missing, "
                                f"first {missing[0]} (from {origin})")
