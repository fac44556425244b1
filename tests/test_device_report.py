"""Which device a run uses is printed at its start; an NVIDIA driver that this torch cannot use
gives one warning line instead of a silent CPU run; --device cuda without CUDA is one line."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from runtime import startup
from runtime.errors import UserError
from runtime.startup import resolve_device, setup_runtime

REPO = Path(__file__).resolve().parents[1]
no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture
def driver_file(tmp_path, monkeypatch) -> Path:
    """A stand-in for /dev/nvidia0: the check only asks whether the path exists."""
    path = tmp_path / "nvidia0"
    path.write_text("")
    monkeypatch.setattr(startup, "NVIDIA_DEVICE_FILES", (str(path),))
    return path


@no_cuda_here
def test_unusable_driver_warns_in_one_line_and_runs_on_the_cpu(driver_file, capsys):
    assert resolve_device("auto").type == "cpu"
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("warning: running on the CPU: ")
    if torch.version.cuda is not None:
        assert f"driver is present ({driver_file})" in err and torch.version.cuda in err
    assert out.startswith(f"device: cpu ({torch.get_num_threads()} threads), torch "
                          f"{torch.__version__}")


@no_cuda_here
def test_no_warning_without_a_driver_or_when_the_cpu_is_asked_for(driver_file, monkeypatch,
                                                                  capsys):
    resolve_device("cpu")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(startup, "NVIDIA_DEVICE_FILES", (str(driver_file) + "-absent",))
    resolve_device("auto")
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("device: cpu")


@no_cuda_here
def test_device_cuda_with_an_unusable_driver_says_why(driver_file):
    with pytest.raises(UserError, match=r"--device cuda was given but CUDA is not available "
                                        r"\(.*\): use --device cpu"):
        resolve_device("cuda")


@no_cuda_here
def test_device_cuda_without_cuda_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "DFAD_mnist.py"), "--device", "cuda",
                             "--data_root", "nowhere"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --device cuda was given but CUDA is not available")


def test_runtime_setup_keeps_cudnn_benchmark_after_seeding():
    """Seeding used to reset cuDNN to deterministic: --cudnn_benchmark must survive set-up."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        setup_runtime(DFAD_mnist.get_parser().parse_args(["--device", "cpu",
                                                          "--cudnn_benchmark"]))
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        setup_runtime(DFAD_mnist.get_parser().parse_args(["--no-cuda"]))
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
