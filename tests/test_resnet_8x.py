"""CIFAR ResNets (docs/original-release.md#cifar-resnets) and the torchvision Caltech101 pair
(docs/original-release.md#caltech101-resnets).

Key names and shapes matter because the released teachers are loaded strictly.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18, resnet34

from network.resnet_8x import (
    Bottleneck,
    ResNet18_8x,
    ResNet34_8x,
    ResNet50_8x,
    ResNet101_8x,
    ResNet152_8x,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("build", "num_classes", "expected"),
    [
        (ResNet18_8x, 10, 11_173_962),
        (ResNet18_8x, 100, 11_220_132),
        (ResNet34_8x, 10, 21_282_122),
        (ResNet34_8x, 100, 21_328_292),
    ],
)
def test_parameter_counts(build, num_classes: int, expected: int) -> None:
    assert n_params(build(num_classes)) == expected


def test_caltech101_torchvision_parameter_counts() -> None:
    assert n_params(resnet34(num_classes=101)) == 21_336_485
    assert n_params(resnet18(num_classes=101)) == 11_228_325


@pytest.mark.parametrize("num_classes", [10, 100])
def test_state_dict_keys_and_shapes(num_classes: int) -> None:
    sd = ResNet34_8x(num_classes).state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 3, 3)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert f"bn1.{name}" in sd
        assert f"layer4.2.bn2.{name}" in sd
    assert sd["layer1.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert sd["layer3.5.conv2.weight"].shape == (256, 256, 3, 3)
    assert sd["layer2.0.conv1.weight"].shape == (128, 64, 3, 3)
    assert sd["layer2.0.shortcut.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer3.0.shortcut.0.weight"].shape == (256, 128, 1, 1)
    assert sd["layer4.0.shortcut.0.weight"].shape == (512, 256, 1, 1)
    assert sd["layer4.0.shortcut.1.running_var"].shape == (512,)
    assert sd["linear.weight"].shape == (num_classes, 512)
    assert sd["linear.bias"].shape == (num_classes,)

    shortcut_keys = {k.split(".shortcut")[0] for k in sd if ".shortcut." in k}
    assert shortcut_keys == {"layer2.0", "layer3.0", "layer4.0"}
    blocks = {k.rsplit(".", 2)[0] for k in sd if k.startswith("layer") and ".conv1." in k}
    assert len(blocks) == 3 + 4 + 6 + 3


def test_resnet18_block_layout() -> None:
    sd = ResNet18_8x().state_dict()
    assert "layer4.1.bn2.weight" in sd
    assert "layer4.2.conv1.weight" not in sd
    assert not any(k.startswith("layer1.") and "shortcut" in k for k in sd)


def test_bottleneck_variants() -> None:
    with torch.device("meta"):  # structure only: skip allocating and initialising 120M weights
        models = {6: ResNet50_8x(), 23: ResNet101_8x(), 36: ResNet152_8x()}
    for depth, model in models.items():
        assert isinstance(model.layer1[0], Bottleneck)
        assert len(model.layer3) == depth
    sd = models[6].state_dict()
    assert sd["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert sd["layer1.0.shortcut.0.weight"].shape == (256, 64, 1, 1)
    assert "layer1.1.shortcut.0.weight" not in sd
    assert sd["linear.weight"].shape == (10, 2048)


def test_init() -> None:
    model = ResNet18_8x()
    assert torch.equal(model.bn1.weight, torch.ones(64))
    assert torch.equal(model.layer3[1].bn2.bias, torch.zeros(256))
    # kaiming_normal fan_out: std = sqrt(2 / (out_channels * k * k)), here 512 * 9.
    std = model.layer4[1].conv2.weight.std().item()
    assert std == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)


def test_forward_shapes_and_feature() -> None:
    torch.manual_seed(0)
    model = ResNet18_8x(100).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        logits_again, feature = model(x, out_feature=True)
    assert logits.shape == (2, 100)
    assert feature.shape == (2, 512)
    assert torch.equal(logits, logits_again)
    assert torch.allclose(model.linear(feature), logits)


def test_state_dict_round_trip_through_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ResNet34_8x(10)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 32, 32))  # move BN running stats off their defaults
    model.eval()
    path = tmp_path / "cifar10-resnet34_8x.pt"
    torch.save(model.state_dict(), path)

    fresh = ResNet34_8x(10)
    fresh.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    fresh.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))
