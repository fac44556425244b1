"""MobileNetV2 backbone of the DFAD student, with an output-stride option
(docs/original-release.md#deeplabv3-student).

The layout follows the jfzhang95 variant the original release used, because the released student
checkpoints (`backbone.features.N...`) and their numerics depend on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (expansion t, output channels c, repeats n, first stride s),
# docs/original-release.md#deeplabv3-student.
INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def fixed_padding(x: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    """Zero-pad `x` so a padding-0 conv of this kernel and dilation keeps the spatial size."""
    effective = kernel_size + (kernel_size - 1) * (dilation - 1)
    total = effective - 1
    begin = total // 2
    end = total - begin
    return F.pad(x, (begin, end, begin, end))


class InvertedResidual(nn.Module):
    """MobileNetV2 block whose *input* is padded before the whole conv sequence.

    docs/original-release.md#deeplabv3-student, #checkpoint-critical-deeplab-details: the depthwise
    conv has padding 0 and the block input is zero-padded first, so for t > 1 the 1x1 expansion sees
    the padded border and the border becomes relu6(BN(0)) instead of 0. Kept on purpose: the
    released checkpoints were trained this way.
    """

    kernel_size = 3

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dilation: int, expand_ratio: int
    ) -> None:
        super().__init__()
        self.stride = stride
        self.dilation = dilation
        self.use_residual = stride == 1 and in_channels == out_channels
        hidden = round(in_channels * expand_ratio)
        depthwise = [
            nn.Conv2d(hidden, hidden, 3, stride, 0, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        ]
        project = [nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        if expand_ratio == 1:
            self.conv = nn.Sequential(*depthwise, *project)
        else:
            expand = [
                nn.Conv2d(in_channels, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
            ]
            self.conv = nn.Sequential(*expand, *depthwise, *project)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(fixed_padding(x, self.kernel_size, self.dilation))
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor without the final 1x1 conv to 1280
    (docs/original-release.md#deeplabv3-student).

    Once the running stride reaches `output_stride`, later groups use stride 1 and grow the
    dilation instead, so DeepLabV3 gets a denser feature map (stride 8 in DFAD).
    """

    def __init__(self, output_stride: int = 8, width_mult: float = 1.0) -> None:
        super().__init__()
        in_channels = int(32 * width_mult)
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(3, in_channels, 3, 2, 1, bias=False),
                nn.BatchNorm2d(in_channels),
                nn.ReLU6(inplace=True),
            )
        ]
        current_stride = 2
        rate = 1
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            if current_stride == output_stride:
                stride, dilation = 1, rate
                rate *= s
            else:
                stride, dilation = s, 1
                current_stride *= s
            out = int(c * width_mult)
            for i in range(n):
                block = InvertedResidual(in_channels, out, stride if i == 0 else 1, dilation, t)
                layers.append(block)
                in_channels = out
        self.out_channels = in_channels
        self.features = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        # docs/original-release.md#deeplabv3-student: kaiming_normal_ with PyTorch's defaults for
        # convs, BN to identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
