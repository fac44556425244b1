"""What a run looks like: grids of generated samples, test inputs and segmentation maps.

The same panels go to visdom (windows of docs/original-release.md#script-defaults) and to PNG files,
so a run can be judged by eye without a server. Drawing never changes a model's train/eval mode or
its BN statistics.
"""
from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from engine.evaluation import eval_mode

Panels = dict[str, np.ndarray]  # window name -> C x H x W float grid in [0, 1]
MAX_IMAGES = 16  # per grid: enough to judge, small enough for visdom and the PNGs


def pack_images(images: np.ndarray, col: int | None = None) -> np.ndarray:
    """Tile an N x C x H x W batch into a C x (H*rows) x (W*col) grid, zero background."""
    n, c, h, w = images.shape
    col = col or math.ceil(math.sqrt(n))
    rows = math.ceil(n / col)
    grid = np.zeros((c, h * rows, w * col), dtype=images.dtype)
    for i, img in enumerate(images):
        r, k = divmod(i, col)
        grid[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = img
    return grid


def save_png(grid: np.ndarray, path: str | Path) -> None:
    """Write a C x H x W [0, 1] grid as a PNG, atomically (a viewer never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Denormalize:
    """Undo the test transform's Normalize for display (not in place, unlike the original's,
    docs/original-release.md#metrics-transforms-and-plotting)."""

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1)


# (x + 1) / 2, docs/original-release.md#script-defaults
MINUS_ONE_TO_ONE = Denormalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


# The first test batch of each loader, read once: the panels show the same images every epoch,
# and reading them anew would start (and abandon) a pass over the test set each time.
_FIRST_BATCHES: weakref.WeakKeyDictionary[DataLoader, tuple[torch.Tensor, torch.Tensor]] = (
    weakref.WeakKeyDictionary())


def _first_batch(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    if loader not in _FIRST_BATCHES:
        images, targets = next(iter(loader))
        _FIRST_BATCHES[loader] = images[:MAX_IMAGES].clone(), targets[:MAX_IMAGES].clone()
    return _FIRST_BATCHES[loader]


@torch.no_grad()
def _generate(generator: nn.Module, n: int, nz: int, device: torch.device) -> torch.Tensor:
    """A batch of fakes with G in eval mode (running BN stats), as the original's test()."""
    # A private RNG: drawing must not shift the run's random stream.
    rng = torch.Generator(device="cpu").manual_seed(0)
    z = torch.randn(n, nz, 1, 1, generator=rng).to(device)
    with eval_mode(generator):
        return generator(z)


def _grid(x: torch.Tensor) -> np.ndarray:
    return pack_images(x.detach().float().cpu().numpy())


@dataclass(frozen=True)
class ClassificationPanels:
    """`input` (the first test batch) and, for DFAD, `generated`
    (docs/original-release.md#script-defaults)."""

    to_unit: Callable[[torch.Tensor], torch.Tensor]
    nz: int = 0

    @torch.no_grad()
    def __call__(self, loader: DataLoader, device: torch.device, model: nn.Module,
                 teacher: nn.Module | None = None,
                 generator: nn.Module | None = None) -> Panels:
        images, _ = _first_batch(loader)
        panels = {"input": _grid(self.to_unit(images))}
        if generator is not None:
            fake = _generate(generator, len(images), self.nz, device).cpu()
            panels["generated"] = _grid(self.to_unit(fake))
        return panels


@dataclass(frozen=True)
class SegmentationPanels:
    """`input`, `target`, `pred` and, for DFAD, `generated`, `teacher`, `teacher-onfake`,
    `student-onfake` (docs/original-release.md#script-defaults), label maps coloured by the
    dataset's palette."""

    decode_target: Callable[[Any], np.ndarray]
    to_unit: Callable[[torch.Tensor], torch.Tensor] = MINUS_ONE_TO_ONE
    nz: int = 0

    def _colour(self, labels: torch.Tensor) -> np.ndarray:
        rgb = np.stack([self.decode_target(lbl) for lbl in labels.cpu().numpy()])
        return pack_images(rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255)

    @torch.no_grad()
    def __call__(self, loader: DataLoader, device: torch.device, model: nn.Module,
                 teacher: nn.Module | None = None,
                 generator: nn.Module | None = None) -> Panels:
        images, targets = _first_batch(loader)
        with eval_mode(*(m for m in (model, teacher) if m is not None)):
            real = images.to(device)
            panels = {"input": _grid(self.to_unit(images)), "target": self._colour(targets),
                      "pred": self._colour(model(real).argmax(1))}
            if teacher is not None:
                panels["teacher"] = self._colour(teacher(real).argmax(1))
            if generator is not None:
                fake = _generate(generator, len(images), self.nz, device)
                panels["generated"] = _grid(self.to_unit(fake.cpu()))
                if teacher is not None:
                    panels["teacher-onfake"] = self._colour(teacher(fake).argmax(1))
                panels["student-onfake"] = self._colour(model(fake).argmax(1))
        return panels
MNIST_TO_UNIT = Denormalize((0.1307,), (0.3081,))  # dataloader.py's MNIST Normalize
