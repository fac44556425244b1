"""LeNet-5 teacher and its half-width student for MNIST
(docs/original-release.md#lenet5-and-lenet5half, from DAFL)."""
from __future__ import annotations

import torch
from torch import nn


class _LeNet(nn.Module):
    """LeNet-5 layer sequence; only the widths differ between teacher and student."""

    def __init__(self, widths: tuple[int, int, int, int], num_classes: int = 10) -> None:
        super().__init__()
        c1, c2, c3, hidden = widths
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.maxpool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(c2, c3, kernel_size=5)
        self.relu3 = nn.ReLU()
        self.fc1 = nn.Linear(c3, hidden)
        self.relu4 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(
        self, x: torch.Tensor, out_feature: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool1(self.relu1(self.conv1(x)))
        x = self.maxpool2(self.relu2(self.conv2(x)))
        feature = torch.flatten(self.relu3(self.conv3(x)), 1)
        logits = self.fc2(self.relu4(self.fc1(feature)))
        return (logits, feature) if out_feature else logits


class LeNet5(_LeNet):
    """Teacher: 61,706 parameters, 1x32x32 input."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((6, 16, 120, 84), num_classes)


class LeNet5Half(_LeNet):
    """Student: every width halved, 15,738 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((3, 8, 60, 42), num_classes)
