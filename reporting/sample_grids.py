"""What a run looks like: grids of generated samples, test inputs and segmentation maps, for visdom
(windows of docs/original-release.md#script-defaults) and PNG files alike, and `--save_img`'s
per-image PNGs. Drawing never changes a model's train/eval mode or its BN statistics.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision.utils import make_grid

from engine.evaluation import eval_mode
from reporting.generator_health import fixed_latents
from runtime.files import write_all_atomic

Panels = dict[str, np.ndarray]  # window name -> C x H x W float grid in [0, 1]
MAX_IMAGES = 16  # per grid: enough to judge, small enough for visdom and the PNGs


def save_png(grid: np.ndarray, path: str | Path) -> None:
    """Write a C x H x W [0, 1] grid as a PNG, atomically (a viewer never sees half a file)."""
    pixels = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    write_image(Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels), path)


def write_image(image: Image.Image, path: str | Path) -> None:
    write_all_atomic([(path, lambda f: image.save(f, format="PNG"))])


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


MINUS_ONE_TO_ONE = Denormalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # (x + 1) / 2, the original's
MNIST_TO_UNIT = Denormalize((0.1307,), (0.3081,))  # dataloader.py's MNIST Normalize


@functools.lru_cache(maxsize=1)
def _first_batch(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Read once: the panels show the same images every epoch, and reading them anew would start
    (and abandon) a pass over the test set each time."""
    images, targets = next(iter(loader))
    return images[:MAX_IMAGES].clone(), targets[:MAX_IMAGES].clone()


@torch.no_grad()
def _generate(generator: nn.Module, n: int, nz: int, device: torch.device) -> torch.Tensor:
    """Fakes from fixed latents with G in eval mode (running BN stats), as the original's test()."""
    with eval_mode(generator):
        return generator(fixed_latents(n, nz, seed=0).to(device))


def _grid(x: torch.Tensor) -> np.ndarray:
    """Tile an N x C x H x W [0, 1] batch into one C x H' x W' grid, ceil(sqrt(N)) to a row."""
    x = x.detach().float().cpu()
    return make_grid(x, nrow=math.ceil(math.sqrt(len(x))), padding=0)[:x.shape[1]].numpy()


@dataclass(frozen=True)
class ClassificationPanels:
    """`input` (the first test batch) and, for DFAD, `generated`
    (docs/original-release.md#script-defaults)."""

    to_unit: Callable[[torch.Tensor], torch.Tensor]
    nz: int = 0

    def __call__(self, loader: DataLoader, device: torch.device, model: nn.Module,
                 teacher: nn.Module | None = None,
                 generator: nn.Module | None = None) -> Panels:
        images, _ = _first_batch(loader)
        panels = {"input": _grid(self.to_unit(images))}
        if generator is not None:
            fake = _generate(generator, len(images), self.nz, device)
            panels["generated"] = _grid(self.to_unit(fake.cpu()))
        return panels


@dataclass(frozen=True)
class SegmentationPanels:
    """`input`, `target`, `pred` and, for DFAD, `generated`, `teacher`, `teacher-onfake`,
    `student-onfake` (docs/original-release.md#script-defaults), in the dataset's palette."""

    decode_target: Callable[[Any], np.ndarray]
    to_unit: Callable[[torch.Tensor], torch.Tensor] = MINUS_ONE_TO_ONE
    nz: int = 0

    def _colour(self, labels: torch.Tensor) -> np.ndarray:
        rgb = np.stack([self.decode_target(lbl) for lbl in labels.cpu().numpy()])
        return _grid(torch.from_numpy(rgb).permute(0, 3, 1, 2) / 255)

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


@torch.no_grad()
def save_segmentation_images(student: nn.Module, teacher: nn.Module, loader: DataLoader,
                             decode_target: Callable[[Any], np.ndarray], out_dir: str | Path,
                             device: torch.device) -> int:
    """`--save_img` (docs/original-release.md#script-defaults): <idx>_img/_target/_pred/_teacher.png
    for every test image, numbered in loader order from 0 as the original; returns the count."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = 0
    with eval_mode(student, teacher):
        for images, targets in loader:
            x = images.to(device)
            maps = {"target": targets, "pred": student(x).argmax(1),
                    "teacher": teacher(x).argmax(1)}
            rgb = MINUS_ONE_TO_ONE(images).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
            for i, img in enumerate(rgb):
                write_image(Image.fromarray(img), out / f"{index}_img.png")
                for name, labels in maps.items():
                    colour = decode_target(labels[i].cpu().numpy())
                    write_image(Image.fromarray(colour), out / f"{index}_{name}.png")
                index += 1
    return index
