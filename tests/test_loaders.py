"""The loaders at GPU speed (dataloader.py): persistent workers with a per-epoch random stream
equal to plain per-epoch workers (so a resumed run is exact), pinning from the device in use,
--cache_images, the --num_workers default; on tiny data in the real formats."""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from dataloader import EpochSeeds, _seed_like_a_new_worker, get_dataloader
from reporting.sample_grids import _first_batch
from runtime import cli
from runtime.errors import UserError
from runtime.run_state import capture_rng, restore_rng
from tests.helpers.cifar_fixtures import cifar_checksums_for, write_tiny_cifar10
from tests.helpers.segmentation_fixtures import write_tiny_camvid, write_tiny_nyuv2
from tests.helpers.waiting import wait_for_file

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "tests" / "helpers" / "run_with_tiny_cifar.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loaders")
    write_tiny_cifar10(root, n_train=12, n_test=4)
    write_tiny_camvid(root / "CamVid", n_train=5, n_test=2)
    write_tiny_nyuv2(root / "NYUv2", train=(1, 3, 5), test=(2, 4))
    return root


def loader_args(dataset: str, data: Path, workers: int, **kw) -> argparse.Namespace:
    root = {"camvid": data / "CamVid", "nyuv2": data / "NYUv2"}.get(dataset, data)
    return argparse.Namespace(**{"dataset": dataset, "data_root": str(root), "batch_size": 4,
                                 "test_batch_size": 4, "num_workers": workers, "seed": 1,
                                 "download": False, **kw})


def loaders(dataset: str, data: Path, workers: int, device: torch.device | None = None,
            **kw) -> tuple[DataLoader, DataLoader]:
    with cifar_checksums_for(data):
        return get_dataloader(loader_args(dataset, data, workers, **kw), device=device)


def epochs(loader: DataLoader, n: int) -> list[list[torch.Tensor]]:
    """Every batch of `n` passes, images and targets, in order."""
    return [[t for batch in loader for t in batch] for _ in range(n)]


def assert_same(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y) and all(torch.equal(s, t) for s, t in zip(x, y, strict=True))


def test_workers_persist_and_pinning_follows_the_device(data):
    train, test = loaders("cifar10", data, 2, device=torch.device("cpu"))
    for loader in (train, test):
        assert loader.persistent_workers and not loader.pin_memory
    train, test = loaders("cifar10", data, 2, device=torch.device("cuda"))  # built, not iterated
    assert train.pin_memory and test.pin_memory
    train, test = loaders("cifar10", data, 0, device=torch.device("cuda"))
    assert not train.persistent_workers and train.pin_memory
    train, _ = loaders("cifar10", data, 2)
    assert not train.pin_memory  # no device given: nothing to pin for
    train, _ = loaders("cifar10", data, 2)
    epochs(train, 1)
    pids = [w.pid for w in train._iterator._workers]
    epochs(train, 1)
    assert [w.pid for w in train._iterator._workers] == pids  # not respawned


@pytest.mark.parametrize("dataset", ["cifar10", "camvid"])  # torch's RNG; Python's random
@pytest.mark.parametrize("workers", [0, 2])
def test_same_batches_and_stream_as_plain_per_epoch_loaders(data, dataset, workers):
    """Persistent or not, each epoch crops and flips as the plain DataLoader did before, and
    leaves the run's random stream where it did."""
    torch.manual_seed(3)
    random.seed(3)
    ours = epochs(loaders(dataset, data, workers)[0], 3)
    after_ours = capture_rng()
    train, _ = loaders(dataset, data, workers)
    plain = DataLoader(train.dataset.dataset, batch_size=4, shuffle=True, num_workers=workers)
    torch.manual_seed(3)
    random.seed(3)
    assert_same(ours, epochs(plain, 3))
    after_plain = capture_rng()
    assert after_ours["python"] == after_plain["python"]
    assert torch.equal(after_ours["numpy"][1], after_plain["numpy"][1])
    assert torch.equal(after_ours["torch"], after_plain["torch"])


