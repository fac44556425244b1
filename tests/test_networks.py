"""LeNet5 / LeNet5Half and the two generators: shapes, state_dict keys, parameter counts."""
import pytest
import torch

from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5, LeNet5Half


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cls, count, expected", [
    (LeNet5, 61_706, {"conv1.weight": [6, 1, 5, 5], "conv1.bias": [6],
                      "conv2.weight": [16, 6, 5, 5], "conv2.bias": [16],
                      "conv3.weight": [120, 16, 5, 5], "conv3.bias": [120],
                      "fc1.weight": [84, 120], "fc1.bias": [84],
                      "fc2.weight": [10, 84], "fc2.bias": [10]}),
    (LeNet5Half, 15_738, {"conv1.weight": [3, 1, 5, 5], "conv1.bias": [3],
                          "conv2.weight": [8, 3, 5, 5], "conv2.bias": [8],
                          "conv3.weight": [60, 8, 5, 5], "conv3.bias": [60],
                          "fc1.weight": [42, 60], "fc1.bias": [42],
                          "fc2.weight": [10, 42], "fc2.bias": [10]}),
])
def test_lenet(cls, count, expected):
    model = cls()
    assert n_params(model) == count
    assert shapes(model) == expected
    logits, feature = model(torch.randn(4, 1, 32, 32), out_feature=True)
    assert logits.shape == (4, 10)
    assert feature.shape == (4, expected["conv3.bias"][0])


def _bn(prefix: str, c: int, affine: bool = True) -> dict[str, list[int]]:
    keys = {f"{prefix}.running_mean": [c], f"{prefix}.running_var": [c],
            f"{prefix}.num_batches_tracked": []}
    if affine:
        keys.update({f"{prefix}.weight": [c], f"{prefix}.bias": [c]})
    return keys


@pytest.mark.parametrize("nz, nc, count", [(100, 1, 1_049_985), (256, 3, 2_329_091)])
def test_generator_a(nz, nc, count):
    g = GeneratorA(nz=nz, nc=nc, img_size=32)
    assert n_params(g) == count
    expected = {"l1.0.weight": [8192, nz], "l1.0.bias": [8192],
                **_bn("conv_blocks0.0", 128),
                "conv_blocks1.0.weight": [128, 128, 3, 3], "conv_blocks1.0.bias": [128],
                **_bn("conv_blocks1.1", 128),
                "conv_blocks2.0.weight": [64, 128, 3, 3], "conv_blocks2.0.bias": [64],
                **_bn("conv_blocks2.1", 64),
                "conv_blocks2.3.weight": [nc, 64, 3, 3], "conv_blocks2.3.bias": [nc],
                **_bn("conv_blocks2.5", nc, affine=False)}
    assert shapes(g) == expected
    x = g(torch.randn(4, nz, 1, 1))
    assert x.shape == (4, nc, 32, 32)
    # Tanh then affine-free BN: standardised per channel in train mode, not bounded
    # (docs/original-release.md#generator-output-ranges).
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(nc), atol=1e-4)


def test_generator_b():
    g = GeneratorB(nz=256, nc=3, img_size=128)
    assert n_params(g) == 11_243_203
    expected = {"project.1.weight": [32768, 256], "project.1.bias": [32768],
                **_bn("main.0", 512),
                "main.1.weight": [512, 256, 4, 4], **_bn("main.2", 256),
                "main.4.weight": [256, 128, 4, 4], **_bn("main.5", 128),
                "main.7.weight": [128, 64, 4, 4], **_bn("main.8", 64),
                "main.10.weight": [64, 64, 4, 4], **_bn("main.11", 64),
                "main.13.weight": [3, 64, 3, 3], "main.13.bias": [3]}
    assert shapes(g) == expected
    x = g(torch.randn(2, 256, 1, 1))
    assert x.shape == (2, 3, 128, 128)
    assert x.abs().max() <= 1.0
    # Custom DCGAN init: biases zero, weights ~ N(0, 0.02), BN weights ~ N(1, 0.02).
    assert g.main[13].bias.abs().max() == 0
    assert abs(g.project[1].weight.std().item() - 0.02) < 1e-3
    assert abs(g.main[0].weight.mean().item() - 1.0) < 0.01


def test_generator_b_rectangular():
    g = GeneratorB(nz=8, ngf=4, nc=3, img_size=(64, 96))
    assert g(torch.randn(2, 8, 1, 1)).shape == (2, 3, 64, 96)
