"""DeepLabV3 teacher/student: checkpoint key scheme, sizes and MobileNetV2 padding
(docs/original-release.md#deeplabv3-teacher, #deeplabv3-student)."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from network.segmentation.deeplabv3 import PretrainedWeightsUnavailable
from network.segmentation.mobilenetv2 import InvertedResidual, MobileNetV2

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def bn_keys(prefix: str) -> set[str]:
    return {f"{prefix}.{s}" for s in BN}


def head_keys(num_classes: int) -> set[str]:
    """`classifier.*` keys as listed in docs/original-release.md#deeplabv3-teacher."""
    keys = {"classifier.0.convs.0.0.weight", "classifier.0.convs.4.1.weight"}
    keys |= bn_keys("classifier.0.convs.0.1") | bn_keys("classifier.0.convs.4.2")
    for i in (1, 2, 3):
        keys |= {f"classifier.0.convs.{i}.0.weight"} | bn_keys(f"classifier.0.convs.{i}.1")
    keys |= {"classifier.0.project.0.weight"} | bn_keys("classifier.0.project.1")
    keys |= {"classifier.1.weight", "classifier.4.weight", "classifier.4.bias"}
    return keys | bn_keys("classifier.2")


def resnet50_backbone_keys() -> set[str]:
    """torchvision's ResNet-50 without its fc: the released teachers' backbone."""
    return {f"backbone.{k}" for k in models.resnet50().state_dict() if not k.startswith("fc.")}


def mobilenet_backbone_keys() -> set[str]:
    keys = {"backbone.features.0.0.weight"} | bn_keys("backbone.features.0.1")
    keys |= {"backbone.features.1.conv.0.weight", "backbone.features.1.conv.3.weight"}
    keys |= bn_keys("backbone.features.1.conv.1") | bn_keys("backbone.features.1.conv.4")
    for i in range(2, 18):
        p = f"backbone.features.{i}.conv"
        keys |= {f"{p}.{j}.weight" for j in (0, 3, 6)}
        for j in (1, 4, 7):
            keys |= bn_keys(f"{p}.{j}")
    return keys


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    torch.manual_seed(0)
    return deeplabv3_resnet50(num_classes=11).eval()


@pytest.fixture(scope="module")
def student() -> nn.Module:
    torch.manual_seed(0)
    return deeplabv3_mobilenet(num_classes=11, dropout_p=0.5).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module, keys: list[str]) -> dict[str, tuple[int, ...]]:
    sd = model.state_dict()
    return {k: tuple(sd[k].shape) for k in keys}


def test_teacher_state_dict_keys_and_shapes(teacher: nn.Module) -> None:
    assert set(teacher.state_dict()) == resnet50_backbone_keys() | head_keys(11)
    expected = {
        "backbone.conv1.weight": (64, 3, 7, 7),
        "backbone.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
        "classifier.0.convs.0.0.weight": (256, 2048, 1, 1),
        "classifier.0.convs.2.0.weight": (256, 2048, 3, 3),
        "classifier.0.convs.4.1.weight": (256, 2048, 1, 1),
        "classifier.0.project.0.weight": (256, 1280, 1, 1),
        "classifier.1.weight": (256, 256, 3, 3), "classifier.4.weight": (11, 256, 1, 1)}
    assert shapes(teacher, list(expected)) == expected


def test_student_state_dict_keys_and_shapes(student: nn.Module) -> None:
    assert set(student.state_dict()) == mobilenet_backbone_keys() | head_keys(11)
    expected = {
        "backbone.features.0.0.weight": (32, 3, 3, 3),
        "backbone.features.1.conv.0.weight": (32, 1, 3, 3),
        "backbone.features.1.conv.3.weight": (16, 32, 1, 1),
        "backbone.features.2.conv.0.weight": (96, 16, 1, 1),
        "backbone.features.2.conv.3.weight": (96, 1, 3, 3),
        "backbone.features.2.conv.6.weight": (24, 96, 1, 1),
        "backbone.features.17.conv.6.weight": (320, 960, 1, 1),
        "classifier.0.convs.1.0.weight": (256, 320, 3, 3), "classifier.4.weight": (11, 256, 1, 1)}
    assert shapes(student, list(expected)) == expected
    assert n_params(student.backbone) == 1_811_712


@pytest.mark.parametrize("factory, num_classes, count", [
    (deeplabv3_resnet50, 11, 39_636_299), (deeplabv3_resnet50, 13, 39_636_813),
    (deeplabv3_mobilenet, 11, 5_111_307), (deeplabv3_mobilenet, 13, 5_111_821)])
