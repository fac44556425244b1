"""DeepLabV3 teacher (ResNet-50) and student (MobileNetV2) of the DFAD segmentation runs.

State-dict keys and shapes follow docs/original-release.md#deeplabv3-teacher, #deeplabv3-student
exactly so the authors' released checkpoints load with `strict=True`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from network.segmentation.mobilenetv2 import MobileNetV2

# docs/original-release.md#deeplabv3-teacher, #checkpoint-critical-deeplab-details: the original
# uses 32 as the third rate (torchvision uses 36).
ASPP_RATES = (12, 24, 32)


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights for a backbone could not be fetched or read (e.g. offline)."""


class ASPPConv(nn.Sequential):
    """Atrous 3x3 branch; padding equals the rate so the map keeps its size."""

    def __init__(self, in_channels: int, out_channels: int, rate: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ASPPPooling(nn.Sequential):
    """Image-level branch: global context broadcast back to the feature map's size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return F.interpolate(super().forward(x), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Five parallel branches (1x1, three atrous, pooling) fused by a 1x1 projection."""

    def __init__(
        self,
        in_channels: int,
        rates: Sequence[int] = ASPP_RATES,
        out_channels: int = 256,
        dropout_p: float = 0.5,
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )
        ]
        branches += [ASPPConv(in_channels, out_channels, rate) for rate in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout_p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    """ASPP, a 3x3 conv block, then per-pixel class logits
    (docs/original-release.md#deeplabv3-teacher, table)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        rates: Sequence[int] = ASPP_RATES,
        dropout_p: float = 0.5,
    ) -> None:
        super().__init__(
            ASPP(in_channels, rates, dropout_p=dropout_p),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, num_classes, 1),
        )


class DeepLabV3(nn.Module):
    """Backbone features → head → logits bilinearly upsampled to the input size.

    Returns a plain tensor (no aux head, no dict) because DFAD's L1 loss compares the logits of
    teacher and student at input resolution
    (docs/original-release.md#the-method, #deeplabv3-teacher).
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.backbone(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ResNetTrunk(nn.ModuleDict):
    """A torchvision ResNet without avgpool and fc.

    Keeps the children conv1..layer4 under their own names, which gives the `backbone.conv1...`
    keys that torchvision's IntermediateLayerGetter produced in the original
    (docs/original-release.md#deeplabv3-teacher, #missing-dependencies-and-old-torchvision).
    """

    def __init__(self, resnet: nn.Module) -> None:
        kept = {}
        for name, module in resnet.named_children():
            kept[name] = module
            if name == "layer4":
                break
        super().__init__(kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.values():
            x = module(x)
        return x


def _resnet50_os8(pretrained: bool) -> nn.Module:
    """ResNet-50 with layer3/layer4 dilated instead of strided: output stride 8."""
    dilation = [False, True, True]
    if not pretrained:
        return resnet50(weights=None, replace_stride_with_dilation=dilation)
    weights = ResNet50_Weights.IMAGENET1K_V1
    try:
        return resnet50(weights=weights, replace_stride_with_dilation=dilation)
    except (OSError, RuntimeError) as err:
        filename = weights.url.rsplit("/", 1)[-1]
        cache = f"{torch.hub.get_dir()}/checkpoints/{filename}"
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise PretrainedWeightsUnavailable(
            f"could not load the ImageNet ResNet-50 weights ({reason}); "
            f"download {weights.url} to {cache}, or pass pretrained_backbone=False"
        ) from err


def deeplabv3_resnet50(
    num_classes: int = 21, dropout_p: float = 0.0, pretrained_backbone: bool = False
) -> DeepLabV3:
    """The DFAD teacher: DeepLabV3 on a dilated ResNet-50
    (docs/original-release.md#deeplabv3-teacher).

    `pretrained_backbone` defaults to False here (the original defaulted to True and downloaded
    weights that the teacher checkpoint then overwrote,
    docs/original-release.md#needless-imagenet-download).
    """
    backbone = ResNetTrunk(_resnet50_os8(pretrained_backbone))
    return DeepLabV3(backbone, DeepLabHead(2048, num_classes, dropout_p=dropout_p))


def deeplabv3_mobilenet(
    num_classes: int = 21, dropout_p: float = 0.0, pretrained_backbone: bool = False
) -> DeepLabV3:
    """The DFAD student: DeepLabV3 (not V3+) on MobileNetV2 with output stride 8
    (docs/original-release.md#deeplabv3-student)."""
    if pretrained_backbone:
        raise ValueError(
            "pretrained_backbone=True is not supported for MobileNetV2: the original weights URL "
            "(jeff95.me) is dead and DFAD trains the student from scratch; pass False"
        )
    backbone = MobileNetV2(output_stride=8)
    return DeepLabV3(backbone, DeepLabHead(backbone.out_channels, num_classes, dropout_p=dropout_p))
