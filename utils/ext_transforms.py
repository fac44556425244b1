"""Joint (image, label) transforms for the segmentation datasets
(docs/original-release.md#datasets-and-on-disk-layouts, #metrics-transforms-and-plotting).

Geometric transforms act on both PIL images with the same parameters; the label always uses
nearest-neighbour interpolation so class ids are never blended. Randomness comes from Python's
`random` module, as in the original, so `random.seed` makes crops and flips reproducible.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

Pair = tuple[Any, Any]  # (image, label): PIL images before ExtToTensor, tensors after


@dataclass
class ExtCompose:
    """Applies joint transforms in order."""

    transforms: Sequence[Callable[..., Pair]]

    def __call__(self, img: Any, lbl: Any) -> Pair:
        for t in self.transforms:
            img, lbl = t(img, lbl)
        return img, lbl


@dataclass
class ExtResize:
    """Resizes both; an int `size` matches the shorter side (360x480 → 256x341)."""

    size: int | tuple[int, int]

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        return (
            F.resize(img, self.size, InterpolationMode.BILINEAR),
            F.resize(lbl, self.size, InterpolationMode.NEAREST),
        )


@dataclass
class ExtRandomCrop:
    """Random crop of `size` (int or (h, w)) at the same place in image and label.

    `padding` pads both on all sides first. With `pad_if_needed`, a side shorter than the crop
    pads *all four* sides by int((1 + size - dim) / 2) with 0, image and label alike
    (docs/original-release.md#metrics-transforms-and-plotting; 0 is a real class for CamVid, but
    after ExtResize(256) a 128 crop never needs it).
    """

    size: int | tuple[int, int]
    padding: int = 0
    pad_if_needed: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.size, int):
            self.size = (self.size, self.size)

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        if img.size != lbl.size:
            raise ValueError(f"image size {img.size} != label size {lbl.size}")
        th, tw = self.size
        if self.padding > 0:
            img, lbl = F.pad(img, self.padding), F.pad(lbl, self.padding)
        if self.pad_if_needed and img.size[0] < tw:
            pad = int((1 + tw - img.size[0]) / 2)
            img, lbl = F.pad(img, pad), F.pad(lbl, pad)
        if self.pad_if_needed and img.size[1] < th:
            pad = int((1 + th - img.size[1]) / 2)
            img, lbl = F.pad(img, pad), F.pad(lbl, pad)
        w, h = img.size
        if (h, w) == (th, tw):
            return img, lbl
        top = random.randint(0, h - th)
        left = random.randint(0, w - tw)
        return F.crop(img, top, left, th, tw), F.crop(lbl, top, left, th, tw)


@dataclass
class ExtRandomHorizontalFlip:
    """Mirrors image and label together with probability `p`."""

    p: float = 0.5

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        if random.random() < self.p:
            return F.hflip(img), F.hflip(lbl)
        return img, lbl


@dataclass
class ExtToTensor:
    """Image → float tensor in [0, 1] (C×H×W); label → **uint8** tensor (H×W) of raw ids.

    uint8 as in the original (docs/original-release.md#metrics-transforms-and-plotting): datasets
    remap ids after this (CamVid 11 → 255, NYUv2 via a lookup table). Call `.long()` before using it
    as an index, a loss target or a LUT index (torch reads a uint8 index tensor as a mask).
    """

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        return F.to_tensor(img), torch.from_numpy(np.array(lbl, dtype=np.uint8))


@dataclass
class ExtNormalize:
    """Normalizes the image only; a one-value mean/std broadcasts over all channels."""

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, img: torch.Tensor, lbl: torch.Tensor) -> Pair:
        return F.normalize(img, list(self.mean), list(self.std)), lbl
