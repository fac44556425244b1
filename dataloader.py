"""`get_dataloader(args)`: the datasets of docs/original-release.md#datasets-and-on-disk-layouts,
one table entry per dataset, and their loaders."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from torchvision import datasets, transforms

from dataset.caltech import Caltech101
from dataset.camvid import CamVid
from dataset.nyu import NYUv2
from runtime import device as devices
from runtime import original_numerics
from runtime.errors import UserError
from utils import ext_transforms as et

# idx file header: magic number (2051 images, 2049 labels), then one big-endian int per dimension
IDX_MAGIC = {"images-idx3-ubyte": 2051, "labels-idx1-ubyte": 2049}


def check_idx_file(path: Path) -> None:
    """An MNIST idx file torchvision would refuse with an assertion or a reshape error: say which
    file and what is wrong with it (a swapped image/label pair, a cut-short download)."""
    kind = next(k for k in IDX_MAGIC if path.name.endswith(k))
    with open(path, "rb") as f:
        data = f.read(16)  # the longest header: magic and three dimensions
    size = path.stat().st_size
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != IDX_MAGIC[kind]:
        other = [k for k, v in IDX_MAGIC.items() if v == magic]
        what = (f"holds {other[0].split('-')[0]} (magic {magic}): are the image and label files "
                "swapped?" if other else "is not an idx file (truncated or corrupt)")
        raise UserError(f"MNIST file {path} {what}: download it again (--download into an empty "
                        "folder)")
    dims = 3 if kind.startswith("images") else 1
    header = 4 + 4 * dims
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    expected = header + int(np.prod(shape)) if len(data) >= header else header
    if size != expected:
        raise UserError(f"MNIST file {path} is truncated or corrupt ({size} bytes, its "
                        f"header says {expected}): download it again (--download into an "
                        "empty folder)")


def _mnist(root: str, train: bool, download: bool) -> Dataset:
    raw = Path(root) / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    for kind in IDX_MAGIC:
        if (raw / f"{prefix}-{kind}").is_file():
            check_idx_file(raw / f"{prefix}-{kind}")
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


# docs/original-release.md#datasets-and-on-disk-layouts: the CIFAR-10 statistics, used for CIFAR-100
# too (as the original does).
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
    """docs/original-release.md#datasets-and-on-disk-layouts: shorter side 256; train on random 128
    crops (GeneratorB's size), test on the full 256x341 image; Normalize(0.5, 0.5) maps to [-1, 1],
    GeneratorB's Tanh range (docs/original-release.md#generator-size-versus-test-size)."""
    size = [et.ExtResize(256)]
    crop = ([et.ExtRandomCrop(128, pad_if_needed=True), et.ExtRandomHorizontalFlip()] if train
            else [])
    normalize = [et.ExtToTensor(), et.ExtNormalize((0.5,) * 3, (0.5,) * 3)]
    return et.ExtCompose(size + crop + normalize)


def _keep_decoded(dataset: CamVid | NYUv2, threads: int) -> None:
    """--cache_images: decode and resize every pair once, in memory (CamVid: about 270 MB for
    train + test, NYUv2: about 650 MB; PIL keeps RGB in 4 bytes a pixel). The resize is
    deterministic, so moving it out of the per-item transforms, ahead of the random crop and
    flip, leaves every sample as it was. PIL releases the GIL while decoding and resizing, so
    threads share the work."""
    resize, *rest = dataset.transforms.transforms  # ExtResize first: _segmentation_transforms

    def decode(index: int) -> tuple[Any, Any]:
        return resize(*dataset.read(index))

    with ThreadPoolExecutor(threads) as pool:
        dataset.decoded = list(pool.map(decode, range(len(dataset))))
    dataset.transforms = et.ExtCompose(rest)


def _camvid(root: str, train: bool, download: bool) -> Dataset:
    """`root` is the CamVid folder itself (README: --data_root ./data/CamVid); no download."""
    return CamVid(root, "train" if train else "test", _segmentation_transforms(train))


def _nyuv2(root: str, train: bool, download: bool) -> Dataset:
    """`root` is the NYUv2 folder itself (README: --data_root ./data/NYUv2); no download."""
    return NYUv2(root, "train" if train else "test", _segmentation_transforms(train))


# the run scripts (run_mnist.sh, scripts/run_*.sh) pass their DATA_ROOT as --data_root
_POINT_AT = "(DATA_ROOT= for run_mnist.sh and scripts/run_*.sh) at the folder that holds it"


def _torchvision_dataset(cls: type, root: str, train: bool, download: bool,
                         transform: Callable, where: Path, what: str) -> Dataset:
    """Build a torchvision dataset; a missing or failed download becomes one clear line."""
    try:
        return cls(root, train=train, download=False, transform=transform)
    except RuntimeError as err:
        if not download:
            raise UserError(
                f"{cls.__name__} not found in {where} (expected {what}): pass --download to "
                f"fetch it, or point --data_root {_POINT_AT}"
            ) from err
    created = [p for p in (where, *where.parents) if not p.exists()]  # deepest first
    try:
        return cls(root, train=train, download=True, transform=transform)
    except Exception as err:  # network errors come in many types
        for folder in created:  # a failed download leaves no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
        # torchvision's message puts the cause (e.g. "<urlopen error ...>") on its last line
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(err).__name__
        raise UserError(
            f"{cls.__name__} is not in {where} and the download failed ({reason}): "
            f"put {what} there, or point --data_root {_POINT_AT}"
        ) from err


@dataclass(frozen=True)
class DatasetEntry:
    build: Callable[[str, bool, bool], Dataset]  # (root, train, download) -> dataset
    num_classes: int
    keep_decoded: Callable[[Any, int], None] | None = None  # (dataset, threads): --cache_images
    # the original test loader shuffled with --batch_size (docs/original-release.md#test-batch-size)
    shuffled_test: bool = False


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(_mnist, num_classes=10, shuffled_test=True),
    "cifar10": DatasetEntry(_cifar10, num_classes=10, shuffled_test=True),
    "cifar100": DatasetEntry(_cifar100, num_classes=100, shuffled_test=True),
    "caltech101": DatasetEntry(_caltech101, num_classes=101),
    "camvid": DatasetEntry(_camvid, num_classes=11, keep_decoded=_keep_decoded),
    "nyuv2": DatasetEntry(_nyuv2, num_classes=13, keep_decoded=_keep_decoded),
}


