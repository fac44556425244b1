"""What CamVid and NYUv2 share: (image, label map) PNG pairs whose raw label ids a lookup table
turns into int64 training ids."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

IGNORE_INDEX = 255  # the label of unlabelled pixels in CamVid and NYUv2

Transforms = Callable[[Image.Image, Image.Image], tuple[Any, Any]]


def label_lut(first_raw_id: int, num_classes: int) -> torch.Tensor:
    """Raw ids first_raw_id.. become classes 0..num_classes - 1; every other id is ignored."""
    lut = torch.full((256,), IGNORE_INDEX)
    lut[first_raw_id:first_raw_id + num_classes] = torch.arange(num_classes)
    return lut


class ImageLabelPairs(Dataset):
    """`images[i]` with `labels[i]`; a subclass lists both and sets `lut`."""

    lut: torch.Tensor

    def __init__(self, images: list[Path], labels: list[Path],
                 transforms: Transforms | None) -> None:
        self.images, self.labels, self.transforms = images, labels, transforms
        # the pairs held in memory by --cache_images (dataloader.py), else None
        self.decoded: list[tuple[Image.Image, Image.Image]] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> tuple[Image.Image, Image.Image]:
        if self.decoded is not None:
            return self.decoded[index]
        return Image.open(self.images[index]).convert("RGB"), Image.open(self.labels[index])

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        image, label = self.read(index)
        if self.transforms is not None:
            image, label = self.transforms(image, label)
        # remapped after the transforms, as in the original
        # (docs/original-release.md#datasets-and-on-disk-layouts)
        return image, self.lut[torch.tensor(np.asarray(label), dtype=torch.long)]
