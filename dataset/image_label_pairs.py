"""What the two segmentation datasets share: (image, label map) PNG pairs, read from disk or from
memory, whose labels come back as int64 training ids."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageLabelPairs(Dataset):
    """`images[i]` with `labels[i]`; a subclass lists both and says how raw ids map to training
    ids (`remap_target`)."""

    remap_target: Callable[[torch.Tensor], torch.Tensor]

    def __init__(
        self,
        root: str | Path,
        split: str,
        splits: Sequence[str],
        transforms: Callable[[Image.Image, Image.Image], tuple[Any, Any]] | None,
    ) -> None:
        if split not in splits:
            raise ValueError(f"split must be one of {tuple(splits)}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        self.images: list[Path] = []
        self.labels: list[Path] = []
        # (image, label) pairs held in memory (--cache_images, dataloader.py), else None
        self.decoded: list[tuple[Image.Image, Image.Image]] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> tuple[Image.Image, Image.Image]:
        """The image and its label map, from memory when decoded there, else from disk."""
        if self.decoded is not None:
            return self.decoded[index]
        return Image.open(self.images[index]).convert("RGB"), Image.open(self.labels[index])

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        image, label = self.read(index)
        if self.transforms is not None:
            image, label = self.transforms(image, label)
        # The remap runs after the transforms, as in the original
        # (docs/original-release.md#datasets-and-on-disk-layouts).
        if not isinstance(label, torch.Tensor):  # no transforms: still a PIL image
            label = torch.from_numpy(np.array(label))
        return image, self.remap_target(label)
