"""Evaluation of a network on the real test set: top-1 accuracy or segmentation mIoU."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dataset.image_label_pairs import IGNORE_INDEX
from utils.stream_metrics import StreamSegMetrics

# (model, test loader, device) -> metrics; the run's recipe names the one that selects the best.
Evaluate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode inside the block, each module's own mode back afterwards (also on an error):
    DFAD's BatchNorm behaviour depends on the mode
    (docs/original-release.md#batchnorm-side-effects)."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


@torch.no_grad()
def evaluate_classification(model: nn.Module, loader: DataLoader,
                            device: torch.device) -> dict[str, float]:
    """Top-1 accuracy over the whole test set and the mean cross-entropy
    (docs/original-release.md#the-training-loop)."""
    loss_sum, correct, total = 0.0, 0, 0
    with eval_mode(model):
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            logits = model(images)
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(dim=1) == targets).sum().item()
            total += targets.numel()
    return {"acc": correct / total, "loss": loss_sum / total, "correct": correct, "total": total}


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, loader: DataLoader,
                          device: torch.device) -> dict[str, float]:
    """One confusion matrix over every test pixel (unlabelled ones ignored), not a mean of
    per-batch scores (docs/original-release.md#metrics-transforms-and-plotting)."""
    metrics: StreamSegMetrics | None = None
    with eval_mode(model):
        for images, targets in loader:
            logits = model(images.to(device, non_blocking=True))
            if metrics is None:  # the class count is the model's: the loader does not know it
                metrics = StreamSegMetrics(logits.shape[1], ignore_index=IGNORE_INDEX)
            metrics.update(logits.argmax(dim=1).cpu(), targets)
    if metrics is None:
        raise ValueError("the test loader is empty")
    results = metrics.get_results()
    return {"mIoU": results["Mean IoU"], "overall_acc": results["Overall Acc"],
            "mean_acc": results["Mean Acc"], "freqw_acc": results["FreqW Acc"]}
