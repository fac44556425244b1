"""Tiny CIFAR-10/100 datasets in torchvision's real on-disk format, for fast end-to-end tests.

torchvision's `CIFAR10`/`CIFAR100` verify every batch file against md5 sums stored as class
attributes (`train_list`, `test_list`, `meta`), so hand-written tiny files are rejected as
"corrupted". We do not switch that check off. `cifar_checksums_for(root)` computes the md5 of the
files actually written under `root` and installs them on the classes for the duration of a
`with` block: the real class still runs its real integrity check, against the test files, and the
original sums are restored afterwards. With the sums registered, `download=True` (what
`dataloader.py` passes, docs/original-release.md#datasets-and-on-disk-layouts) finds the files
intact and never touches the network.
"""
from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100


def _write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _images(n: int, seed: int) -> np.ndarray:
    """Rows of 3072 uint8 values: 1024 red, 1024 green, 1024 blue, as in the real batches."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _labels(n: int, num_classes: int, offset: int) -> list[int]:
    return [(i + offset) % num_classes for i in range(n)]


def write_tiny_cifar10(root: str | Path, n_train: int = 8, n_test: int = 8) -> dict[str, list[int]]:
    """Write `<root>/cifar-10-batches-py/` with `n_train` images spread over the five data
    batches and `n_test` in `test_batch`. Returns the labels in load order, per split."""
    folder = Path(root) / CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    train = _labels(n_train, 10, offset=0)
    test = _labels(n_test, 10, offset=3)
    images = _images(n_train, seed=0)
    batches = np.array_split(np.arange(n_train), 5)
    for b, idx in enumerate(batches, start=1):
        _write_pickle(
            folder / f"data_batch_{b}",
            {"batch_label": f"training batch {b} of 5", "labels": [train[i] for i in idx],
             "data": images[idx], "filenames": [f"train_{i}.png" for i in idx]},
        )
    _write_pickle(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1", "labels": test, "data": _images(n_test, seed=1),
         "filenames": [f"test_{i}.png" for i in range(n_test)]},
    )
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    _write_pickle(
        folder / "batches.meta",
        {"num_cases_per_batch": len(batches[0]), "label_names": names, "num_vis": 3072},
    )
    return {"train": train, "test": test}


def write_tiny_cifar100(
    root: str | Path, n_train: int = 8, n_test: int = 8
) -> dict[str, list[int]]:
    """Write `<root>/cifar-100-python/{train,test,meta}`. Returns the fine labels per split."""
    folder = Path(root) / CIFAR100.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": _labels(n_train, 100, offset=0), "test": _labels(n_test, 100, offset=50)}
    for seed, (split, fine) in enumerate(splits.items()):
        _write_pickle(
            folder / split,
            {"filenames": [f"{split}_{i}.png" for i in range(len(fine))], "batch_label": split,
             "fine_labels": fine, "coarse_labels": [label // 5 for label in fine],
             "data": _images(len(fine), seed=seed)},
        )
    _write_pickle(
        folder / "meta",
        {"fine_label_names": [f"fine_{i}" for i in range(100)],
         "coarse_label_names": [f"coarse_{i}" for i in range(20)]},
    )
    return splits


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@contextmanager
def cifar_checksums_for(root: str | Path) -> Iterator[None]:
    """Make torchvision's CIFAR10/CIFAR100 verify against the files written under `root`.

    Covers each of the two datasets whose folder exists; raises if neither does, so a wrong
    root fails here rather than as a confusing "corrupted" error later.
    """
    present = [cls for cls in (CIFAR10, CIFAR100) if (Path(root) / cls.base_folder).is_dir()]
    if not present:
        raise FileNotFoundError(f"no {CIFAR10.base_folder} or {CIFAR100.base_folder} under {root}")
    with ExitStack() as stack:
        for cls in present:
            folder = Path(root) / cls.base_folder
            for attr in ("train_list", "test_list"):
                sums = [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)]
                stack.enter_context(mock.patch.object(cls, attr, sums))
            meta = {**cls.meta, "md5": _md5(folder / cls.meta["filename"])}
            stack.enter_context(mock.patch.object(cls, "meta", meta))
        yield
