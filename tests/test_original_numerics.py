"""`--original_numerics` is the original release, bit for bit: whole runs of the entry scripts
(epochs, evaluations, LR milestones) against benchmarks/original_iteration.py; the LR of every
epoch comes from the scripts' own schedulers; the default (fast) mode is the original within
rounding."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_mnist
from benchmarks import original_iteration as original
from data import split_caltech101
from dataloader import DATASETS
from network import torchvision_resnet
from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5, LeNet5Half
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from tests.helpers.caltech_fixtures import write_tiny_caltech
from tests.helpers.mnist_fixtures import write_structured_mnist
from tests.helpers.segmentation_fixtures import write_tiny_camvid

# The original stepped its schedulers before the epoch's first optimizer step, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
CPU = torch.device("cpu")
FAST = ["--device", "cpu", "--no_visdom", "--data_root", "data"]
TEACHER = "checkpoint/teacher/mnist-lenet5.pt"
STUDENT_START = "checkpoint/start/lenet5_half.pt"
# Three epochs, two iterations each, the LR milestone at epoch 2 (stepped at epoch start).
MNIST_RUN = ["--epochs", "3", "--epoch_itrs", "2", "--batch_size", "16", "--lr_S", "0.1",
             "--scheduler", "--step_size", "2", "--stu_ckpt", STUDENT_START, *FAST]


# The generator's losses as the original classification and segmentation scripts wrote them.
ORIGINAL_LOSS = {"mae": lambda s, t: -F.l1_loss(s, t),
                 "log_mae": lambda s, t: -torch.log(F.l1_loss(s, t) + 1)}


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory) -> Path:
    """The structured MNIST, a LeNet5 teacher that knows it (at DFAD_mnist.py's default --ckpt)
    and a LeNet5Half that half knows it (--stu_ckpt): a run starting from that student moves
    its test accuracy every epoch, so a run on a wrong stream could not match it by luck."""
    work = tmp_path_factory.mktemp("original_numerics")
    write_structured_mnist(work / "data")
    train = DataLoader(DATASETS["mnist"].build(str(work / "data"), True, False), batch_size=16,
                       shuffle=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    for model, epochs, path in ((LeNet5(), 6, TEACHER), (LeNet5Half(), 3, STUDENT_START)):
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)  # a plain supervised loop
        for _ in range(epochs):
            for images, labels in train:
                optimizer.zero_grad()
                F.cross_entropy(model(images), labels).backward()
                optimizer.step()
        (work / path).parent.mkdir(parents=True)
        torch.save(model.state_dict(), work / path)
    return work


def loaded(model: nn.Module, path: str) -> nn.Module:
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def original_networks(args) -> tuple[nn.Module, nn.Module, nn.Module]:
    """DFAD_mnist.py's networks in the original's order; the student from --stu_ckpt if given."""
    teacher, student = loaded(LeNet5(), args.ckpt), LeNet5Half()
    if args.stu_ckpt:
        loaded(student, args.stu_ckpt)
    return teacher, student, GeneratorA(nz=args.nz, nc=1, img_size=32)


def paper_schedule(base: float, gamma: float, step: int, epochs: int,
                   at_start: bool) -> list[float]:
    """StepLR stepped at epoch start (classification: epoch e runs at base * gamma^(e // step))
    or at its end (segmentation: gamma^((e - 1) // step))."""
    return [base * gamma ** ((e if at_start else e - 1) // step) for e in range(1, epochs + 1)]


def assert_same_weights(mine: dict[str, torch.Tensor], theirs: nn.Module) -> None:
    assert list(mine) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert torch.equal(mine[name], value), name


def assert_the_original(script, argv: list[str], networks, shuffled: bool, loss, metric: str,
                        gamma: float, at_start: bool) -> None:
    """`script.main` with --original_numerics against the original's run (its test loader: 2
    workers, --batch_size and shuffled for MNIST, else --test_batch_size): the history, which
    must move, the final student and generator, and the paper's LR schedule in every epoch as
    the script's own schedulers set it (its metrics file, its state)."""
    args = script.get_parser().parse_args([*argv, "--num_workers", "2", "--original_numerics"])
    history = script.main(args)
    (state_file,) = Path("checkpoint/student").glob("*-state.pt")
    state = torch.load(state_file, weights_only=True)
    test_set = DATASETS[args.dataset].build("data", False, False)
    loader = DataLoader(test_set, num_workers=2, shuffle=shuffled,
                        batch_size=args.batch_size if shuffled else args.test_batch_size)
    theirs, student, generator = original.original_dfad(
        args, lambda: networks(args), loader, loss, metric,
        lambda optimizer: StepLR(optimizer, args.step_size, gamma), at_start, CPU)
    assert history == theirs and len(set(theirs)) > 1, (history, theirs)
    assert_same_weights(state["student"], student)
    assert_same_weights(state["generator"], generator)
    lines = Path(f"log/DFAD-{args.dataset}.metrics.jsonl").read_text().splitlines()
    lrs = paper_schedule(args.lr_S, gamma, args.step_size, args.epochs, at_start)
    assert [json.loads(line)["lr"] for line in lines] == pytest.approx(lrs, rel=1e-12)
    lr_G = state["optimizer_G"]["param_groups"][0]["lr"]  # one step per epoch, start or end
    assert lr_G == pytest.approx(args.lr_G * gamma ** (args.epochs // args.step_size), rel=1e-12)


@pytest.mark.slow  # two runs of three epochs with evaluations: 5-10 s
def test_dfad_mnist_is_the_original_through_epochs_evaluations_and_milestones(
        mnist_folder, monkeypatch):
    """The original's MNIST test loader draws its seeds, and its test() a latent batch per test
    batch, from the training stream: epoch 2 follows epoch 1's evaluation."""
    monkeypatch.chdir(mnist_folder)
    assert_the_original(DFAD_mnist, MNIST_RUN, original_networks, True, ORIGINAL_LOSS["mae"],
                        "acc", 0.1, True)


# Three epochs of one iteration, the LR milestone at epoch 2.
TINY_RUN = ["--epochs", "3", "--epoch_itrs", "1", "--batch_size", "2", "--test_batch_size", "2",
            "--lr_S", "0.1", "--scheduler", "--step_size", "2", *FAST]


def caltech_split(root: Path) -> None:
    write_tiny_caltech(root)
    split_caltech101.main(["--root", str(root)])


# script, data, teacher, student, flags, generator loss, metric, scheduler stepped at epoch start
LARGE = {
    "caltech101": (DFAD_caltech101, caltech_split, lambda: torchvision_resnet.resnet34(4),
                   lambda: torchvision_resnet.resnet18(4), ["--num_classes", "4"],
                   ORIGINAL_LOSS["mae"], "acc", True),
    "camvid": (DFAD_camvid_deeplab, lambda root: write_tiny_camvid(root, n_test=3),
               lambda: deeplabv3_resnet50(11), lambda: deeplabv3_mobilenet(11, dropout_p=0.5),
               [], ORIGINAL_LOSS["log_mae"], "mIoU", False),
}


@pytest.mark.slow  # full-size networks at 128 px, twice: 20-60 s
@pytest.mark.parametrize("dataset", LARGE)
def test_dfad_128px_scripts_are_the_original_through_epochs(dataset, tmp_path, monkeypatch):
    """GeneratorB at 128 px and an unshuffled test loader; Caltech101: torchvision's ResNets;
    CamVid: -log(MAE + 1), the student's dropout drawing from the training stream, StepLR at
    epoch end, mIoU of the full-size test images."""
    script, write_data, teacher, student, flags, loss, metric, at_start = LARGE[dataset]
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path / "data")
    torch.manual_seed(0)
    ckpt = Path(script.get_parser().get_default("ckpt"))
    ckpt.parent.mkdir(parents=True)
    torch.save(teacher().state_dict(), ckpt)

    def networks(args) -> tuple[nn.Module, nn.Module, nn.Module]:
        return loaded(teacher(), args.ckpt), student(), GeneratorB(nz=args.nz, img_size=128)

    assert_the_original(script, [*TINY_RUN, *flags], networks, False, loss, metric, 0.1,
                        at_start)


def close(got: torch.Tensor, want: torch.Tensor, rel: float) -> bool:
    """Within `rel` of `want`'s norm (a counter: equal)."""
    if not want.is_floating_point():
        return torch.equal(got, want)
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item() <= rel


def test_default_mode_is_the_original_within_rounding(mnist_folder, tmp_path, monkeypatch):
    """One iteration (5 student steps, 1 generator step) with every speed-up on: the student,
    the generator's BatchNorm statistics and gradient (Adam's first moment) are the original's
    within fp32 rounding. Not its weights: Adam's first step is about lr_G * sign(gradient), a
    full step for a rounding difference in a gradient near 0 (some of 150k are)."""
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "data").symlink_to(mnist_folder / "data")
    (tmp_path / TEACHER).parent.symlink_to((mnist_folder / TEACHER).parent)
    monkeypatch.chdir(tmp_path)
    args = DFAD_mnist.get_parser().parse_args(
        ["--epochs", "1", "--epoch_itrs", "1", "--batch_size", "16", "--num_workers", "0",
         *FAST])
    DFAD_mnist.main(args)
    state = torch.load("checkpoint/student/mnist-lenet5_half-state.pt", weights_only=True)

    # The reference takes these from the engine: they must stay the original's hard-coded ones.
    assert (original.STUDENT_STEPS_PER_ITERATION, original.STUDENT_MOMENTUM) == (5, 0.9)
    original.seed_everything(args.seed)
    teacher, student, generator = original_networks(args)
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, momentum=0.9,
                      weight_decay=args.weight_decay)
    optimizer_G = Adam(generator.parameters(), lr=args.lr_G)
    original.original_iteration(teacher.eval(), student.train(), generator.train(), optimizer_S,
                                optimizer_G, args.batch_size, args.nz, ORIGINAL_LOSS["mae"], CPU)

    assert list(state["student"]) == list(student.state_dict())
    assert list(state["generator"]) == list(generator.state_dict())
    for key, net in (("student", student.state_dict()), ("generator", generator.named_buffers())):
        for name, want in dict(net).items():
            assert close(state[key][name], want, 1e-4), name
    moments = state["optimizer_G"]["state"]
    # The gradient through the generator's train-mode BatchNorms cancels most of itself, which
    # magnifies rounding: the original's fp32 gradient is 2e-4 from float64's, ours 1e-3 (CPU
    # BatchNorm rounds 20x coarser on channels_last tensors); a change of method is O(1). The
    # biases of the convolutions before a BatchNorm have no gradient in exact arithmetic.
    for index, (name, param) in enumerate(generator.named_parameters()):
        if name not in ("conv_blocks1.0.bias", "conv_blocks2.0.bias"):
            want = optimizer_G.state[param]["exp_avg"]
            assert close(moments[index]["exp_avg"], want, 5e-3), name
