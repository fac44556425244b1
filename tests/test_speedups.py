"""The speed-ups of runtime/speed.py keep the method: the phase-kernel layer is upsample + conv,
the networks keep their state_dict keys and values, nothing changes under --original_numerics,
and --amp bf16 / fp16 / --compile each train a tiny MNIST epoch."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import DFAD_mnist
from network import gan, lenet, resnet_8x, torchvision_resnet
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from runtime.speed import Precision, Upsample2xConv3x3, fuse_upsample_conv, speed_up

CPU = torch.device("cpu")


def plain_upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """What GeneratorA computes as the original wrote it."""
    return F.conv2d(F.interpolate(x, scale_factor=2), conv.weight, conv.bias, padding=1)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_phase_kernel_layer_is_upsample_then_conv(channels_last, bias):
    """float64: equal to rounding, forward and every gradient; fp32: within 1e-5."""
    torch.manual_seed(0)
    layer = Upsample2xConv3x3(5, 7, 3, padding=1, bias=bias).double()
    x = torch.randn(3, 5, 4, 6, dtype=torch.double, requires_grad=True)  # not square
    x_in = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    params = [x, *layer.parameters()]
    want = plain_upsample_conv(x_in, layer)
    grad_out = torch.randn_like(want)
    got = layer(x_in)
    assert got.shape == want.shape == (3, 7, 8, 12)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for g, w in zip(torch.autograd.grad(got, params, grad_out),
                    torch.autograd.grad(want, params, grad_out), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    layer.float()
    x32 = torch.randn(4, 5, 8, 8)
    torch.testing.assert_close(layer(x32), plain_upsample_conv(x32, layer), rtol=0, atol=1e-5)


def test_fused_generator_a_keeps_its_keys_values_and_outputs():
    torch.manual_seed(0)
    plain = gan.GeneratorA(nz=16, ngf=8, nc=1, img_size=32)
    fused = gan.GeneratorA(nz=16, ngf=8, nc=1, img_size=32)
    fused.load_state_dict(plain.state_dict())
    fuse_upsample_conv(fused)
    assert isinstance(fused.conv_blocks1[0], Upsample2xConv3x3)
    assert isinstance(fused.conv_blocks2[0], Upsample2xConv3x3)
    assert list(fused.state_dict()) == list(plain.state_dict())
    for name, value in plain.state_dict().items():
        assert torch.equal(fused.state_dict()[name], value), name
    z = torch.randn(8, 16, 1, 1)
    torch.testing.assert_close(fused(z), plain(z), rtol=1e-4, atol=1e-4)  # train mode
    for (name, a), b in zip(plain.named_buffers(), fused.buffers(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


NETWORKS = {
    "lenet5": lenet.LeNet5, "lenet5_half": lenet.LeNet5Half,
    "generator_a": lambda: gan.GeneratorA(nz=16, ngf=8),
    "generator_b": lambda: gan.GeneratorB(nz=16, ngf=8, img_size=128),
    "resnet34_8x": resnet_8x.ResNet34_8x, "resnet18_8x": resnet_8x.ResNet18_8x,
    "resnet34": lambda: torchvision_resnet.resnet34(5), "resnet18": torchvision_resnet.resnet18,
    "deeplabv3_resnet50": lambda: deeplabv3_resnet50(11, pretrained_backbone=False),
    "deeplabv3_mobilenet": lambda: deeplabv3_mobilenet(11, pretrained_backbone=False),
}


@pytest.mark.parametrize("flags", [[], ["--compile"], ["--original_numerics"]],
                         ids=["default", "compile", "original_numerics"])
@pytest.mark.parametrize("name", NETWORKS)
def test_speed_up_keeps_every_networks_state_dict(name, flags):
    """The checkpoints stay the original's: the same keys and values whatever runs them;
    under --original_numerics the networks stay as built (NCHW, the plain layers)."""
    torch.manual_seed(0)
    net = NETWORKS[name]()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    layers = [type(m) for m in net.modules()]
    speed_up(DFAD_mnist.get_parser().parse_args(flags), CPU, net)
    assert list(net.state_dict()) == list(before)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    if flags == ["--original_numerics"]:
        assert [type(m) for m in net.modules()] == layers
        assert all(p.is_contiguous() for p in net.parameters())
    else:
        weights = [p for p in net.parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def test_precision_modes_compute_in_their_dtype():
    conv = nn.Conv2d(1, 2, 3)
    x = torch.randn(1, 1, 5, 5)
    for mode, dtype in (("off", torch.float32), ("bf16", torch.bfloat16),
                        ("fp16", torch.float16)):
        with Precision(mode, CPU).autocast():
            assert conv(x).dtype == dtype, mode
    assert Precision("fp16", CPU).scaler_S.is_enabled()
    assert not Precision("bf16", CPU).scaler_S.is_enabled()


def tiny_run(mnist_workdir: Path, tmp_path: Path, monkeypatch, *flags: str) -> dict:
    """One MNIST epoch of two iterations in a folder of its own; its state file."""
    shutil.copytree(mnist_workdir / "data", tmp_path / "data")
    shutil.copytree(mnist_workdir / "checkpoint/teacher", tmp_path / "checkpoint/teacher")
    monkeypatch.chdir(tmp_path)
    args = DFAD_mnist.get_parser().parse_args(
        ["--epochs", "1", "--epoch_itrs", "2", "--batch_size", "8", "--log_interval", "1",
         "--device", "cpu", "--num_workers", "0", "--no_visdom", *flags])
    assert len(DFAD_mnist.main(args)) == 1
    # The checkpoint keys are the plain modules', whatever ran the steps.
    student = torch.load("checkpoint/student/mnist-lenet5_half.pt", weights_only=True)
    lenet.LeNet5Half().load_state_dict(student, strict=True)
    generator = torch.load("checkpoint/student/mnist-lenet5_half-generator.pt",
                           weights_only=True)
    gan.GeneratorA(nz=100, nc=1, img_size=32).load_state_dict(generator, strict=True)
    return torch.load("checkpoint/student/mnist-lenet5_half-state.pt", weights_only=True)


# fp16 convolutions on the CPU are slow: seconds for one tiny epoch.
@pytest.mark.parametrize("mode", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_amp_trains_a_tiny_epoch(mode, mnist_workdir, tmp_path, monkeypatch, capsys):
    state = tiny_run(mnist_workdir, tmp_path, monkeypatch, "--amp", mode)
    assert "Epoch 1 test: acc=" in capsys.readouterr().out
    # fp16 scales each objective's loss and keeps the scale in the state; bf16 needs none.
    assert bool(state["precision"]["scaler_S"]) == (mode == "fp16")
    if mode == "fp16":
        assert state["precision"]["scaler_G"]["scale"] > 0


def has_cpp_compiler() -> bool:
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.slow  # inductor compiles three networks: tens of seconds
@pytest.mark.skipif(not has_cpp_compiler(), reason="--compile on the CPU needs a C++ compiler")
def test_compile_trains_a_tiny_epoch(mnist_workdir, tmp_path, monkeypatch, capsys):
    tiny_run(mnist_workdir, tmp_path, monkeypatch, "--compile")
    assert "Epoch 1 test: acc=" in capsys.readouterr().out
