"""Joint (image, label) transforms for CamVid and NYUv2
(docs/original-release.md#metrics-transforms-and-plotting): geometric ones move both PIL images
alike, labels by nearest neighbour; randomness from Python's `random`, as in the original."""
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
    transforms: Sequence[Callable[..., Pair]]

    def __call__(self, img: Any, lbl: Any) -> Pair:
        for t in self.transforms:
            img, lbl = t(img, lbl)
        return img, lbl


@dataclass
class ExtResize:
    """An int `size` matches the shorter side (360x480 -> 256x341)."""

    size: int | tuple[int, int]

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        return (F.resize(img, self.size, InterpolationMode.BILINEAR),
                F.resize(lbl, self.size, InterpolationMode.NEAREST))


@dataclass
class ExtRandomCrop:
    """`size` (int or (h, w)) at the same place in both. With `pad_if_needed` a side shorter than
    the crop pads *all four* sides of both by int((1 + size - side) / 2) with 0, as the original
    (never needed after ExtResize(256))."""

    size: int | tuple[int, int]
    pad_if_needed: bool = False

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        if img.size != lbl.size:
            raise ValueError(f"image size {img.size} != label size {lbl.size}")
        th, tw = (self.size, self.size) if isinstance(self.size, int) else self.size
        for axis, want in ((0, tw), (1, th)):  # PIL sizes are (w, h)
            if self.pad_if_needed and img.size[axis] < want:
                pad = int((1 + want - img.size[axis]) / 2)
                img, lbl = F.pad(img, pad), F.pad(lbl, pad)
        w, h = img.size
        if (h, w) == (th, tw):  # no random draw, as in the original
            return img, lbl
        top = random.randint(0, h - th)
        left = random.randint(0, w - tw)
        return F.crop(img, top, left, th, tw), F.crop(lbl, top, left, th, tw)


@dataclass
class ExtRandomHorizontalFlip:
    p: float = 0.5

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        if random.random() < self.p:
            return F.hflip(img), F.hflip(lbl)
        return img, lbl


class ExtToTensor:
    """Image -> float C x H x W in [0, 1]; label -> uint8 H x W of raw ids, as in the original
    (the datasets remap it to int64 afterwards)."""

    def __call__(self, img: Image.Image, lbl: Image.Image) -> Pair:
        return F.to_tensor(img), torch.from_numpy(np.array(lbl, dtype=np.uint8))


@dataclass
class ExtNormalize:
    """The image only; a one-value mean/std broadcasts over the channels."""

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, img: torch.Tensor, lbl: torch.Tensor) -> Pair:
        return F.normalize(img, list(self.mean), list(self.std)), lbl
