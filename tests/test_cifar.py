"""CIFAR-10/100: data loading, the DFAD_cifar schedule, and both scripts end to end on tiny files
in torchvision's real format (tests/helpers/cifar_fixtures.py; the md5 check stays on, nothing
downloads)."""
import argparse
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import transforms

import DFAD_cifar
import train_teacher
from dataloader import CIFAR_MEAN, CIFAR_STD, get_dataloader
from network.gan import GeneratorA
from network.resnet_8x import ResNet18_8x, ResNet34_8x
from runtime.errors import UserError
from runtime.run_files import step_schedulers
from tables.csv_rows import read_csv_runs
from tests.helpers.cifar_fixtures import (
    cifar_checksums_for,
    write_tiny_cifar10,
    write_tiny_cifar100,
)
from tests.helpers.script_args import parse

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "tests" / "helpers" / "run_with_tiny_cifar.py"
FAST = ["--device", "cpu", "--num_workers", "0", "--batch_size", "4", "--test_batch_size", "4"]


def loader_args(dataset: str, root: Path) -> argparse.Namespace:
    return parse(train_teacher.get_parser(), dataset=dataset, data_root=root, batch_size=4,
                 test_batch_size=4, num_workers=0)


def raw_test_images(root: Path, folder: str, name: str) -> torch.Tensor:
    """The test images as stored on disk (rows of 1024 R, 1024 G, 1024 B), scaled to [0, 1]."""
    with open(root / folder / name, "rb") as f:
        data = pickle.load(f, encoding="latin1")["data"]
    return torch.from_numpy(np.asarray(data).reshape(-1, 3, 32, 32)).float() / 255


@pytest.mark.parametrize(("dataset", "write", "folder", "test_file", "classes"), [
    ("cifar10", write_tiny_cifar10, "cifar-10-batches-py", "test_batch", 10),
    ("cifar100", write_tiny_cifar100, "cifar-100-python", "test", 100),
])
def test_tiny_cifar_through_get_dataloader(tmp_path, dataset, write, folder, test_file, classes):
    labels = write(tmp_path, n_train=8, n_test=8)
    with cifar_checksums_for(tmp_path):
        train_loader, test_loader = get_dataloader(loader_args(dataset, tmp_path))
    assert len(train_loader.dataset) == 8 and len(train_loader.dataset.classes) == classes
    steps = [type(t) for t in train_loader.dataset.transform.transforms]
    # docs/original-release.md#datasets-and-on-disk-layouts
    assert steps[:2] == [transforms.RandomCrop, transforms.RandomHorizontalFlip]
    images, targets = next(iter(train_loader))
    assert images.shape == (4, 3, 32, 32) and set(targets.tolist()) <= set(labels["train"])

    # The test split: no augmentation, no shuffle, the CIFAR-10 statistics for both datasets.
    test_images = torch.cat([x for x, _ in test_loader])
    test_targets = torch.cat([y for _, y in test_loader]).tolist()
    assert test_targets == labels["test"]
    mean, std = torch.tensor(CIFAR_MEAN).view(3, 1, 1), torch.tensor(CIFAR_STD).view(3, 1, 1)
    expected = (raw_test_images(tmp_path, folder, test_file) - mean) / std
    torch.testing.assert_close(test_images, expected)


@pytest.mark.parametrize(("dataset", "folder"), [("cifar10", "cifar-10-batches-py"),
                                                 ("cifar100", "cifar-100-python")])
def test_missing_cifar_names_the_expected_folder(tmp_path, dataset, folder):
    with pytest.raises(UserError, match=rf"not found in {tmp_path / folder} .*--download"):
        get_dataloader(loader_args(dataset, tmp_path), train=False)


@pytest.mark.parametrize("make_optimizer", [
    lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: torch.optim.Adam(params, lr=0.1),  # the generator's, on the same schedule
])
def test_schedule_decays_in_epochs_100_and_200(make_optimizer):
    optimizer = make_optimizer([torch.zeros(1, requires_grad=True)])
    recipe = DFAD_cifar.make_recipe("cifar10")
    assert recipe.scheduler_at_epoch_start
    scheduler = recipe.make_scheduler(optimizer)
    lr_in_epoch = {}
    for epoch in range(1, 251):
        step_schedulers([scheduler])  # what distill() does before each epoch's first step
        lr_in_epoch[epoch] = optimizer.param_groups[0]["lr"]
    # docs/original-release.md#the-training-loop: stepped at epoch start, so the decay is already in
    # effect in epochs 100, 200.
    assert all(lr_in_epoch[e] == pytest.approx(0.1) for e in range(1, 100))
    assert all(lr_in_epoch[e] == pytest.approx(0.01) for e in range(100, 200))
    assert all(lr_in_epoch[e] == pytest.approx(0.001) for e in range(200, 251))


