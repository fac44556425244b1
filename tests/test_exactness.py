"""Exact where we say exact: a resume keeps the run's own optimizer implementation; under
--original_numerics whole runs (epochs, evaluations, LR milestones) compute the original's floats
(benchmarks/original_iteration.py). N processes: tests/test_distributed.py."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
import DFAD_nyu_deeplab
import train_teacher
import train_teacher_seg
from baselines.sources import RealImages
from benchmarks.original_iteration import original_dfad, original_teacher
from dataloader import DATASETS
from engine.dfad import (
    Recipe,
    distill,
    generator_loss_log_mae,
    generator_loss_mae,
    setup_distillation,
)
from engine.evaluation import evaluate_classification
from engine.teacher import fit_teacher
from network import torchvision_resnet
from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5, LeNet5Half
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from tests.helpers.mnist_fixtures import _write_idx
from tests.helpers.script_args import dfad_args
from tests.helpers.segmentation_fixtures import write_tiny_camvid
from tests.test_caltech import make_split

NZ, BATCH = 16, 8
CPU = torch.device("cpu")


def tiny_test_loader() -> DataLoader:
    data = TensorDataset(torch.randn(8, 1, 32, 32), torch.arange(8) % 10)
    return DataLoader(data, batch_size=8)


def networks() -> tuple[LeNet5, LeNet5Half, GeneratorA]:
    torch.manual_seed(0)
    return LeNet5().eval().requires_grad_(False), LeNet5Half(), GeneratorA(nz=NZ, ngf=8)


RECIPE = Recipe(name="exact", student_ckpt="s.pt", generator_loss=generator_loss_mae,
                evaluate=evaluate_classification, metric="acc")


def force_fused(path: str) -> None:
    """What a state written by a CUDA run holds (fused optimizers): its param groups say so."""
    state = torch.load(path, weights_only=True)
    for name in ("optimizer_S", "optimizer_G"):
        for group in state[name]["param_groups"]:
            group["fused"], group["foreach"] = True, None
    torch.save(state, path)


def test_resume_keeps_the_runs_own_optimizer_implementation(tmp_path, monkeypatch):
    """A state whose optimizers were fused resumes into this run's options, here the plain
    per-parameter loop of --original_numerics, for the student's SGD and the generator's Adam."""
    monkeypatch.chdir(tmp_path)
    flags = dict(epoch_itrs=1, batch_size=BATCH, nz=NZ, log_interval=1, original_numerics=True)
    distill(dfad_args(epochs=1, **flags), *networks(), tiny_test_loader(), RECIPE, CPU)
    force_fused(RECIPE.state_path)
    run = setup_distillation(dfad_args(epochs=2, resume="", **flags), *networks(), RECIPE, CPU,
                             None)
    assert run.state.epochs_done == 1
    for optimizer in (run.optimizer_S, run.optimizer_G):
        for group in optimizer.param_groups:
            assert (group["fused"], group["foreach"]) == (False, False)
    # The default run's own options on the CPU: not fused (fused kernels are for CUDA).
    run = setup_distillation(dfad_args(epochs=2, resume="", **{**flags,
                                                               "original_numerics": False}),
                             *networks(), RECIPE, CPU, None)
    assert all(not group["fused"] for group in run.optimizer_S.param_groups)
    assert all(not group["fused"] for group in run.optimizer_G.param_groups)


# --- Whole --original_numerics runs against the original's (benchmarks/original_iteration.py) ---

FAST = ["--device", "cpu", "--num_workers", "0", "--no_visdom", "--data_root", "data"]


def assert_same_weights(mine: dict, theirs: nn.Module) -> None:
    for (name, a), b in zip(mine.items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def changes(history: list[float]) -> bool:
    """The metric moves between epochs: a run on a wrong stream could not match it by luck."""
    return len(set(history)) > 1


def write_structured_mnist(root: Path, n_train: int = 80, n_test: int = 40) -> None:
    """A tiny MNIST a LeNet5 learns in a few epochs: class k is a bright bar at rows 2k+2..2k+5
    over noise (real idx files, torchvision's layout)."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 96, (n, 28, 28)).astype(np.uint8)
        for image, k in zip(images, labels, strict=True):
            image[2 * k + 2:2 * k + 6, 4:24] = 255
        _write_idx(raw, images, labels, prefix)


@pytest.fixture(scope="module")
def mnist_teacher_run(tmp_path_factory) -> tuple[Path, argparse.Namespace, dict]:
    """train_teacher.py --original_numerics on the structured MNIST, 3 epochs, LR milestone at 3;
    its best checkpoint is DFAD_mnist.py's default teacher in the same folder."""
    work = tmp_path_factory.mktemp("exact")
    write_structured_mnist(work / "data")
    args = train_teacher.get_parser().parse_args(
        ["--dataset", "mnist", "--model", "lenet5", "--epochs", "3", "--batch_size", "16",
         "--lr", "0.05", "--weight_decay", "1e-4", "--scheduler", "--step_size", "3",
         "--original_numerics", *FAST])
    cwd = os.getcwd()
    os.chdir(work)
    try:
        train_teacher.main(args)
    finally:
        os.chdir(cwd)
    state = torch.load(work / "checkpoint/teacher/mnist-lenet5-state.pt", weights_only=True)
    return work, args, state


def test_train_teacher_is_the_original_through_epochs_evaluations_and_milestones(
        mnist_teacher_run, monkeypatch):
    """The original's MNIST loaders both shuffle (2 workers): each pass draws its seeds from the
    training stream, so epoch 2's shuffle follows epoch 1's test pass."""
    work, args, state = mnist_teacher_run
    monkeypatch.chdir(work)
    train = DataLoader(DATASETS["mnist"].build("data", True, False), batch_size=args.batch_size,
                       shuffle=True, num_workers=2)
    test = DataLoader(DATASETS["mnist"].build("data", False, False), batch_size=args.batch_size,
                      shuffle=True, num_workers=2)
    theirs, model = original_teacher(args, LeNet5, train, test, F.cross_entropy, "acc", 0.1, CPU)
    assert state["history"] == theirs and changes(theirs), (state["history"], theirs)
    assert_same_weights(state["model"], model)


def test_dfad_mnist_is_the_original_through_epochs_evaluations_and_milestones(
        mnist_teacher_run, monkeypatch):
    """Three epochs with an LR milestone in the middle: the per-epoch accuracy and the final
    weights equal the original's, whose shuffled test loader (2 workers) draws its seeds and
    whose test() draws a latent batch per test batch from the training stream."""
    work = mnist_teacher_run[0]
    monkeypatch.chdir(work)
    teacher_file = work / "checkpoint/teacher/mnist-lenet5.pt"
    args = DFAD_mnist.get_parser().parse_args(
        ["--epochs", "3", "--epoch_itrs", "2", "--batch_size", "16", "--lr_S", "0.1",
         "--scheduler", "--step_size", "3", "--original_numerics", *FAST])
    history = DFAD_mnist.main(args)
    state = torch.load("checkpoint/student/mnist-lenet5_half-state.pt", weights_only=True)

    def build() -> tuple[nn.Module, nn.Module, nn.Module]:
        teacher = LeNet5()
        teacher.load_state_dict(torch.load(teacher_file, weights_only=True))
        return teacher, LeNet5Half(), GeneratorA(nz=args.nz, nc=1, img_size=32)

    # The original's MNIST test loader: --batch_size, shuffled, 2 workers.
    test_set = DATASETS["mnist"].build("data", False, False)
    loader = DataLoader(test_set, batch_size=args.batch_size, shuffle=True, num_workers=2)
    theirs, student, generator = original_dfad(
        args, build, loader, generator_loss_mae, "acc",
        lambda optimizer: StepLR(optimizer, args.step_size, 0.1), True, CPU)
    assert history == theirs and changes(theirs), (history, theirs)
    assert_same_weights(state["student"], student)
    assert_same_weights(state["generator"], generator)


def run_script(script, argv: list[str]) -> tuple[list[float], dict]:
    """A script's main() in the current folder; its history and last resumable state."""
    args = script.get_parser().parse_args(argv)
    history = script.main(args)
    stem = {DFAD_caltech101: "caltech101-resnet18",
            DFAD_camvid_deeplab: "camvid-deeplabv3_mobilenet"}[script]
    return history, torch.load(f"checkpoint/student/{stem}-state.pt", weights_only=True)


def saved_random(model: nn.Module, path: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def loaded(model: nn.Module, path: str) -> nn.Module:
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


TINY_RUN = ["--epochs", "3", "--epoch_itrs", "1", "--batch_size", "2", "--test_batch_size", "2",
            "--lr_S", "0.1", "--scheduler", "--step_size", "2", "--original_numerics", *FAST]


@pytest.mark.slow  # full-size networks at 128-256 px, twice: 20-60 s
def test_dfad_caltech101_generator_b_is_the_original_through_epochs(tmp_path, monkeypatch):
    """GeneratorB at 128 px and the unshuffled Caltech test loader (one seed draw a pass, a
    latent batch per test batch), three epochs with a milestone at epoch 2."""
    monkeypatch.chdir(tmp_path)
    make_split(tmp_path / "data")
    torch.manual_seed(0)
    teacher_file = saved_random(torchvision_resnet.resnet34(4),
                                "checkpoint/teacher/caltech101-resnet34.pt")
    argv = [*TINY_RUN, "--num_classes", "4"]
    history, state = run_script(DFAD_caltech101, argv)
    args = DFAD_caltech101.get_parser().parse_args(argv)

    def build() -> tuple[nn.Module, nn.Module, nn.Module]:
        return (loaded(torchvision_resnet.resnet34(4), teacher_file),
                torchvision_resnet.resnet18(4), GeneratorB(nz=args.nz, nc=3, img_size=128))

    loader = DataLoader(DATASETS["caltech101"].build("data", False, False),
                        batch_size=args.test_batch_size, shuffle=False, num_workers=2)
    theirs, student, generator = original_dfad(
        args, build, loader, generator_loss_mae, "acc",
        lambda optimizer: StepLR(optimizer, args.step_size, 0.1), True, CPU)
    assert history == theirs and changes(theirs), (history, theirs)
    assert_same_weights(state["student"], student)
    assert_same_weights(state["generator"], generator)


@pytest.mark.slow  # full-size networks at 128-256 px, twice: 20-60 s
def test_dfad_camvid_segmentation_loop_is_the_original_through_epochs(tmp_path, monkeypatch):
    """The segmentation loop: -log(MAE + 1), the student's dropout drawing from the training
    stream, the scheduler stepped at epoch end, mIoU on the full 256 px test images."""
    monkeypatch.chdir(tmp_path)
    write_tiny_camvid(tmp_path / "data", n_train=2, n_test=3)
    torch.manual_seed(0)
    teacher_file = saved_random(deeplabv3_resnet50(11, pretrained_backbone=False),
                                "checkpoint/teacher/camvid-deeplabv3_resnet50.pt")
    history, state = run_script(DFAD_camvid_deeplab, TINY_RUN)
    args = DFAD_camvid_deeplab.get_parser().parse_args(TINY_RUN)

    def build() -> tuple[nn.Module, nn.Module, nn.Module]:
        return (loaded(deeplabv3_resnet50(11, pretrained_backbone=False), teacher_file),
                deeplabv3_mobilenet(11, dropout_p=0.5, pretrained_backbone=False),
                GeneratorB(nz=args.nz, nc=3, img_size=128))

    loader = DataLoader(DATASETS["camvid"].build("data", False, False),
                        batch_size=args.test_batch_size, shuffle=False, num_workers=2)
    theirs, student, generator = original_dfad(
        args, build, loader, generator_loss_log_mae, "mIoU",
        lambda optimizer: StepLR(optimizer, args.step_size, DFAD_camvid_deeplab.CARD.gamma), False,
        CPU)
    assert history == theirs and changes(theirs), (history, theirs)
    assert_same_weights(state["student"], student)
    assert_same_weights(state["generator"], generator)


# --- The LR of every epoch, through 250 epochs, is the original schedule of each script ---

def start_stepped(base: float, gamma: float, milestones: list[int]) -> list[float]:
    """Stepped at epoch start: epoch e runs at base * gamma^(milestones <= e)."""
    return [base * gamma ** sum(m <= e for m in milestones) for e in range(1, 251)]


def end_stepped(base: float, gamma: float, milestones: list[int]) -> list[float]:
    """Stepped at epoch end: epoch e runs at base * gamma^(milestones < e)."""
    return [base * gamma ** sum(m < e for m in milestones) for e in range(1, 251)]


def dfad_lrs(script, make_scheduler, at_start: bool) -> list[float]:
    """The student's LR in each of 250 epochs of `distill` with the script's defaults and
    --scheduler (tiny linear networks; the LR is read when each epoch is evaluated)."""
    optimizers: list = []
    lrs: list[float] = []

    def scheduler(optimizer):
        optimizers.append(optimizer)
        return make_scheduler(optimizer)

    def evaluate(model, loader, device) -> dict[str, float]:
        lrs.append(optimizers[0].param_groups[0]["lr"])
        return {"acc": 0.0}

    recipe = Recipe(name="lr", student_ckpt="s.pt", generator_loss=None, evaluate=evaluate,
                    metric="acc", make_scheduler=scheduler, scheduler_at_epoch_start=at_start,
                    student_steps=1)
    args = script.get_parser().parse_args(
        ["--epochs", "250", "--epoch_itrs", "1", "--batch_size", "2", "--nz", "2",
         "--scheduler", "--save_every", "250", "--device", "cpu", "--no_visdom"])
    generator = nn.Sequential(nn.Flatten(), nn.Linear(2, 4))
    distill(args, nn.Linear(4, 3).requires_grad_(False), nn.Linear(4, 3), generator,
            tiny_test_loader(), recipe, CPU)
    return lrs


@pytest.mark.parametrize("script", ["mnist", "cifar", "caltech101", "camvid", "nyuv2"])
def test_dfad_lr_of_every_epoch_is_the_original_schedule(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    step = lambda gamma: lambda optimizer: StepLR(optimizer, 100, gamma)  # noqa: E731
    module, make, at_start, expected = {
        "mnist": (DFAD_mnist, step(0.1), True, start_stepped(0.01, 0.1, [100, 200])),
        "cifar": (DFAD_cifar, DFAD_cifar.make_scheduler, True,
                  start_stepped(0.1, 0.1, [100, 200])),
        "caltech101": (DFAD_caltech101, step(0.1), True, start_stepped(0.1, 0.1, [100, 200])),
        "camvid": (DFAD_camvid_deeplab, step(DFAD_camvid_deeplab.CARD.gamma), False,
                   end_stepped(0.1, 0.1, [100, 200])),
        "nyuv2": (DFAD_nyu_deeplab, step(DFAD_nyu_deeplab.CARD.gamma), False,
                  end_stepped(0.1, 0.3, [100, 200])),
    }[script]
    # StepLR multiplies step by step, the closed form raises gamma to a power: equal to rounding.
    assert dfad_lrs(module, make, at_start) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("script", ["train_teacher", "train_teacher_seg"])
def test_teacher_lr_of_every_epoch_is_the_original_schedule(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = {"train_teacher": train_teacher, "train_teacher_seg": train_teacher_seg}[script]
    args = module.get_parser().parse_args(["--epochs", "250", "--scheduler", "--save_every",
                                           "250", "--device", "cpu", "--no_visdom"])
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    gamma = getattr(args, "gamma", 0.1)  # train_teacher.py: StepLR(--step_size, 0.1)
    lrs: list[float] = []

    def evaluate(model, loader, device) -> dict[str, float]:
        lrs.append(optimizer.param_groups[0]["lr"])
        return {"acc": 0.0}

    train = DataLoader(TensorDataset(torch.randn(2, 4), torch.arange(2)), batch_size=2)
    fit_teacher(args, model, train, tiny_test_loader(), optimizer,
                StepLR(optimizer, args.step_size, gamma), F.cross_entropy, evaluate, "acc",
                "t.pt", CPU)
    milestones = list(range(args.step_size, 251, args.step_size))
    assert lrs == pytest.approx(start_stepped(0.1, gamma, milestones), rel=1e-12)


def test_kd_ori_source_keeps_its_position_on_the_host_and_rereads_it_after_a_load():
    """RealImages counts on the host (no device read per call); a loaded state moves it."""
    images = torch.arange(10.0).view(10, 1, 1, 1)
    source, z = RealImages(images, seed=3), torch.zeros(4, 1)
    source(z)
    saved = {k: v.clone() for k, v in source.state_dict().items()}
    ahead = source(z)
    source.load_state_dict(saved)
    assert torch.equal(source(z), ahead)
    assert int(source.state_dict()["drawn"]) == 8
