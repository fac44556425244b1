"""CUDA only (pytest -m cuda; scripts/gpu_check.sh runs them): fp16 + compile + resume on tiny
MNIST, the baselines, loader workers with pinned batches, the engine on the GPU against the CPU
(each with the scripts' placement and optimizers), and two GPUs with NCCL and --sync_bn."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.dfad import dfad_optimizers, generator_loss_mae, generator_step, student_step
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.precision import place
from tables.csv_rows import read_csv_runs
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.script_args import dfad_args

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

REPO = Path(__file__).resolve().parents[1]
TINY = ["--device", "cuda", "--num_workers", "0", "--no_visdom", "--data_root", "data",
        "--batch_size", "8", "--test_batch_size", "8"]
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture
def work(tmp_path) -> Path:
    write_tiny_mnist(tmp_path / "data", n_train=32, n_test=16)
    write_random_teacher(tmp_path)
    return tmp_path


@pytest.mark.parametrize("script", ["DFAD_mnist.py", "train_teacher.py"])
def test_fp16_compile_resume_round_trip(work, script):
    command = [str(REPO / script), *TINY, "--amp", "fp16", "--compile"]
    if script == "DFAD_mnist.py":
        command += ["--epoch_itrs", "2"]
        state = work / "checkpoint/student/mnist-lenet5_half-state.pt"
    else:
        command += ["--dataset", "mnist", "--model", "lenet5"]
        state = work / "checkpoint/teacher/mnist-lenet5-state.pt"
    first = run(work, *command, "--epochs", "1")
    device_line = next(line for line in first.stdout.splitlines() if line.startswith("device:"))
    assert device_line.startswith("device: cuda:") and "compute capability" in device_line
    assert device_line.endswith("(deterministic)")  # no --cudnn_benchmark
    scale = torch.load(state, weights_only=True)["precision"]["scaler_S"]["scale"]
    resumed = run(work, *command, "--epochs", "2", "--resume")
    assert "resumed from" in resumed.stdout and "Epoch 2 test:" in resumed.stdout
    saved = torch.load(state, weights_only=True)
    assert saved["epochs_done"] == 2 and scale > 0
    model = saved["student"] if "student" in saved else saved["model"]
    (LeNet5Half() if "student" in saved else LeNet5()).load_state_dict(model, strict=True)
    assert all(torch.isfinite(v).all() for v in model.values() if v.is_floating_point())


@pytest.mark.parametrize("script", [("baselines/kd_mnist.py", "--inputs", "random"),
                                    ("baselines/kd_mnist.py", "--inputs", "original"),
                                    ("baselines/dafl_mnist.py",)], ids=["random", "kd_ori", "dafl"])
def test_the_baselines_train_on_cuda(work, script):
    """The baselines of Table 2 on the GPU: a recipe without a generator once stacked a CPU
    placeholder with CUDA losses (found by the first GPU run)."""
    first = run(work, str(REPO / script[0]), *script[1:], *TINY, "--epochs", "1",
                "--epoch_itrs", "2", "--seed", "1")
    assert "Epoch 1 test:" in first.stdout and "device: cuda:" in first.stdout


def test_dfad_on_cuda_with_pinned_loader_workers(work):
    """The CUDA path of the loaders: 2 persistent workers, pinned batches, non-blocking copies
    (the other CUDA runs here use --num_workers 0)."""
    workers = TINY.index("--num_workers") + 1
    flags = [*TINY[:workers], "2", *TINY[workers + 1:]]
    result = run(work, str(REPO / "DFAD_mnist.py"), *flags, "--epochs", "2", "--epoch_itrs", "2")
    assert "Epoch 2 test:" in result.stdout


@pytest.fixture
def exact_fp32():
    """No TF32 on either side: the comparison is of the same fp32 maths."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_engine_on_cuda_matches_the_cpu_reference(exact_fp32):
    """Three iterations of [student step, generator step] from the same weights and latents,
    each device with the scripts' own placement (channels_last) and optimizers (fused SGD and
    Adam on CUDA)."""
    torch.manual_seed(0)
    nets = {"cpu": (LeNet5().eval().requires_grad_(False), LeNet5Half(),
                    GeneratorA(nz=100, nc=1, img_size=32))}
    nets["cuda"] = tuple(copy.deepcopy(net) for net in nets["cpu"])
    args = dfad_args(lr_S=0.1, lr_G=1e-3, weight_decay=5e-4)
    for device, networks in nets.items():
        place(args, torch.device(device), *networks)
    optimizers = {d: dfad_optimizers(s, g, args, torch.device(d))
                  for d, (_, s, g) in nets.items()}
    for iteration in range(3):
        z = torch.randn(16, 100, 1, 1)
        losses = {}
        for device, (teacher, student, generator) in nets.items():
            opt_S, opt_G = optimizers[device]
            zd = z.to(device)
            losses[device] = (student_step(teacher, student, generator, opt_S, zd).item(),
                              generator_step(teacher, student, generator, opt_G, zd,
                                             generator_loss_mae).item())
        assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-4, abs=1e-5)
        if iteration == 0:  # the generator's gradients, from the same weights on both devices
            grads = {d: {n: p.grad.cpu() for n, p in nets[d][2].named_parameters()}
                     for d in nets}
            scale = max(g.abs().max() for g in grads["cpu"].values())
            for name, grad in grads["cpu"].items():
                torch.testing.assert_close(grads["cuda"][name], grad, rtol=1e-3,
                                           atol=1e-4 * scale, msg=name)
    student_cpu, student_cuda = nets["cpu"][1].state_dict(), nets["cuda"][1].state_dict()
    for name, weight in student_cpu.items():
        torch.testing.assert_close(student_cuda[name].cpu(), weight, rtol=1e-3, atol=1e-4)
    # The generator by what it draws, within Adam's reach: Adam moves every weight by about lr
    # per step whatever the size of its gradient, so the weights whose gradients are rounding
    # noise (the biases in front of BatchNorms, near-zero entries) move by up to 3 * lr apart on
    # the two devices. On an H100 the images (unit scale after the last BatchNorm) were 0.0145
    # apart at most, against 1e-3 asked before; a wrong engine on either device is off by O(1).
    z = torch.randn(16, 100, 1, 1)
    with torch.no_grad():
        drawn = {d: nets[d][2](z.to(d)).cpu() for d in nets}
    torch.testing.assert_close(drawn["cuda"], drawn["cpu"], rtol=0, atol=5e-2)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_nccl_with_sync_bn(work):
    result = run(work, *TORCHRUN, str(REPO / "DFAD_mnist.py"), *TINY, "--sync_bn",
                 "--epochs", "1", "--epoch_itrs", "2")
    assert "rank 0 of 2" in result.stdout
    assert "student weights identical on all 2 ranks" in result.stdout
    (row,) = read_csv_runs(work / "log/DFAD-mnist.csv")
    assert row.flags["processes"] == 2 and row.flags["sync_bn"] is True
