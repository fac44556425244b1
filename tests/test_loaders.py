"""The loaders (dataloader.py), plain DataLoaders on tiny data in the real formats: a run resumed
at an epoch boundary reads what it would have read, --cache_images changes no tensor, pinning
follows the device, the sample panels read the test set once, and the --num_workers default."""
import argparse
import os
import random

import pytest
import torch
from torch.utils.data import DataLoader

import train_teacher
import train_teacher_seg
from dataloader import get_dataloader
from reporting.sample_grids import _first_batch
from runtime import cli
from runtime.state import capture_rng, restore_rng
from tests.helpers.cifar_fixtures import cifar_checksums_for, write_tiny_cifar10
from tests.helpers.segmentation_fixtures import write_tiny_camvid, write_tiny_nyuv2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("loaders")
    write_tiny_cifar10(root, n_train=12, n_test=4)
    write_tiny_camvid(root / "CamVid", n_train=5, n_test=2)
    write_tiny_nyuv2(root / "NYUv2", train=(1, 3, 5), test=(2, 4))
    return root


def loaders(dataset: str, data, workers: int = 0, *flags: str) -> tuple[DataLoader, DataLoader]:
    """The loaders of the script that trains on `dataset`'s images: its teacher's."""
    script, root = ((train_teacher_seg, data / {"camvid": "CamVid", "nyuv2": "NYUv2"}[dataset])
                    if dataset in ("camvid", "nyuv2") else (train_teacher, data))
    args = script.get_parser().parse_args([
        "--dataset", dataset, "--data_root", str(root), "--batch_size", "4", "--test_batch_size",
        "4", "--num_workers", str(workers), "--device", "cpu", *flags])
    with cifar_checksums_for(data):
        return get_dataloader(args)


def epochs(loader: DataLoader, n: int) -> list[torch.Tensor]:
    """Every image and target of `n` passes, in order."""
    return [t for _ in range(n) for batch in loader for t in batch]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dataset", ["cifar10", "camvid"])  # torch's crops; Python's random
@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_resumed_after_an_epoch_reads_what_it_would_have_read(data, dataset, workers):
    """The shuffle and the augmentations (in the workers or not) draw from the run's stream,
    which the state file keeps: epochs 2-3 after a restart are the uninterrupted run's."""
    torch.manual_seed(5)
    random.seed(5)
    straight = epochs(loaders(dataset, data, workers)[0], 3)
    torch.manual_seed(5)
    random.seed(5)
    first = epochs(loaders(dataset, data, workers)[0], 1)
    saved = capture_rng()  # what the state file keeps
    torch.manual_seed(99)  # a new process
    random.seed(99)
    unrestored = epochs(loaders(dataset, data, workers)[0], 2)
    restore_rng(saved)
    resumed = epochs(loaders(dataset, data, workers)[0], 2)
    assert_same(straight, first + resumed)
    assert not all(torch.equal(a, b) for a, b in zip(resumed, unrestored, strict=True))


@pytest.mark.parametrize("dataset", ["camvid", "nyuv2"])
def test_cached_images_give_the_same_tensors(data, dataset):
    results = []
    for cache in ([], ["--cache_images"]):
        random.seed(7)
        torch.manual_seed(7)
        train, test = loaders(dataset, data, 0, *cache)
        results.append(epochs(train, 2) + epochs(test, 1))
    assert_same(*results)
    decoded = train.dataset.decoded
    assert len(decoded) == len(train.dataset)
    assert all(image.size == label.size == (341, 256) for image, label in decoded)


def test_pinning_follows_the_device(data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # built, never iterated
    assert not loaders("cifar10", data)[0].pin_memory  # --device cpu
    args = train_teacher.get_parser().parse_args(["--dataset", "cifar10", "--data_root",
                                                  str(data), "--num_workers", "0"])
    with cifar_checksums_for(data):
        train, test = get_dataloader(args)
    assert train.pin_memory and test.pin_memory  # --device auto, CUDA present


def test_the_first_sample_batch_is_read_once(data):
    _, test = loaders("camvid", data)
    images, targets = _first_batch(test)
    assert _first_batch(test)[0] is images
    assert torch.equal(images, next(iter(test))[0]) and len(targets) == 2


@pytest.mark.parametrize("cpus, local, expected", [(2, None, 2), (64, None, 8), (16, "4", 4),
                                                   (2, "4", 1)])
def test_num_workers_default_shares_the_cpus_among_local_ranks(monkeypatch, cpus, local,
                                                               expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    parser = argparse.ArgumentParser()
    cli.add_runtime_args(parser)
    assert parser.parse_args([]).num_workers == expected
    assert f"at most 8: {expected} here" in " ".join(parser.format_help().split())