def test_parameter_counts(factory, num_classes: int, count: int) -> None:
    assert n_params(factory(num_classes=num_classes)) == count


@pytest.mark.parametrize("size", [(64, 80), (65, 81)])
def test_output_matches_input_size_at_output_stride_8(teacher: nn.Module, student: nn.Module,
                                                      size) -> None:
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert teacher(x).shape == student(x).shape == (1, 11, *size)
        assert teacher.backbone(x).shape == (1, 2048, (size[0] + 7) // 8, (size[1] + 7) // 8)
        assert student.backbone(x).shape == (1, 320, (size[0] + 7) // 8, (size[1] + 7) // 8)
    assert [m.p for m in teacher.modules() if isinstance(m, nn.Dropout)] == [0.0]
    assert [m.p for m in student.modules() if isinstance(m, nn.Dropout)] == [0.5]


# index: (stride, dilation), the table of docs/original-release.md#deeplabv3-student
EXPECTED_BLOCKS = {
    1: (1, 1), 2: (2, 1), 3: (1, 1), 4: (2, 1), 5: (1, 1), 6: (1, 1), 7: (1, 1), 8: (1, 1),
    9: (1, 1), 10: (1, 1), 11: (1, 2), 12: (1, 2), 13: (1, 2), 14: (1, 2), 15: (1, 2),
    16: (1, 2), 17: (1, 4),
}


def test_mobilenet_strides_dilations_and_residuals() -> None:
    features = MobileNetV2(output_stride=8).features
    assert len(features) == 18
    for index, (stride, dilation) in EXPECTED_BLOCKS.items():
        conv = features[index].conv
        depthwise = conv[0] if index == 1 else conv[3]
        assert depthwise.groups == depthwise.in_channels, index
        assert (depthwise.stride, depthwise.dilation, depthwise.padding) == (
            (stride, stride), (dilation, dilation), (0, 0)), index
    assert {i for i in EXPECTED_BLOCKS if features[i].use_residual} == {
        3, 5, 6, 8, 9, 10, 12, 13, 15, 16}


def padding_check_block(in_out: int, dilation: int, expand_ratio: int) -> InvertedResidual:
    """A block whose BN(0) != 0, so the border effect of the padding is visible."""
    torch.manual_seed(0)
    block = InvertedResidual(in_out, in_out, stride=1, dilation=dilation,
                             expand_ratio=expand_ratio)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return block.eval()


@torch.no_grad()
def zero_padded_depthwise_reference(block: InvertedResidual, x: torch.Tensor) -> torch.Tensor:
    """The usual MobileNetV2 block: no input padding, the depthwise conv zero-pads instead."""
    c, d = block.conv, block.dilation
    expanded, rest = (x, c) if len(c) == 5 else (c[2](c[1](c[0](x))), c[3:])  # t = 1: no expand
    dw = rest[0]
    h = F.conv2d(expanded, dw.weight, stride=dw.stride, padding=d, dilation=d, groups=dw.groups)
    out = rest[4](rest[3](rest[2](rest[1](h))))
    return x + out if block.use_residual else out


@pytest.mark.parametrize("dilation", [1, 2])
def test_an_expanding_block_pads_its_input_before_the_expansion(dilation: int) -> None:
    block, x, d = padding_check_block(8, dilation, 6), torch.randn(2, 8, 9, 11), dilation
    with torch.no_grad():
        out = block(x)
    reference = zero_padded_depthwise_reference(block, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out[..., d:-d, d:-d], reference[..., d:-d, d:-d])
    diff = (out - reference).abs()
    for border in (diff[..., :d, :], diff[..., -d:, :], diff[..., :d], diff[..., -d:]):
        assert border.amax() > 1e-3


def test_a_non_expanding_block_equals_a_zero_padded_depthwise_one() -> None:
    block, x = padding_check_block(16, 1, 1), torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(block(x), zero_padded_depthwise_reference(block, x))


def test_pretrained_backbones_mobilenet_refused_resnet50_offline_says_where(tmp_path,
                                                                             monkeypatch) -> None:
    with pytest.raises(ValueError, match="pretrained_backbone"):
        deeplabv3_mobilenet(num_classes=11, pretrained_backbone=True)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        deeplabv3_resnet50(num_classes=11, pretrained_backbone=True)
    message = str(info.value)
    assert "\n" not in message and "pretrained_backbone=False" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
