"""CUDA only (pytest -m cuda; scripts/gpu_check.sh runs them): a DFAD_mnist run on one GPU ends
where the same run on the CPU ends, within rounding; mixed precision runs and resumes."""
import json
import math
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from engine import dfad
from network.gan import GeneratorA

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TINY = ["--epoch_itrs", "2", "--batch_size", "16", "--test_batch_size", "8", "--num_workers",
        "0", "--data_root", "data", "--no_visdom", "--nz", "100"]
STATE = "checkpoint/student/mnist-lenet5_half-state.pt"


def run(*flags: str) -> dict:
    DFAD_mnist.main(DFAD_mnist.get_parser().parse_args([*TINY, *flags]))
    return torch.load(STATE, weights_only=True)


def logged_losses() -> list[float]:
    """loss_S and loss_G at the end of each epoch."""
    lines = Path("log/DFAD-mnist.metrics.jsonl").read_text().splitlines()
    return [line[k] for line in map(json.loads, lines) for k in ("loss_S", "loss_G")]


@pytest.fixture
def exact_fp32():
    """No TF32: both devices compute the same fp32 maths."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_one_gpu_run_matches_the_cpu_run(mnist_run, monkeypatch, exact_fp32, capsys):
    """Each device with its own speed-ups (channels_last; fused SGD and Adam on CUDA, the
    phase-kernel generator on the CPU); the latents drawn on the CPU for both, as a CUDA
    generator draws other numbers."""
    monkeypatch.setattr(dfad, "sample_noise",
                        lambda n, nz, device: torch.randn(n, nz, 1, 1).to(device))
    cpu = run("--device", "cpu", "--epochs", "2")
    cpu_losses = logged_losses()
    for folder in ("checkpoint/student", "log"):
        Path(folder).rename(f"{folder}-cpu")
    cuda = run("--device", "cuda", "--epochs", "2")
    assert "device: cuda:0 " in capsys.readouterr().out
    assert logged_losses() == pytest.approx(cpu_losses, rel=1e-3, abs=1e-5)
    for name, weight in cpu["student"].items():
        torch.testing.assert_close(cuda["student"][name].cpu(), weight, rtol=1e-3, atol=1e-4,
                                   msg=name)
    # The generator by what it draws: Adam moves each weight by about lr per step whatever its
    # gradient, so weights whose gradients are rounding noise part by up to a few lr; the images
    # (unit scale after the last BatchNorm) were 0.0145 apart on an H100. A wrong engine on
    # either device is off by O(1).
    drawn = []
    for state in (cpu, cuda):
        generator = GeneratorA(nz=100, nc=1).eval()
        generator.load_state_dict({k: v.cpu() for k, v in state["generator"].items()})
        with torch.no_grad():
            drawn.append(generator(torch.randn(16, 100, 1, 1, generator=torch.Generator()
                                               .manual_seed(0))))
    torch.testing.assert_close(drawn[1], drawn[0], rtol=0, atol=5e-2)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_runs_and_resumes(amp, mnist_run):
    first = run("--device", "cuda", "--amp", amp, "--epochs", "1")
    resumed = run("--device", "cuda", "--amp", amp, "--epochs", "2", "--resume")
    assert resumed["epochs_done"] == 2 and len(resumed["history"]) == 2
    assert all(math.isfinite(loss) for loss in logged_losses())
    assert all(torch.isfinite(v).all() for v in resumed["student"].values()
               if v.is_floating_point())
    # fp16 scales its losses: its two scalers travel in the state; bf16 needs none
    scalers = first["precision"]["scaler_S"], resumed["precision"]["scaler_G"]
    assert all(bool(scaler) == (amp == "fp16") for scaler in scalers)
