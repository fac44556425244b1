"""Caltech101 read from a train/test split on disk, the layout the authors trained on
(docs/original-release.md#datasets-and-on-disk-layouts). The split is never made on the fly: on
any split but the authors' the released teacher is tested partly on its own training images
(docs/original-release.md#reports-from-users, original issue #2: 95.75% instead of 76.6%).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from runtime.errors import UserError

BACKGROUND = "BACKGROUND_Google"  # a clutter class, not one of the 101
OFFICIAL_TEST_SIZE = 1695  # test images in the authors' split
SPLIT_HELP = (
    "get the authors' split 101_ObjectCategories_split.zip (the Dropbox link in the original "
    "DFAD README; its test set has 1695 images) and extract it to {split}, or make a different "
    "split with `python data/split_caltech101.py --root {data_root}` (not the authors' split: "
    "the released caltech101-resnet34.pt must be evaluated on the authors' split)"
)


def _download(data_root: str) -> None:
    """Fetch 101_ObjectCategories with torchvision's downloader; the split still has to be made."""
    from torchvision.datasets import Caltech101 as TorchvisionCaltech101

    try:
        TorchvisionCaltech101(data_root, download=True)
    except Exception as err:  # network errors come in many types
        reason = (str(err).strip() or type(err).__name__).splitlines()[0]
        raise UserError(
            f"downloading Caltech101 failed ({reason}): extract 101_ObjectCategories.tar.gz to "
            f"{Path(data_root) / 'caltech101' / '101_ObjectCategories'} by hand"
        ) from err


class Caltech101(Dataset):
    """`<data_root>/caltech101/101_ObjectCategories_split/{train,test}/<category>/<file>`, RGB;
    labels index the sorted folders of `101_ObjectCategories/` without BACKGROUND_Google, the
    released teacher's output order (docs/original-release.md#caltech101-needs-the-unsplit-folder).
    """

    def __init__(self, data_root: str | Path, train: bool = True,
                 transform: Callable | None = None, download: bool = False) -> None:
        base = Path(data_root) / "caltech101"
        originals, split = base / "101_ObjectCategories", base / "101_ObjectCategories_split"
        split_help = SPLIT_HELP.format(split=split, data_root=data_root)
        if not originals.is_dir() and download:
            _download(str(data_root))
        if not originals.is_dir():
            raise UserError(f"Caltech101 not found: {originals} is missing (it gives the 101 "
                            "category names; extract 101_ObjectCategories.tar.gz from the "
                            "Caltech101 release there, or pass --download to fetch it); the split "
                            f"is needed too: {split_help}")
        part = split / ("train" if train else "test")
        if not part.is_dir():
            raise UserError(f"Caltech101 split not found: {part} is missing: {split_help}")
        # Folders only: a stray file (.DS_Store) must not shift every label after it.
        self.classes = sorted(name for name in os.listdir(originals)
                              if name != BACKGROUND and (originals / name).is_dir())
        self.transform = transform
        self.samples: list[tuple[Path, int]] = []
        for label, category in enumerate(self.classes):
            if not (part / category).is_dir():
                raise UserError(f"Caltech101 split {part} has no folder {category!r} of "
                                f"{originals}: the split belongs to another copy; {split_help}")
            # Sorted, unlike the original's listdir order, so the dataset is the same everywhere.
            self.samples += [(part / category / name, label)
                             for name in sorted(os.listdir(part / category))]
        print(f"Caltech101 {part.name}: {len(self.samples)} images, {len(self.classes)} classes, "
              f"from {part}")
        if not train and len(self.samples) != OFFICIAL_TEST_SIZE:
            print(f"note: the authors' Caltech101 test split has {OFFICIAL_TEST_SIZE} images, "
                  f"this one {len(self.samples)}: accuracies are comparable with the paper's only "
                  "on the authors' split (docs/original-release.md#reports-from-users)")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | Image.Image, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")  # some Caltech101 images are grayscale
        return (image if self.transform is None else self.transform(image)), label
