"""`--save_img` of the segmentation DFAD scripts (docs/original-release.md#script-defaults): the
test set as colour PNGs."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from engine.evaluation import eval_mode


@torch.no_grad()
def save_segmentation_images(
    student: nn.Module,
    teacher: nn.Module,
    loader: DataLoader,
    decode_target: Callable[[Any], np.ndarray],
    out_dir: str | Path,
    device: torch.device,
) -> int:
    """Write <idx>_img/_target/_pred/_teacher.png for every test image; returns the count.

    Lets a reader compare the student with its teacher by eye, which mIoU alone does not show.
    Images are numbered in test-loader order from 0, as in the original.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = 0
    with eval_mode(student, teacher):
        for images, targets in loader:
            images = images.to(device)
            preds = student(images).argmax(dim=1).cpu().numpy()
            teacher_preds = teacher(images).argmax(dim=1).cpu().numpy()
            # Inputs were normalized with (0.5, 0.5): (x + 1) / 2 is back in [0, 1].
            rgb = ((images.cpu() + 1) / 2).clamp(0, 1).mul(255).round().byte()
            rgb = rgb.permute(0, 2, 3, 1).numpy()
            for img, target, pred, teacher_pred in zip(rgb, targets.numpy(), preds,
                                                       teacher_preds, strict=True):
                Image.fromarray(img).save(out / f"{index}_img.png")
                Image.fromarray(decode_target(target)).save(out / f"{index}_target.png")
                Image.fromarray(decode_target(pred)).save(out / f"{index}_pred.png")
                Image.fromarray(decode_target(teacher_pred)).save(out / f"{index}_teacher.png")
                index += 1
    return index
