"""Teachers, students and generators of DFAD (docs/original-release.md#networks)."""
from network import gan, lenet, resnet_8x, torchvision_resnet

__all__ = ["gan", "lenet", "resnet_8x", "torchvision_resnet"]