def get_dataloader(args: argparse.Namespace, train: bool = True
                   ) -> tuple[DataLoader | None, DataLoader]:
    """(train_loader, test_loader) for `args.dataset`; `train=False` skips the training set,
    which data-free distillation never reads (docs/original-release.md#the-training-loop).

    Plain DataLoaders, as the original's: each pass draws its shuffle and its workers' seeds
    from the run's stream, so a run resumed at an epoch boundary reads what it would have read.
    Under torchrun each rank reads its share of the training set (--batch_size stays global).
    """
    entry = DATASETS[args.dataset]
    cache = getattr(args, "cache_images", False)  # a flag of train_teacher_seg.py alone
    if cache and entry.keep_decoded is None:
        raise UserError(f"--cache_images applies to camvid and nyuv2, not {args.dataset}: "
                        "leave it out")
    options = {"num_workers": args.num_workers,
               "pin_memory": args.device != "cpu" and not args.no_cuda
               and torch.cuda.is_available()}
    train_loader = None
    if train:
        train_set = _build(entry, args.data_root, True, args.download, cache, args.num_workers)
        sampler = (DistributedSampler(train_set, seed=args.seed) if devices.world_size() > 1
                   else RandomSampler(train_set))
        train_loader = DataLoader(train_set, devices.local_batch(args.batch_size),
                                  sampler=sampler, **options)
    test_set = _build(entry, args.data_root, False, args.download, cache, args.num_workers)
    # docs/original-release.md#test-batch-size: the original's MNIST and CIFAR test loaders
    # shuffled with --batch_size; --original_numerics does the same.
    if original_numerics.shuffled_test_loader(args, entry.shuffled_test):
        return train_loader, DataLoader(test_set, args.batch_size, shuffle=True, **options)
    return train_loader, DataLoader(test_set, args.test_batch_size, shuffle=False, **options)


def _build(entry: DatasetEntry, root: str, train: bool, download: bool, cache: bool,
           workers: int) -> Dataset:
    """Under torchrun local rank 0 downloads first; the others then read its files."""
    if download and devices.world_size() > 1:
        if devices.rank() != 0:
            torch.distributed.barrier()
        dataset = entry.build(root, train, devices.rank() == 0)
        if devices.rank() == 0:
            torch.distributed.barrier()
    else:
        dataset = entry.build(root, train, download)
    if cache and entry.keep_decoded is not None:
        entry.keep_decoded(dataset, max(1, workers))
    return dataset


def check_num_classes(loader: DataLoader, num_classes: int) -> None:
    """More labels than outputs fails deep inside the loss; say it in one line up front."""
    classes = getattr(loader.dataset, "classes", None)
    if classes is not None and len(classes) > num_classes:
        raise UserError(f"the dataset has {len(classes)} classes but the model has only "
                        f"{num_classes} outputs: raise --num_classes")
