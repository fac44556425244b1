"""The speed-ups keep the algorithm: the optimized fp32 engine against the original's plain
iteration (benchmarks/original_iteration.py), within rounding by default and bit for bit under
--original_numerics; --amp and --compile run (torchrun: tests/test_distributed.py)."""
import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from benchmarks.original_iteration import original_iteration, original_test
from engine.dfad import Recipe, distill, generator_loss_mae
from engine.evaluation import evaluate_classification
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from tests.helpers.script_args import dfad_args

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0", "--no_visdom"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
NZ, BATCH, ITERS = 16, 8, 3


def plain_reference(teacher, student, generator, iterations: int, lr_S: float = 0.05,
                    weight_decay: float = 1e-4) -> None:
    """The original loop on NCHW networks, with its optimizers: SGD(momentum 0.9) and Adam as
    in docs/original-release.md#the-training-loop, PyTorch's defaults otherwise."""
    optimizer_S = torch.optim.SGD(student.parameters(), lr=lr_S, momentum=0.9,
                                  weight_decay=weight_decay)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=1e-3)
    for _ in range(iterations):
        original_iteration(teacher, student, generator, optimizer_S, optimizer_G, BATCH, NZ,
                           generator_loss_mae, torch.device("cpu"))


def tiny_test_loader() -> torch.utils.data.DataLoader:
    """Ten images in batches of 4: a short last batch, as a real test set may have."""
    data = torch.utils.data.TensorDataset(torch.linspace(-1, 1, 10 * 32 * 32).view(10, 1, 32, 32),
                                          torch.arange(10))
    return torch.utils.data.DataLoader(data, batch_size=4)


def run_engine(args, teacher, student, generator, name: str) -> None:
    """`distill` on the CPU from the reference's seed, with a tiny test set to evaluate on."""
    loader = tiny_test_loader()
    recipe = Recipe(name=name, student_ckpt="s.pt", generator_loss=generator_loss_mae,
                    evaluate=evaluate_classification, metric="acc")
    torch.manual_seed(1)
    distill(args, teacher.requires_grad_(False), student, generator, loader, recipe,
            torch.device("cpu"))


def test_optimized_fp32_engine_matches_the_plain_reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    teacher = LeNet5().eval()
    student, generator = LeNet5Half().train(), GeneratorA(nz=NZ, ngf=8).train()
    ref = [copy.deepcopy(m) for m in (teacher, student, generator)]
    teacher_before = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(student.state_dict())

    torch.manual_seed(1)
    plain_reference(*ref, ITERS)

    args = dfad_args(epoch_itrs=ITERS, batch_size=BATCH, nz=NZ, log_interval=1, lr_S=0.05,
                     lr_G=1e-3, weight_decay=1e-4, epochs=1)
    run_engine(args, teacher, student, generator, "ref")

    # The biases of the generator convolutions that feed a train-mode BatchNorm have a zero
    # gradient in exact arithmetic (BN removes any constant); what they get is rounding noise,
    # which Adam scales up to full-size steps, so they (and the running means of those BNs, which
    # include them) differ between any two summation orders. The outputs do not depend on them.
    bn_cancelled = {"conv_blocks1.0.bias", "conv_blocks2.0.bias", "conv_blocks1.1.running_mean",
                    "conv_blocks2.1.running_mean"}
    for mine, theirs in ((student, ref[1]), (generator, ref[2])):
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values(),
                                strict=True):
            if mine is generator and name in bn_cancelled:
                continue
            if a.is_floating_point():
                # Relative to the tensor's norm: Adam divides by sqrt(v), which turns a
                # summation-order difference of one tiny gradient into a larger one elementwise.
                rel = ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
                assert rel <= 1e-5, f"{name}: relative difference {rel:.2e}"
            else:
                assert torch.equal(a, b), name
    # The student moved and the teacher did not.
    assert not torch.equal(student.fc1.weight, student_before["fc1.weight"])
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name]), name


