"""What torchvision does not ship as-is, in the real on-disk layouts (docs/data.md)."""
from dataset.caltech import Caltech101
from dataset.camvid import CamVid
from dataset.nyu import NYUv2

__all__ = ["CamVid", "Caltech101", "NYUv2"]
