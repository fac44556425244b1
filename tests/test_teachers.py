"""The teacher scripts as a user runs them, in process in temporary folders: the original's floats
under --original_numerics, an epoch-granular resume equal to a run never stopped, a finished run
left alone, one-line refusals, the segmentation teacher's files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

import train_teacher
import train_teacher_seg
from benchmarks.original_iteration import original_teacher
from dataloader import DATASETS
from engine.objectives import focal_loss
from network.lenet import LeNet5
from network.segmentation import deeplabv3_resnet50
from runtime.cli import run_main
from tests.helpers.local import free_port
from tests.helpers.mnist_fixtures import write_random_teacher, write_structured_mnist
from tests.helpers.segmentation_fixtures import write_tiny_camvid

CPU = torch.device("cpu")
FAST = ["--device", "cpu", "--num_workers", "0", "--no_visdom"]
# 5 batches an epoch; the StepLR milestone at the start of epoch 3
MNIST = ["--dataset", "mnist", "--model", "lenet5", "--batch_size", "16", "--lr", "0.05",
         "--weight_decay", "1e-4", "--scheduler", "--step_size", "3", *FAST]
CKPT, STATE = "checkpoint/teacher/mnist-lenet5.pt", "checkpoint/teacher/mnist-lenet5-state.pt"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("data")
    write_structured_mnist(root)
    return str(root)


def teacher(work: Path, monkeypatch, argv: list[str]) -> float:
    """train_teacher.py's main() in `work`."""
    monkeypatch.chdir(work)
    return train_teacher.main(train_teacher.get_parser().parse_args(argv))


def state_of(work: Path) -> dict:
    return torch.load(work / STATE, weights_only=True)


def assert_same_weights(mine: dict, theirs: dict) -> None:
    assert list(mine) == list(theirs)
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name


def outputs(work: Path) -> dict[str, int]:
    """Every file a run wrote (the lock, rewritten by each start, aside) and its mtime."""
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in work.rglob("*")
            if p.is_file() and p.suffix != ".lock"}


def one_line_error(capsys, main, get_parser, argv: list[str]) -> str:
    """run_main as the command line runs it: exit code 1, one line on stderr."""
    with pytest.raises(SystemExit) as stop:
        run_main(get_parser, main, argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 1 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # the original's order
def test_mnist_teacher_is_the_original_through_epochs_evaluations_and_a_milestone(
        data, tmp_path, monkeypatch):
    """The original's MNIST loaders both shuffle: each pass draws its seeds from the training
    stream, so epoch 2's shuffle follows epoch 1's test pass."""
    argv = [*MNIST, "--epochs", "3", "--data_root", data, "--original_numerics"]
    best = teacher(tmp_path, monkeypatch, argv)
    state = state_of(tmp_path)
    args = train_teacher.get_parser().parse_args(argv)
    train = DataLoader(DATASETS["mnist"].build(data, True, False), batch_size=16, shuffle=True)
    test = DataLoader(DATASETS["mnist"].build(data, False, False), batch_size=16, shuffle=True)
    theirs, model = original_teacher(args, LeNet5, train, test, F.cross_entropy, "acc", 0.1, CPU)
    assert state["history"] == theirs and len(set(theirs)) > 1, (state["history"], theirs)
    assert best == max(theirs)
    assert_same_weights(state["model"], model.state_dict())


@pytest.fixture(scope="module")
def stopped_and_resumed(data, tmp_path_factory) -> tuple[Path, Path]:
    """3 epochs straight, and 2 epochs then `--resume --epochs 3` (a stop at the epoch end)."""
    straight, resumed = tmp_path_factory.mktemp("straight"), tmp_path_factory.mktemp("resumed")
    with pytest.MonkeyPatch.context() as monkeypatch:
        teacher(straight, monkeypatch, [*MNIST, "--epochs", "3", "--data_root", data])
        teacher(resumed, monkeypatch, [*MNIST, "--epochs", "2", "--data_root", data])
        assert state_of(resumed)["epochs_done"] == 2
        teacher(resumed, monkeypatch, [*MNIST, "--epochs", "3", "--data_root", data, "--resume"])
    return straight, resumed


def test_a_resumed_teacher_ends_as_one_never_stopped(stopped_and_resumed):
    straight, resumed = stopped_and_resumed
    a, b = state_of(straight), state_of(resumed)
    assert a["history"] == b["history"] and len(b["history"]) == 3 and len(set(b["history"])) > 1
    assert_same_weights(a["model"], b["model"])
    assert_same_weights(torch.load(straight / CKPT), torch.load(resumed / CKPT))
    assert b["epochs_done"] == 3
    assert set(outputs(resumed)) == {CKPT, STATE, "log/teacher-mnist-lenet5.metrics.jsonl",
                                     "log/teacher-mnist-lenet5.config.json",
                                     "results/teacher-mnist-lenet5/latest-input.png"}


def test_a_finished_teacher_is_left_alone_and_test_only_writes_nothing(
        stopped_and_resumed, data, monkeypatch, capsys):
    """The same command again, with or without --resume: one line, no file touched; --test_only
    evaluates the best checkpoint without writing."""
    work = stopped_and_resumed[1]
    before, best = outputs(work), state_of(work)["best"]
    capsys.readouterr()
    for extra in (["--resume"], []):
        assert teacher(work, monkeypatch, [*MNIST, "--epochs", "3", "--data_root", data,
                                           *extra]) == best
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and lines[1].startswith("finished before: 3 of 3 epochs"), lines
    assert teacher(work, monkeypatch, [*MNIST, "--data_root", data, "--test_only"]) == best
    assert outputs(work) == before


def test_a_checkpoint_without_state_is_never_trained_over(tmp_path, monkeypatch, capsys, data):
    ckpt = write_random_teacher(tmp_path)
    content = ckpt.read_bytes()
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, train_teacher.main, train_teacher.get_parser,
                         [*MNIST, "--epochs", "1", "--data_root", data])
    assert CKPT in err and "move it aside" in err
    assert ckpt.read_bytes() == content and not (tmp_path / STATE).exists()