def test_original_numerics_engine_is_bit_identical_to_the_original_iteration(tmp_path,
                                                                            monkeypatch):
    """--original_numerics: the engine computes the original's floats exactly, every weight
    and buffer after two epochs of two iterations, with the original's test pass (its loader's
    seed and a latent batch per test batch, tests/test_exactness.py for whole scripts) after
    each."""
    monkeypatch.chdir(tmp_path)
    args = DFAD_mnist.get_parser().parse_args(
        ["--epochs", "2", "--epoch_itrs", "2", "--batch_size", str(BATCH), "--nz", str(NZ),
         "--log_interval", "1", "--original_numerics"])
    torch.manual_seed(0)
    teacher = LeNet5().eval()
    student, generator = LeNet5Half().train(), GeneratorA(nz=NZ, ngf=8).train()
    ref = [copy.deepcopy(m) for m in (teacher, student, generator)]
    student_before = copy.deepcopy(student.state_dict())

    torch.manual_seed(1)
    optimizer_S = torch.optim.SGD(ref[1].parameters(), lr=args.lr_S, momentum=0.9,
                                  weight_decay=args.weight_decay)
    optimizer_G = torch.optim.Adam(ref[2].parameters(), lr=args.lr_G)
    for _ in range(args.epochs):
        ref[1].train()
        ref[2].train()
        for _ in range(args.epoch_itrs):
            original_iteration(*ref, optimizer_S, optimizer_G, BATCH, NZ, generator_loss_mae,
                               torch.device("cpu"))
        original_test(ref[1], tiny_test_loader(), "acc", torch.device("cpu"), ref[2], NZ)

    run_engine(args, teacher, student, generator, "original")

    assert not student.conv2.weight.is_contiguous(memory_format=torch.channels_last)  # NCHW
    assert generator.conv_blocks1[0].phase_kernels is False
    for mine, theirs in ((student, ref[1]), (generator, ref[2])):
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values(),
                                strict=True):
            assert torch.equal(a, b), name
    assert not torch.equal(student.fc1.weight, student_before["fc1.weight"])


def test_original_numerics_refuses_amp_in_one_line(mnist_workdir):
    result = dfad(mnist_workdir, "--original_numerics", "--amp", "bf16")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --original_numerics computes the original's fp32 floats")


def dfad(mnist_workdir: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "DFAD_mnist.py"),
                           "--data_root", "data", "--epochs", "2", "--epoch_itrs", "2",
                           "--batch_size", "8", *FAST, *flags], cwd=mnist_workdir, env=ENV,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("flags", [("--amp", "bf16"), ("--amp", "fp16"), ("--compile",)],
                         ids=["bf16", "fp16", "compile"])
def test_speed_modes_run_a_tiny_config(mnist_workdir, flags):
    result = dfad(mnist_workdir, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 2 test: acc=" in result.stdout
    # The checkpoint keys are the plain module's, whatever ran the steps.
    state = torch.load(mnist_workdir / "checkpoint/student/mnist-lenet5_half.pt", weights_only=True)
    LeNet5Half().load_state_dict(state, strict=True)


def test_sync_bn_on_the_cpu_is_one_clear_error(mnist_workdir):
    result = dfad(mnist_workdir, "--sync_bn")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: --sync_bn needs CUDA")


def test_teacher_speed_modes_run_and_resume(mnist_workdir, tmp_path):
    """The teachers take the DFAD scripts' speed flags; the fp16 loss scale is in the state
    (--compile of a teacher: tests/test_cuda.py, compiling on the CPU costs the suite time)."""
    shutil.copytree(mnist_workdir / "data", tmp_path / "data")
    flags = ("--amp", "fp16", "--cudnn_benchmark")
    teacher = [sys.executable, str(REPO / "train_teacher.py"), "--dataset", "mnist", "--model",
               "lenet5", "--batch_size", "8", "--data_root", "data", *FAST, *flags]
    for epochs, extra in (("1", ()), ("2", ("--resume",))):
        result = subprocess.run([*teacher, "--epochs", epochs, *extra], cwd=tmp_path, env=ENV,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stdout and "Epoch 2 test:" in result.stdout
    state = torch.load(tmp_path / "checkpoint/teacher/mnist-lenet5-state.pt", weights_only=True)
    assert state["epochs_done"] == 2
    assert state["precision"]["scaler_S"]["scale"] > 0  # a disabled scaler's state is empty
