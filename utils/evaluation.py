"""Evaluation of a network on the real test set (classification; segmentation joins later)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def evaluate_classification(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> dict[str, float]:
    """Top-1 accuracy over the whole test set and the mean cross-entropy (SPEC §3.1)."""
    was_training = model.training
    model.eval()
    loss_sum, correct, total = 0.0, 0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        logits = model(images)
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
        correct += (logits.argmax(dim=1) == targets).sum().item()
        total += targets.numel()
    model.train(was_training)
    return {"acc": correct / total, "loss": loss_sum / total, "correct": correct, "total": total}