def test_a_diverging_teacher_stops_in_one_line(tmp_path, monkeypatch, capsys, data):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, train_teacher.main, train_teacher.get_parser,
                         [*MNIST, "--epochs", "1", "--data_root", data, "--lr", "1e30",
                          "--log_interval", "1"])
    assert "training loss is nan at epoch 1" in err and not (tmp_path / STATE).exists()


@pytest.mark.parametrize("argv, says", [
    (["--dataset", "camvid"], "train_teacher_seg.py --dataset camvid"),
    (["--dataset", "cifar10", "--model", "lenet5"], "use --dataset mnist"),
])
def test_bad_inputs_are_one_line(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, train_teacher.main, train_teacher.get_parser, [*argv, *FAST])
    assert says in err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_segmentation_teacher_is_the_original_and_writes_its_files(tmp_path, monkeypatch):
    """Two epochs of DeepLabV3-ResNet50 (dropout, focal loss, mIoU) on a tiny CamVid with a
    StepLR milestone, under --original_numerics: the original's history and weights; no visdom
    server: its log instead."""
    write_tiny_camvid(tmp_path / "data" / "CamVid")
    monkeypatch.chdir(tmp_path)
    args = train_teacher_seg.get_parser().parse_args(
        ["--dataset", "camvid", "--data_root", "data/CamVid", "--no_pretrained", "--epochs", "2",
         "--batch_size", "2", "--test_batch_size", "2", "--scheduler", "--step_size", "1",
         "--original_numerics", "--device", "cpu", "--num_workers", "0",
         "--visdom_port", str(free_port())])
    best = train_teacher_seg.main(args)
    stem = "camvid-deeplabv3_resnet50"
    state = torch.load(f"checkpoint/teacher/{stem}-state.pt", weights_only=True)
    train = DataLoader(DATASETS["camvid"].build("data/CamVid", True, False), batch_size=2,
                       shuffle=True)
    test = DataLoader(DATASETS["camvid"].build("data/CamVid", False, False), batch_size=2)
    theirs, model = original_teacher(
        args, lambda: deeplabv3_resnet50(11, dropout_p=0.5, pretrained_backbone=False), train,
        test, focal_loss, "mIoU", args.gamma, CPU)
    assert state["history"] == theirs and best == max(theirs) > 0
    assert all(torch.equal(a, b) for a, b in zip(state["model"].values(),
                                                 model.state_dict().values(), strict=True))
    loaded: nn.Module = deeplabv3_resnet50(11)
    loaded.load_state_dict(torch.load(f"checkpoint/teacher/{stem}.pt", weights_only=True))
    for suffix in ("metrics.jsonl", "config.json", "visdom.log"):
        assert Path(f"log/teacher-{stem}.{suffix}").stat().st_size > 0, suffix
    assert Path(f"results/teacher-{stem}/latest-pred.png").is_file()