class NumpyDraws(torch.utils.data.Dataset):
    """Each item: the worker that read it and a draw from that worker's numpy stream."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[int, int]:
        return torch.utils.data.get_worker_info().id, int(np.random.randint(2**31))


def test_numpy_is_seeded_as_a_new_dataloader_worker_seeds_it():
    """numpy's seed without torch's private helper, checked against real workers."""
    torch.manual_seed(5)
    items = list(DataLoader(NumpyDraws(), batch_size=None, num_workers=2))
    torch.manual_seed(5)
    base_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    for worker in (0, 1):
        _seed_like_a_new_worker(base_seed, worker)
        ours = [int(np.random.randint(2**31)) for _ in range(2)]
        assert [draw for w, draw in items if w == worker] == ours


def test_resumed_loader_continues_the_augmentations_exactly(data):
    """A run resumed after epoch 1 starts new workers: its epochs 2-3 are the uninterrupted
    run's, which a plain persistent DataLoader does not give (the test can tell)."""
    def run(make: Callable[[], DataLoader], resume_after: int | None) -> list[list[torch.Tensor]]:
        torch.manual_seed(5)
        loader = make()
        if resume_after is None:
            return epochs(loader, 3)
        first = epochs(loader, resume_after)
        saved = capture_rng()  # what the state file keeps
        del loader  # the process dies; a new one restores the RNGs from the state file
        random.seed(99)
        torch.manual_seed(99)
        restore_rng(saved)
        return first + epochs(make(), 3 - resume_after)

    def ours() -> DataLoader:
        return loaders("cifar10", data, 2)[0]

    def persistent() -> DataLoader:
        return DataLoader(dataset, batch_size=4, shuffle=True, num_workers=2,
                          persistent_workers=True)

    assert_same(run(ours, None), run(ours, 1))
    dataset = loaders("cifar10", data, 0)[0].dataset.dataset
    straight, resumed = run(persistent, None), run(persistent, 1)
    assert_same(straight[:1], resumed[:1])
    with pytest.raises(AssertionError):
        assert_same(straight[1:], resumed[1:])


@pytest.mark.parametrize("dataset", ["camvid", "nyuv2"])
@pytest.mark.parametrize("workers", [0, 2])
def test_cached_images_give_the_same_tensors(data, dataset, workers):
    results = []
    for cache in (False, True):
        random.seed(7)
        torch.manual_seed(7)
        train, test = loaders(dataset, data, workers, cache_images=cache)
        results.append(epochs(train, 2) + epochs(test, 1))
        assert (train.dataset.decoded is not None) == cache
    assert_same(*results)
    decoded = train.dataset.decoded
    assert len(decoded) == len(train.dataset)
    assert all(image.size == label.size == (341, 256) for image, label in decoded)


def test_cache_images_for_another_dataset_is_one_clear_error(data):
    with pytest.raises(UserError, match="--cache_images applies to camvid and nyuv2"):
        loaders("cifar10", data, 0, cache_images=True)


def test_first_sample_batch_is_read_once(data):
    _, test = loaders("camvid", data, 2)
    images, targets = _first_batch(test)
    assert _first_batch(test)[0] is images
    assert torch.equal(images, next(iter(test))[0]) and len(targets) == 2


@pytest.mark.parametrize("cpus, local, expected", [(2, None, 2), (64, None, 8), (16, "4", 4),
                                                   (64, "8", 8), (2, "4", 1)])
def test_num_workers_default_shares_the_cpus_among_local_ranks(monkeypatch, cpus, local,
                                                               expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert cli.default_num_workers() == expected
    parser = argparse.ArgumentParser()
    cli.add_runtime_args(parser)
    assert parser.parse_args([]).num_workers == expected
    assert f"at most 8: {expected} here" in " ".join(parser.format_help().split())


def test_negative_num_workers_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "train_teacher_seg.py"),
                             "--num_workers", "-1"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert "argument --num_workers: must be >= 0, got -1" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_teacher_with_workers_resumes_bit_identically(data, tmp_path):
    """CIFAR's random crops and flips run in 2 persistent workers; a run killed after epoch 1
    and resumed ends with the same weights as one never stopped."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    teacher = [sys.executable, str(LAUNCHER), "data", str(REPO / "train_teacher.py"),
               "--dataset", "cifar10", "--model", "resnet34_8x", "--epochs", "3",
               "--batch_size", "4", "--test_batch_size", "4", "--num_workers", "2",
               "--device", "cpu", "--no_visdom"]
    state = "checkpoint/teacher/cifar10-resnet34_8x-state.pt"
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for work in (straight, killed):
        shutil.copytree(data / "cifar-10-batches-py", work / "data" / "cifar-10-batches-py")
    done = subprocess.run(teacher, cwd=straight, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(teacher, cwd=killed, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_file(killed / state, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    resumed = subprocess.run([*teacher, "--resume"], cwd=killed, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    for name in ("cifar10-resnet34_8x.pt", "cifar10-resnet34_8x-state.pt"):
        # The best checkpoint exists once the accuracy beats 0 (random labels: maybe never).
        assert (killed / "checkpoint/teacher" / name).exists() == (
            straight / "checkpoint/teacher" / name).exists()
        if not (straight / "checkpoint/teacher" / name).exists():
            continue
        ours = torch.load(killed / "checkpoint/teacher" / name, weights_only=True)
        theirs = torch.load(straight / "checkpoint/teacher" / name, weights_only=True)
        ours, theirs = ours.get("model", ours), theirs.get("model", theirs)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name


def test_set_epoch_reaches_the_distributed_sampler():
    """Under torchrun the teacher loop's set_epoch must still reshuffle each rank's share."""
    sampler = EpochSeeds(DistributedSampler(range(16), num_replicas=2, rank=0, seed=1))
    first = [index for _, index in sampler]
    sampler.set_epoch(1)
    second = [index for _, index in sampler]
    assert len(first) == len(second) == 8 and first != second
