"""DeepLabV3 teacher/student: checkpoint key scheme, sizes and MobileNetV2 padding
(docs/original-release.md#deeplabv3-teacher, #deeplabv3-student)."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torch import nn

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
    keys = {"backbone.conv1.weight"} | bn_keys("backbone.bn1")
    for layer, blocks in zip((1, 2, 3, 4), (3, 4, 6, 3), strict=True):
        for b in range(blocks):
            p = f"backbone.layer{layer}.{b}"
            for j in (1, 2, 3):
                keys |= {f"{p}.conv{j}.weight"} | bn_keys(f"{p}.bn{j}")
        keys |= {f"backbone.layer{layer}.0.downsample.0.weight"}
        keys |= bn_keys(f"backbone.layer{layer}.0.downsample.1")
    return keys


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


def test_teacher_state_dict_keys_and_shapes(teacher: nn.Module) -> None:
    sd = teacher.state_dict()
    assert set(sd) == resnet50_backbone_keys() | head_keys(11)
    expected = {
        "backbone.conv1.weight": (64, 3, 7, 7),
        "backbone.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
        "classifier.0.convs.0.0.weight": (256, 2048, 1, 1),
        "classifier.0.convs.2.0.weight": (256, 2048, 3, 3),
        "classifier.0.convs.4.1.weight": (256, 2048, 1, 1),
        "classifier.0.project.0.weight": (256, 1280, 1, 1),
        "classifier.1.weight": (256, 256, 3, 3),
        "classifier.4.weight": (11, 256, 1, 1),
        "classifier.4.bias": (11,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key


def test_student_state_dict_keys_and_shapes(student: nn.Module) -> None:
    sd = student.state_dict()
    assert set(sd) == mobilenet_backbone_keys() | head_keys(11)
    expected = {
        "backbone.features.0.0.weight": (32, 3, 3, 3),
        "backbone.features.1.conv.0.weight": (32, 1, 3, 3),
        "backbone.features.1.conv.3.weight": (16, 32, 1, 1),
        "backbone.features.2.conv.0.weight": (96, 16, 1, 1),
        "backbone.features.2.conv.3.weight": (96, 1, 3, 3),
        "backbone.features.2.conv.6.weight": (24, 96, 1, 1),
        "backbone.features.17.conv.6.weight": (320, 960, 1, 1),
        "classifier.0.convs.1.0.weight": (256, 320, 3, 3),
        "classifier.4.weight": (11, 256, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert n_params(student.backbone) == 1_811_712


@pytest.mark.parametrize(
    ("factory", "num_classes", "expected"),
    [
        (deeplabv3_resnet50, 11, 39_636_299),
        (deeplabv3_resnet50, 13, 39_636_813),
        (deeplabv3_mobilenet, 11, 5_111_307),
        (deeplabv3_mobilenet, 13, 5_111_821),
    ],
)
def test_parameter_counts(factory, num_classes: int, expected: int) -> None:
    assert n_params(factory(num_classes=num_classes)) == expected


def test_dropout_p_reaches_every_dropout(teacher: nn.Module, student: nn.Module) -> None:
    teacher_ps = [m.p for m in teacher.modules() if isinstance(m, nn.Dropout)]
    student_ps = [m.p for m in student.modules() if isinstance(m, nn.Dropout)]
    assert teacher_ps == [0.0]
    assert student_ps == [0.5]


@pytest.mark.parametrize("size", [(64, 80), (65, 81)])
def test_output_matches_input_size(teacher: nn.Module, student: nn.Module, size) -> None:
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert teacher(x).shape == (1, 11, *size)
        assert student(x).shape == (1, 11, *size)


def test_both_backbones_have_output_stride_8(teacher: nn.Module, student: nn.Module) -> None:
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert teacher.backbone(x).shape == (1, 2048, 8, 10)
        assert student.backbone(x).shape == (1, 320, 8, 10)
        assert student.backbone(torch.randn(1, 3, 128, 128)).shape[-2:] == (16, 16)


@pytest.mark.parametrize("factory", [deeplabv3_mobilenet, deeplabv3_resnet50])
def test_saved_state_dict_reloads_strictly(factory, tmp_path) -> None:
    torch.manual_seed(1)
    model = factory(num_classes=13)
    model.train()
    with torch.no_grad():  # moves BN running stats off their defaults, so buffers are checked too
        model(torch.randn(2, 3, 32, 40))
    model.eval()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)

    fresh = factory(num_classes=13).eval()
    x = torch.randn(1, 3, 48, 56)
    with torch.no_grad():
        before = fresh(x)
        fresh.load_state_dict(torch.load(path, weights_only=True), strict=True)
        assert not torch.equal(before, model(x))
        assert torch.equal(fresh(x), model(x))


# index: (stride, dilation), the table of docs/original-release.md#deeplabv3-student
EXPECTED_BLOCKS = {
    1: (1, 1), 2: (2, 1), 3: (1, 1), 4: (2, 1), 5: (1, 1), 6: (1, 1), 7: (1, 1), 8: (1, 1),
    9: (1, 1), 10: (1, 1), 11: (1, 2), 12: (1, 2), 13: (1, 2), 14: (1, 2), 15: (1, 2),
    16: (1, 2), 17: (1, 4),
}


def test_mobilenet_strides_dilations_and_residuals() -> None:
    features = MobileNetV2(output_stride=8).features
    assert len(features) == 18
    residual = set()
    for index, (stride, dilation) in EXPECTED_BLOCKS.items():
        block = features[index]
        depthwise = block.conv[0] if index == 1 else block.conv[3]
        assert depthwise.groups == depthwise.in_channels
        assert depthwise.stride == (stride, stride), index
        assert depthwise.dilation == (dilation, dilation), index
        assert depthwise.padding == (0, 0), index
        if block.use_residual:
            residual.add(index)
    assert residual == {3, 5, 6, 8, 9, 10, 12, 13, 15, 16}


def test_mobilenet_output_stride_16() -> None:
    out = MobileNetV2(output_stride=16, width_mult=0.25).eval()(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 80, 4, 4)


def randomize_batchnorm(module: nn.Module) -> None:
    """Makes BN(0) != 0 so the border effect of the padding is visible."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


