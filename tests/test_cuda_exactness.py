"""CUDA only (pytest -m cuda): what only a GPU shows of tests/test_exactness.py's claims. No host
sync inside the steps (fused optimizers, the KD-ORI source), a CPU state resumed on CUDA under
fp16, a `--device cpu` run that leaves CUDA alone, and two ranks sharing one GPU under DDP."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from baselines.sources import RealImages
from engine.dfad import dfad_optimizers, generator_loss_mae, generator_step, student_step
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from network.segmentation import deeplabv3_resnet50
from runtime.distributed import SHARE_ONE_GPU
from runtime.precision import Precision, optimizer_options
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.script_args import dfad_args
from tests.helpers.segmentation_fixtures import write_tiny_camvid

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FAST = ["--num_workers", "0", "--no_visdom", "--data_root", "data", "--batch_size", "8",
        "--test_batch_size", "8", "--epoch_itrs", "2"]
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
CUDA = torch.device("cuda")


def python(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env or ENV)


@pytest.fixture
def work(tmp_path) -> Path:
    write_tiny_mnist(tmp_path / "data", n_train=32, n_test=16)
    write_random_teacher(tmp_path)
    return tmp_path


def test_a_cpu_run_on_a_gpu_host_opens_no_cuda_context(work):
    code = ("import sys, torch; sys.argv = ['DFAD_mnist.py', *sys.argv[1:]]; import DFAD_mnist; "
            "DFAD_mnist.main(DFAD_mnist.get_parser().parse_args(sys.argv[1:])); "
            "print('cuda initialized:', torch.cuda.is_initialized())")
    result = python(work, "-c", code, "--device", "cpu", "--epochs", "2", *FAST,
                    env={**ENV, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cuda initialized: False" in result.stdout


def test_a_cpu_state_resumes_on_cuda_under_fp16(work):
    """The state's optimizers were unfused (CPU); the resumed ones are fused, as a CUDA run's,
    and GradScaler's step with them runs."""
    script = str(REPO / "DFAD_mnist.py")
    first = python(work, script, "--device", "cpu", "--amp", "fp16", "--epochs", "1", *FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = python(work, script, "--device", "cuda", "--amp", "fp16", "--epochs", "2",
                     "--resume", *FAST)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Epoch 2 test:" in resumed.stdout


def test_dfad_and_kd_ori_steps_make_no_host_sync():
    """After a first step (lazy state), the student and generator steps with the fused
    optimizers, and the KD-ORI source, never wait for the GPU."""
    args = dfad_args(batch_size=8, nz=16)
    torch.manual_seed(0)
    teacher = LeNet5().to(CUDA).eval().requires_grad_(False)
    student, generator = LeNet5Half().to(CUDA), GeneratorA(nz=16, ngf=8).to(CUDA)
    optimizer_S, optimizer_G = dfad_optimizers(student, generator, args, CUDA)
    source = RealImages(torch.randn(20, 1, 32, 32), seed=1).to(CUDA)

    def steps() -> None:
        z = torch.randn(8, 16, 1, 1, device=CUDA)
        student_step(teacher, student, generator, optimizer_S, z)
        generator_step(teacher, student, generator, optimizer_G, z, generator_loss_mae)
        student_step(teacher, student, source, optimizer_S, z)

    steps()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            steps()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_teacher_step_under_fp16_is_fused_and_makes_no_host_sync():
    args = dfad_args()
    model = LeNet5().to(CUDA)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                **optimizer_options(args, CUDA))
    assert optimizer.param_groups[0]["fused"]
    precision = Precision("fp16", CUDA)
    images = torch.randn(8, 1, 32, 32, device=CUDA)
    targets = torch.arange(8, device=CUDA)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            output = model(images)
        precision.backward_step(F.cross_entropy(output.float(), targets), optimizer,
                                precision.scaler_S)

    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_two_ranks_on_one_gpu_ddp_sync_bn_global_mae_and_resume(tmp_path):
    """Both ranks on cuda:0 over gloo (the switch only this test sets): the segmentation loop
    with --sync_bn (the generator's BatchNorm), its all-reduced MAE, and a resume."""
    write_tiny_camvid(tmp_path / "data", n_train=2, n_test=2)
    torch.manual_seed(0)
    teacher = tmp_path / "checkpoint/teacher/camvid-deeplabv3_resnet50.pt"
    teacher.parent.mkdir(parents=True)
    torch.save(deeplabv3_resnet50(11, pretrained_backbone=False).state_dict(), teacher)
    env = {**ENV, SHARE_ONE_GPU: "1"}
    command = [*TORCHRUN, str(REPO / "DFAD_camvid_deeplab.py"), "--device", "cuda", "--sync_bn",
               "--num_workers", "0", "--no_visdom", "--data_root", "data", "--batch_size", "4",
               "--test_batch_size", "2", "--epoch_itrs", "1"]
    first = python(tmp_path, *command, "--epochs", "1", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = python(tmp_path, *command, "--epochs", "2", "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert "student weights identical on all 2 ranks" in resumed.stdout
