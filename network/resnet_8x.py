"""CIFAR ResNets "_8x" used as DFAD's CIFAR teacher and student
(docs/original-release.md#cifar-resnets).

Module names are fixed by the released teacher checkpoints, which are loaded strictly: `conv1`,
`bn1`, `layerN.i.*`, `layerN.0.shortcut.{0,1}` and `linear`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Identity (an empty Sequential, so no keys) unless the block changes shape."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs plus shortcut; ResNet18/34."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4; ResNet50/101/152."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """3x32x32 input, 3x3 stem without max-pool, four stages, 4x4 average pool, `linear`."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        num_blocks: list[int],
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, n: int, stride: int
    ) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, out_feature: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        feature = torch.flatten(F.avg_pool2d(out, 4), 1)
        logits = self.linear(feature)
        return (logits, feature) if out_feature else logits


def ResNet18_8x(num_classes: int = 10) -> ResNet:
    """CIFAR student: 11,173,962 parameters at 10 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def ResNet34_8x(num_classes: int = 10) -> ResNet:
    """CIFAR teacher: 21,282,122 parameters at 10 classes."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)


def ResNet50_8x(num_classes: int = 10) -> ResNet:
    """Kept for parity with the original module; no DFAD experiment uses it."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


def ResNet101_8x(num_classes: int = 10) -> ResNet:
    """Kept for parity with the original module; no DFAD experiment uses it."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes)


def ResNet152_8x(num_classes: int = 10) -> ResNet:
    """Kept for parity with the original module; no DFAD experiment uses it."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes)
