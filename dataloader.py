"""`get_dataloader(args)`: the datasets of SPEC §5, one table entry per dataset."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from utils.misc import UserError


def _mnist(root: str, train: bool, download: bool) -> Dataset:
    transform = transforms.Compose([
        transforms.Resize((32, 32)),
        transforms.ToTensor(),
        transforms.Normalize((0.1307,), (0.3081,)),
    ])
    return _torchvision_dataset(
        datasets.MNIST, root, train, download, transform,
        where=Path(root) / "MNIST" / "raw",
        what="the four idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
             "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
    )


def _torchvision_dataset(cls: type, root: str, train: bool, download: bool,
                         transform: Callable, where: Path, what: str) -> Dataset:
    """Build a torchvision dataset; a missing or failed download becomes one clear line."""
    try:
        return cls(root, train=train, download=False, transform=transform)
    except RuntimeError as err:
        if not download:
            raise UserError(
                f"{cls.__name__} not found in {where} (expected {what}): pass --download to "
                "fetch it, or point --data_root at the folder that holds it"
            ) from err
    try:
        return cls(root, train=train, download=True, transform=transform)
    except Exception as err:  # network errors come in many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{cls.__name__} is not in {where} and the download failed ({reason}): "
            f"put {what} there, or point --data_root at the folder that holds it"
        ) from err


@dataclass(frozen=True)
class DatasetEntry:
    build: Callable[[str, bool, bool], Dataset]  # (root, train, download) -> dataset
    num_classes: int


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(_mnist, num_classes=10),
}


def get_dataloader(
    args: argparse.Namespace, train: bool = True
) -> tuple[DataLoader | None, DataLoader]:
    """(train_loader, test_loader) for `args.dataset`; `train=False` skips the training set,
    which data-free distillation never reads (SPEC §3.1 step 3)."""
    entry = DATASETS[args.dataset]
    download = getattr(args, "download", False)
    workers = getattr(args, "num_workers", 2)
    pin = torch.cuda.is_available()
    train_loader = None
    if train:
        train_loader = DataLoader(entry.build(args.data_root, True, download),
                                  batch_size=args.batch_size, shuffle=True,
                                  num_workers=workers, pin_memory=pin)
    # SPEC §10.20: the original's test loaders ignored --test_batch_size; ours honour it.
    test_loader = DataLoader(entry.build(args.data_root, False, download),
                             batch_size=args.test_batch_size, shuffle=False,
                             num_workers=workers, pin_memory=pin)
    return train_loader, test_loader
