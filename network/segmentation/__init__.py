"""DeepLabV3 segmentation networks used by DFAD
(docs/original-release.md#deeplabv3-teacher, #deeplabv3-student)."""
from network.segmentation import deeplabv3, mobilenetv2
from network.segmentation.deeplabv3 import DeepLabV3, deeplabv3_mobilenet, deeplabv3_resnet50
from network.segmentation.mobilenetv2 import MobileNetV2

__all__ = [
    "DeepLabV3",
    "MobileNetV2",
    "deeplabv3",
    "deeplabv3_mobilenet",
    "deeplabv3_resnet50",
    "mobilenetv2",
]
