"""Which device a run uses is printed at its start; an NVIDIA driver that this torch cannot use
gives one warning line instead of a silent CPU run; --device cuda without CUDA is one line;
--cudnn_benchmark survives the seeding."""
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from runtime import device as devices
from runtime.cli import run_main

no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def setup(*flags: str) -> torch.device:
    return devices.setup(DFAD_mnist.get_parser().parse_args(list(flags)))


@pytest.fixture
def driver_file(tmp_path, monkeypatch) -> Path:
    """A stand-in for /dev/nvidia0: the check only asks whether the path exists."""
    path = tmp_path / "nvidia0"
    path.write_text("")
    monkeypatch.setattr(devices, "NVIDIA_DEVICE_FILES", (str(path),))
    return path


@no_cuda_here
def test_an_unusable_driver_warns_in_one_line_and_runs_on_the_cpu(driver_file, capsys):
    assert setup("--device", "auto").type == "cpu"
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("warning: running on the CPU: ")
    assert f"driver is present ({driver_file})" in err or torch.version.cuda is None
    assert out == (f"device: cpu ({torch.get_num_threads()} threads), torch "
                   f"{torch.__version__}\n")


@no_cuda_here
def test_no_warning_without_a_driver_or_when_the_cpu_is_asked_for(driver_file, monkeypatch,
                                                                  capsys):
    setup("--device", "cpu")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(devices, "NVIDIA_DEVICE_FILES", (str(driver_file) + "-absent",))
    setup("--device", "auto")
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("device: cpu")


@no_cuda_here
def test_device_cuda_without_cuda_is_one_line_saying_why(driver_file, monkeypatch, capsys):
    monkeypatch.chdir(driver_file.parent)
    with pytest.raises(SystemExit) as stop:
        run_main(DFAD_mnist.get_parser, DFAD_mnist.main, ["--device", "cuda"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.count("\n") == 1
    assert err.startswith("error: --device cuda was given but CUDA is not available (")
    assert err.endswith("): use --device cpu\n")


def test_cudnn_benchmark_survives_the_seeding(monkeypatch):
    for flag in ("deterministic", "benchmark"):  # restored after the test
        monkeypatch.setattr(torch.backends.cudnn, flag, getattr(torch.backends.cudnn, flag))
    setup("--device", "cpu", "--cudnn_benchmark")
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    setup("--no-cuda")
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
