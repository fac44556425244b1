"""Datasets in their real on-disk layouts (docs/original-release.md#datasets-and-on-disk-layouts):
what torchvision does not ship as-is."""
from dataset.caltech import Caltech101
from dataset.camvid import CamVid
from dataset.nyu import NYUv2

__all__ = ["CamVid", "Caltech101", "NYUv2"]
