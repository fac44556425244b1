"""`get_dataloader(args)`: the datasets of SPEC §5, one table entry per dataset."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import datasets, transforms

from dataset.caltech import Caltech101
from dataset.camvid import CamVid
from dataset.nyu import NYUv2
from utils import distributed
from utils import ext_transforms as et
from utils.errors import UserError


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


# SPEC §5: the CIFAR-10 statistics, used for CIFAR-100 too (as the original does).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def _cifar(cls: type, root: str, train: bool, download: bool) -> Dataset:
    normalize = [transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    return _torchvision_dataset(
        cls, root, train, download, transforms.Compose(augment + normalize if train else normalize),
        where=Path(root) / cls.base_folder,
        what=f"the python-version batches extracted from {cls.filename}",
    )


def _cifar10(root: str, train: bool, download: bool) -> Dataset:
    return _cifar(datasets.CIFAR10, root, train, download)


def _cifar100(root: str, train: bool, download: bool) -> Dataset:
    return _cifar(datasets.CIFAR100, root, train, download)


def _caltech101(root: str, train: bool, download: bool) -> Dataset:
    """128 px, shorter side first; Normalize(0.5, 0.5) maps to [-1, 1], GeneratorB's Tanh range."""
    size = [transforms.Resize(128)]
    crop = ([transforms.RandomCrop(128), transforms.RandomHorizontalFlip()] if train
            else [transforms.CenterCrop(128)])
    normalize = [transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]
    return Caltech101(root, train=train, transform=transforms.Compose(size + crop + normalize),
                      download=download)


def _segmentation_transforms(train: bool) -> et.ExtCompose:
    """SPEC §5: shorter side 256; train on random 128 crops (GeneratorB's size), test on the full
    256x341 image; Normalize(0.5, 0.5) maps to [-1, 1], GeneratorB's Tanh range (SPEC §10.17)."""
    size = [et.ExtResize(256)]
    crop = ([et.ExtRandomCrop(128, pad_if_needed=True), et.ExtRandomHorizontalFlip()] if train
            else [])
    normalize = [et.ExtToTensor(), et.ExtNormalize((0.5,) * 3, (0.5,) * 3)]
    return et.ExtCompose(size + crop + normalize)


def _camvid(root: str, train: bool, download: bool) -> Dataset:
    """`root` is the CamVid folder itself (README: --data_root ./data/CamVid); no download."""
    return CamVid(root, "train" if train else "test", _segmentation_transforms(train))


def _nyuv2(root: str, train: bool, download: bool) -> Dataset:
    """`root` is the NYUv2 folder itself (README: --data_root ./data/NYUv2); no download."""
    return NYUv2(root, "train" if train else "test", _segmentation_transforms(train))


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
    "cifar10": DatasetEntry(_cifar10, num_classes=10),
    "cifar100": DatasetEntry(_cifar100, num_classes=100),
    "caltech101": DatasetEntry(_caltech101, num_classes=101),
    "camvid": DatasetEntry(_camvid, num_classes=11),
    "nyuv2": DatasetEntry(_nyuv2, num_classes=13),
}


def _build(entry: DatasetEntry, root: str, train: bool, download: bool) -> Dataset:
    """Under torchrun only local rank 0 may download: the others wait, then read its files."""
    if not download:
        return entry.build(root, train, False)
    with distributed.local_main_first():
        return entry.build(root, train, distributed.local_rank() == 0)


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
        train_set = _build(entry, args.data_root, True, download)
        # Under torchrun each rank reads its own share; --batch_size stays the global batch.
        sampler = (DistributedSampler(train_set, shuffle=True, seed=args.seed)
                   if distributed.world_size() > 1 else None)
        train_loader = DataLoader(train_set, batch_size=distributed.local_batch(args.batch_size),
                                  shuffle=sampler is None, sampler=sampler,
                                  num_workers=workers, pin_memory=pin)
    # SPEC §10.20: the original's test loaders ignored --test_batch_size; ours honour it.
    test_loader = DataLoader(_build(entry, args.data_root, False, download),
                             batch_size=args.test_batch_size, shuffle=False,
                             num_workers=workers, pin_memory=pin)
    return train_loader, test_loader


def check_num_classes(loader: DataLoader, num_classes: int) -> None:
    """More labels than outputs fails deep inside the loss; say it in one line up front."""
    classes = getattr(loader.dataset, "classes", None)
    if classes is not None and len(classes) > num_classes:
        raise UserError(f"the dataset has {len(classes)} classes but the model has only "
                        f"{num_classes} outputs: raise --num_classes")
