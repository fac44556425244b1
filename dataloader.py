"""The datasets of docs/original-release.md#datasets-and-on-disk-layouts, and their loaders."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from torchvision import datasets, transforms

from dataset.caltech import Caltech101
from dataset.camvid import CamVid
from dataset.image_label_pairs import ImageLabelPairs
from dataset.nyu import NYUv2
from runtime import device as devices
from runtime import original_numerics
from runtime.errors import UserError
from utils import ext_transforms as et

# the CIFAR-10 statistics, for CIFAR-100 too, as the original (docs/original-release.md)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
_POINT_AT = "(DATA_ROOT= for run_mnist.sh and scripts/run_*.sh) at the folder that holds it"


def _torchvision_dataset(cls: type, root: str, train: bool, download: bool,
                         transform: Callable, where: Path, what: str) -> Dataset:
    """Build a torchvision dataset; a missing, unreadable or failed download is one clear line."""
    created = [p for p in (where, *where.parents) if not p.exists()]  # deepest first
    try:
        return cls(root, train=train, download=download, transform=transform)
    except Exception as err:  # a missing or corrupt file, a network error: many types
        for folder in created:  # a failed download leaves no empty folders behind
            with suppress(OSError):
                folder.rmdir()
        # torchvision's message puts the cause (e.g. "<urlopen error ...>") on its last line
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(err).__name__
        if not download:
            seen = f", or unreadable ({reason})" if where.is_dir() else ""
            raise UserError(f"{cls.__name__} not found in {where}{seen}: put {what} there, pass "
                            f"--download to fetch it, or point --data_root {_POINT_AT}") from err
        raise UserError(f"{cls.__name__} is not in {where} and the download failed ({reason}): "
                        f"put {what} there, or point --data_root {_POINT_AT}") from err


def _mnist(root: str, train: bool, download: bool) -> Dataset:
    transform = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    return _torchvision_dataset(
        datasets.MNIST, root, train, download, transform, where=Path(root) / "MNIST" / "raw",
        what="the four idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
             "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)")


def _cifar(cls: type, root: str, train: bool, download: bool) -> Dataset:
    normalize = [transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    return _torchvision_dataset(
        cls, root, train, download, transforms.Compose(augment + normalize if train else normalize),
        where=Path(root) / cls.base_folder,
        what=f"the python-version batches extracted from {cls.filename}")


def _caltech101(root: str, train: bool, download: bool) -> Dataset:
    """128 px, shorter side first; Normalize(0.5, 0.5) maps to [-1, 1], GeneratorB's Tanh range."""
    crop = ([transforms.RandomCrop(128), transforms.RandomHorizontalFlip()] if train
            else [transforms.CenterCrop(128)])
    return Caltech101(root, train=train, download=download, transform=transforms.Compose(
        [transforms.Resize(128), *crop, transforms.ToTensor(),
         transforms.Normalize((0.5,) * 3, (0.5,) * 3)]))


def _segmentation(cls: type, root: str, train: bool, download: bool) -> Dataset:
    """`root` is the CamVid or NYUv2 folder itself (--data_root ./data/CamVid); no download.
    Shorter side 256; train on random 128 crops (GeneratorB's size), test on the full 256x341
    image, in [-1, 1] (docs/original-release.md#generator-size-versus-test-size)."""
    crop = ([et.ExtRandomCrop(128, pad_if_needed=True), et.ExtRandomHorizontalFlip()] if train
            else [])
    return cls(root, "train" if train else "test", et.ExtCompose(
        [et.ExtResize(256), *crop, et.ExtToTensor(), et.ExtNormalize((0.5,) * 3, (0.5,) * 3)]))


def _keep_decoded(dataset: ImageLabelPairs, threads: int) -> None:
    """--cache_images: decode and resize every pair once, in memory (CamVid about 270 MB, NYUv2
    about 650 MB). The resize is deterministic, so moving it ahead of the random crop and flip
    leaves every sample as it was. PIL releases the GIL while decoding: threads share the work."""
    resize, *rest = dataset.transforms.transforms  # ExtResize first: _segmentation
    with ThreadPoolExecutor(threads) as pool:
        dataset.decoded = list(pool.map(lambda i: resize(*dataset.read(i)), range(len(dataset))))
    dataset.transforms = et.ExtCompose(rest)


class DatasetEntry(NamedTuple):
    build: Callable[[str, bool, bool], Dataset]  # (root, train, download) -> dataset
    num_classes: int
    # the original test loader shuffled with --batch_size (docs/original-release.md#test-batch-size)
    shuffled_test: bool = False


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(_mnist, 10, shuffled_test=True),
    "cifar10": DatasetEntry(partial(_cifar, datasets.CIFAR10), 10, shuffled_test=True),
    "cifar100": DatasetEntry(partial(_cifar, datasets.CIFAR100), 100, shuffled_test=True),
    "caltech101": DatasetEntry(_caltech101, 101),
    "camvid": DatasetEntry(partial(_segmentation, CamVid), 11),
    "nyuv2": DatasetEntry(partial(_segmentation, NYUv2), 13),
}


def get_dataloader(args: argparse.Namespace, train: bool = True
                   ) -> tuple[DataLoader | None, DataLoader]:
    """(train_loader, test_loader); `train=False` skips the training set, which data-free
    distillation never reads. Plain DataLoaders, as the original's: each pass draws its shuffle
    and workers' seeds from the run's stream, so a run resumed at an epoch boundary reads what it
    would have read. Under torchrun each rank reads its share (--batch_size stays global)."""
    entry = DATASETS[args.dataset]
    # Under torchrun the first process of each node downloads; the others wait, then read.
    first_on_node = os.environ.get("LOCAL_RANK", "0") == "0"
    shared = args.download and devices.world_size() > 1
    if shared and not first_on_node:
        torch.distributed.barrier()
    download = args.download and first_on_node
    train_set = entry.build(args.data_root, True, download) if train else None
    test_set = entry.build(args.data_root, False, download)
    if shared and first_on_node:
        torch.distributed.barrier()
    if getattr(args, "cache_images", False):  # a flag of train_teacher_seg.py alone
        for dataset in (train_set, test_set) if train else (test_set,):
            _keep_decoded(dataset, max(1, args.num_workers))
    pin = args.device != "cpu" and not args.no_cuda and torch.cuda.is_available()
    options = {"num_workers": args.num_workers, "pin_memory": pin}
    train_loader = None
    if train:
        sampler = (DistributedSampler(train_set, seed=args.seed) if devices.world_size() > 1
                   else RandomSampler(train_set))
        train_loader = DataLoader(train_set, devices.local_batch(args.batch_size),
                                  sampler=sampler, **options)
    # docs/original-release.md#test-batch-size: the original's MNIST and CIFAR test loaders
    # shuffled with --batch_size; --original_numerics does the same.
    if original_numerics.shuffled_test_loader(args, entry.shuffled_test):
        return train_loader, DataLoader(test_set, args.batch_size, shuffle=True, **options)
    return train_loader, DataLoader(test_set, args.test_batch_size, shuffle=False, **options)


def num_classes(args: argparse.Namespace) -> int:
    """The model's outputs: --num_classes, else the dataset's."""
    return args.num_classes or DATASETS[args.dataset].num_classes


def check_num_classes(loader: DataLoader, num_classes: int) -> None:
    """More labels than outputs fails deep inside the loss; say it in one line up front."""
    classes = getattr(loader.dataset, "classes", None)
    if classes is not None and len(classes) > num_classes:
        raise UserError(f"the dataset has {len(classes)} classes but the model has only "
                        f"{num_classes} outputs: raise --num_classes")
