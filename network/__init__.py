"""Teachers, students and generators of DFAD (SPEC §4)."""
from network import gan, lenet, resnet_8x, torchvision_resnet

__all__ = ["gan", "lenet", "resnet_8x", "torchvision_resnet"]
