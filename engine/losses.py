"""Losses of the segmentation teacher (docs/original-release.md#segmentation-teacher-training);
DFAD's own L1 losses live in engine/dfad.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float = 1.0,
    ignore_index: int = 255,
) -> torch.Tensor:
    """alpha * (1 - p_t)^gamma * CE per pixel, which down-weights the easy, frequent pixels.

    docs/original-release.md#segmentation-teacher-training, #teacher-training-recipes: the mean runs
    over ALL pixels, ignored ones included (their loss is 0), not over the labelled ones only; this
    scales the loss and is kept to match the original teachers.
    """
    ce = F.cross_entropy(logits, target.long(), reduction="none", ignore_index=ignore_index)
    p_t = torch.exp(-ce)
    return (alpha * (1 - p_t) ** gamma * ce).mean()