def test_parser_defaults_are_the_papers():
    args = DFAD_cifar.get_parser().parse_args([])
    assert (args.batch_size, args.test_batch_size, args.epochs, args.epoch_itrs) == (256, 128,
                                                                                     500, 50)
    assert (args.lr_S, args.lr_G, args.weight_decay, args.nz) == (0.1, 1e-3, 5e-4, 256)
    assert args.dataset == "cifar10" and args.model == "resnet18_8x" and not args.scheduler


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """One intra-op thread: at batch 4 a second thread gains little, and on a busy shared machine
    OpenMP threads waiting for each other made the full-size ResNet steps 5-10x slower."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(LAUNCHER), "data", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Tiny CIFAR-10 and CIFAR-100, and a CIFAR-10 teacher trained on it for one epoch."""
    work = tmp_path_factory.mktemp("cifar_run")
    # One batch of 4 each way keeps the full-size ResNets cheap on two CPU cores.
    write_tiny_cifar10(work / "data", n_train=4, n_test=4)
    write_tiny_cifar100(work / "data", n_train=4, n_test=4)
    result = run(str(REPO / "train_teacher.py"), "--dataset", "cifar10", "--model", "resnet34_8x",
                 "--epochs", "1", *FAST, cwd=work)
    assert result.returncode == 0, result.stderr
    return work


def test_teacher_checkpoint_loads_strictly(workdir):
    state = torch.load(workdir / "checkpoint/teacher/cifar10-resnet34_8x.pt", weights_only=True)
    ResNet34_8x(10).load_state_dict(state, strict=True)
    assert (workdir / "log/teacher-cifar10-resnet34_8x.config.json").is_file()


def test_dfad_cifar_end_to_end(workdir):
    result = run(str(REPO / "DFAD_cifar.py"), "--epochs", "1", "--epoch_itrs", "1", "--scheduler",
                 "--ckpt", "checkpoint/teacher/cifar10-resnet34_8x.pt", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Best acc=" in result.stdout
    rows = [run.values for run in read_csv_runs(workdir / "log/DFAD-cifar10.csv")]
    assert len(rows[-1]) == 1 and 0.0 <= float(rows[-1][0]) <= 1.0
    assert (workdir / "log/DFAD-cifar10.config.json").is_file()
    if float(rows[-1][0]) > 0:  # the original saves only on a strict improvement over 0
        student = torch.load(workdir / "checkpoint/student/cifar10-resnet18_8x.pt",
                             weights_only=True)
        ResNet18_8x(10).load_state_dict(student, strict=True)
        generator = torch.load(workdir / "checkpoint/student/cifar10-resnet18_8x-generator.pt",
                               weights_only=True)
        GeneratorA(nz=256, nc=3, img_size=32).load_state_dict(generator, strict=True)


def test_cifar100_teacher_for_cifar10_is_one_clear_line(workdir):
    torch.save(ResNet34_8x(100).state_dict(), workdir / "cifar100-teacher.pt")
    result = run(str(REPO / "DFAD_cifar.py"), "--dataset", "cifar10", "--ckpt",
                 "cifar100-teacher.pt", *FAST, cwd=workdir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "has a 100-class head, the model (ResNet) has 10 classes" in lines[0]
    assert "Traceback" not in result.stderr


def test_cifar100_without_ckpt_uses_the_cifar100_teacher(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = DFAD_cifar.get_parser().parse_args(["--dataset", "cifar100", "--device", "cpu"])
    with pytest.raises(UserError, match="teacher checkpoint not found: "
                                        "checkpoint/teacher/cifar100-resnet34_8x.pt"):
        DFAD_cifar.main(args)
    assert "using the cifar100 teacher checkpoint/teacher/cifar100-resnet34_8x.pt" in (
        capsys.readouterr().out)
    assert args.ckpt == "checkpoint/teacher/cifar100-resnet34_8x.pt"  # and so in the config