def zero_padded_depthwise_reference(block: InvertedResidual, x: torch.Tensor) -> torch.Tensor:
    """The usual MobileNetV2 block: no input padding, the depthwise conv zero-pads instead."""
    c = block.conv
    d = block.dilation
    if len(c) == 5:  # t = 1: depthwise, BN, ReLU6, project, BN
        expanded, rest = x, c
    else:
        expanded, rest = c[2](c[1](c[0](x))), c[3:]
    dw = rest[0]
    h = F.conv2d(expanded, dw.weight, stride=dw.stride, padding=d, dilation=d, groups=dw.groups)
    out = rest[4](rest[3](rest[2](rest[1](h))))
    return x + out if block.use_residual else out


@pytest.mark.parametrize("dilation", [1, 2])
def test_expanding_block_pads_input_before_expansion(dilation: int) -> None:
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, stride=1, dilation=dilation, expand_ratio=6)
    randomize_batchnorm(block)
    block.eval()
    x = torch.randn(2, 8, 9, 11)
    with torch.no_grad():
        out = block(x)
        reference = zero_padded_depthwise_reference(block, x)
    assert out.shape == x.shape
    d = dilation
    torch.testing.assert_close(out[..., d:-d, d:-d], reference[..., d:-d, d:-d])
    diff = (out - reference).abs()
    top, bottom, left, right = diff[..., :d, :], diff[..., -d:, :], diff[..., :d], diff[..., -d:]
    for border in (top, bottom, left, right):
        assert border.amax() > 1e-3


def test_non_expanding_block_equals_zero_padded_depthwise() -> None:
    torch.manual_seed(0)
    block = InvertedResidual(16, 16, stride=1, dilation=1, expand_ratio=1)
    randomize_batchnorm(block)
    block.eval()
    x = torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(block(x), zero_padded_depthwise_reference(block, x))


def test_pretrained_mobilenet_is_refused() -> None:
    with pytest.raises(ValueError, match="pretrained_backbone"):
        deeplabv3_mobilenet(num_classes=11, pretrained_backbone=True)


def test_offline_resnet50_weights_error_says_where_to_put_the_file(tmp_path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        deeplabv3_resnet50(num_classes=11, pretrained_backbone=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
    assert "pretrained_backbone=False" in message
