"""Caltech101 networks (docs/original-release.md#caltech101-resnets): plain torchvision ResNet-34
(teacher), ResNet-18 (student).

They stay torchvision's own classes, so the authors' released caltech101-resnet34.pt (torchvision
key names) loads strictly. At 128 px the stem gives 32x32 maps, then 16, 8 and 4.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision import models
from torchvision.models import ResNet

from runtime.errors import UserError


def _imagenet_state_dict(weights: models.WeightsEnum) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights from the hub cache, downloaded once if missing."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # offline, proxy and corrupt-file errors come in many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"cannot get the ImageNet weights for --pretrained ({reason}): download {weights.url} "
            f"on a machine with internet access and place it at {path}"
        ) from err


def resnet34(num_classes: int = 101, pretrained: bool = False) -> ResNet:
    """The teacher, from scratch as in the README
    (docs/original-release.md#classification-teacher-training), or ImageNet-initialised."""
    model = models.resnet34(weights=None, num_classes=num_classes)
    if pretrained:
        state = _imagenet_state_dict(models.ResNet34_Weights.IMAGENET1K_V1)
        if num_classes != 1000:
            # docs/original-release.md#pretrained-caltech101-teacher: the 1000-way ImageNet head
            # cannot serve other class counts (the original crashed here); everything but the
            # freshly initialised fc is ImageNet's.
            state.update({k: v for k, v in model.state_dict().items() if k.startswith("fc.")})
        model.load_state_dict(state, strict=True)
    return model


def resnet18(num_classes: int = 101) -> ResNet:
    """The student, randomly initialised (docs/original-release.md#caltech101-resnets)."""
    return models.resnet18(weights=None, num_classes=num_classes)
