"""The classification networks and the generators (docs/original-release.md#lenet5-and-lenet5half,
#cifar-resnets, #generators): parameter counts, state_dict keys and shapes (the released teachers
load strictly), outputs, and initialisation."""
import pytest
import torch

from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5, LeNet5Half
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


def shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def bn(prefix: str, c: int, affine: bool = True) -> dict[str, list[int]]:
    keys = {f"{prefix}.running_mean": [c], f"{prefix}.running_var": [c],
            f"{prefix}.num_batches_tracked": []}
    return {**keys, **({f"{prefix}.weight": [c], f"{prefix}.bias": [c]} if affine else {})}


@pytest.mark.parametrize("cls, count, widths", [(LeNet5, 61_706, (6, 16, 120, 84)),
                                                (LeNet5Half, 15_738, (3, 8, 60, 42))])
def test_lenet(cls, count, widths):
    c1, c2, c3, f1 = widths
    model = cls()
    assert n_params(model) == count
    assert shapes(model) == {
        "conv1.weight": [c1, 1, 5, 5], "conv1.bias": [c1], "conv2.weight": [c2, c1, 5, 5],
        "conv2.bias": [c2], "conv3.weight": [c3, c2, 5, 5], "conv3.bias": [c3],
        "fc1.weight": [f1, c3], "fc1.bias": [f1], "fc2.weight": [10, f1], "fc2.bias": [10]}
    logits, feature = model(torch.randn(4, 1, 32, 32), out_feature=True)
    assert logits.shape == (4, 10) and feature.shape == (4, c3)


@pytest.mark.parametrize("nz, nc, count", [(100, 1, 1_049_985), (256, 3, 2_329_091)])
def test_generator_a(nz, nc, count):
    g = GeneratorA(nz=nz, nc=nc, img_size=32)
    assert n_params(g) == count
    assert shapes(g) == {
        "l1.0.weight": [8192, nz], "l1.0.bias": [8192], **bn("conv_blocks0.0", 128),
        "conv_blocks1.0.weight": [128, 128, 3, 3], "conv_blocks1.0.bias": [128],
        **bn("conv_blocks1.1", 128),
        "conv_blocks2.0.weight": [64, 128, 3, 3], "conv_blocks2.0.bias": [64],
        **bn("conv_blocks2.1", 64),
        "conv_blocks2.3.weight": [nc, 64, 3, 3], "conv_blocks2.3.bias": [nc],
        **bn("conv_blocks2.5", nc, affine=False)}
    x = g(torch.randn(4, nz, 1, 1))
    assert x.shape == (4, nc, 32, 32)
    # Tanh then affine-free BN: standardised per channel in train mode, not bounded
    # (docs/original-release.md#generator-output-ranges).
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(nc), atol=1e-4)


def test_generator_b():
    g = GeneratorB(nz=256, nc=3, img_size=128)
    assert n_params(g) == 11_243_203
    assert shapes(g) == {
        "project.1.weight": [32768, 256], "project.1.bias": [32768], **bn("main.0", 512),
        "main.1.weight": [512, 256, 4, 4], **bn("main.2", 256),
        "main.4.weight": [256, 128, 4, 4], **bn("main.5", 128),
        "main.7.weight": [128, 64, 4, 4], **bn("main.8", 64),
        "main.10.weight": [64, 64, 4, 4], **bn("main.11", 64),
        "main.13.weight": [3, 64, 3, 3], "main.13.bias": [3]}
    x = g(torch.randn(2, 256, 1, 1))
    assert x.shape == (2, 3, 128, 128) and x.abs().max() <= 1.0
    # DCGAN init: biases zero, weights ~ N(0, 0.02), BN weights ~ N(1, 0.02).
    assert g.main[13].bias.abs().max() == 0
    assert abs(g.project[1].weight.std().item() - 0.02) < 1e-3
    assert abs(g.main[0].weight.mean().item() - 1.0) < 0.01
    assert GeneratorB(nz=8, ngf=4, nc=3, img_size=(64, 96))(
        torch.randn(2, 8, 1, 1)).shape == (2, 3, 64, 96)


@pytest.mark.parametrize("build, num_classes, count", [
    (ResNet18_8x, 10, 11_173_962), (ResNet18_8x, 100, 11_220_132),
    (ResNet34_8x, 10, 21_282_122), (ResNet34_8x, 100, 21_328_292)])
def test_cifar_resnet_parameter_counts(build, num_classes, count):
    assert n_params(build(num_classes)) == count


def test_cifar_resnet34_keys_and_shapes():
    sd = ResNet34_8x(100).state_dict()
    expected = {"conv1.weight": (64, 3, 3, 3), "layer1.0.conv1.weight": (64, 64, 3, 3),
                "layer2.0.conv1.weight": (128, 64, 3, 3),
                "layer2.0.shortcut.0.weight": (128, 64, 1, 1),
                "layer3.5.conv2.weight": (256, 256, 3, 3),
                "layer4.0.shortcut.1.running_var": (512,), "linear.weight": (100, 512)}
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    assert {f"bn1.{n}" for n in ("weight", "bias", "running_mean", "running_var",
                                 "num_batches_tracked")} <= set(sd)
    assert {k.split(".shortcut")[0] for k in sd if ".shortcut." in k} == {
        "layer2.0", "layer3.0", "layer4.0"}
    assert len({k.rsplit(".", 2)[0] for k in sd if ".conv1." in k}) == 3 + 4 + 6 + 3
    assert "layer4.1.bn2.weight" in ResNet18_8x().state_dict()
    assert "layer4.2.conv1.weight" not in ResNet18_8x().state_dict()


def test_cifar_bottleneck_variants():
    with torch.device("meta"):  # structure only: skip allocating and initialising 120M weights
        models = {6: ResNet50_8x(), 23: ResNet101_8x(), 36: ResNet152_8x()}
    for depth, model in models.items():
        assert isinstance(model.layer1[0], Bottleneck) and len(model.layer3) == depth
    sd = models[6].state_dict()
    assert sd["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert "layer1.1.shortcut.0.weight" not in sd and sd["linear.weight"].shape == (10, 2048)


def test_cifar_resnet_init_and_feature():
    torch.manual_seed(0)
    model = ResNet18_8x(100)
    assert torch.equal(model.bn1.weight, torch.ones(64))
    # kaiming_normal fan_out: std = sqrt(2 / (out_channels * k * k)), here 512 * 9.
    std = model.layer4[1].conv2.weight.std().item()
    assert std == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)
    with torch.no_grad():
        logits, feature = model.eval()(torch.randn(2, 3, 32, 32), out_feature=True)
    assert logits.shape == (2, 100) and feature.shape == (2, 512)
    assert torch.allclose(model.linear(feature), logits)
