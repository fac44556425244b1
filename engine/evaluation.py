"""Evaluation of a network on the real test set: top-1 accuracy or segmentation mIoU."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from runtime.eval_mode import eval_mode
from utils.stream_metrics import StreamSegMetrics

# (model, test loader, device) -> metrics; the run's recipe names the one that selects the best.
Evaluate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


class OriginalTestDraws:
    """The test loader as the original's DFAD test() read it: besides the loader's own seeds,
    one latent batch drawn from the run's stream per test batch (for its "generated" panel), so
    that under --original_numerics the training after an evaluation draws what the original's
    did (docs/original-release.md#rng-across-evaluations). `nz` None: no latents (a teacher).

    Only the iteration matters to the evaluations, which read `for images, targets in loader`.
    """

    def __init__(self, loader: DataLoader, nz: int | None, device: torch.device) -> None:
        self.loader, self.nz, self.device = loader, nz, device

    def __iter__(self) -> Iterator[Any]:
        for images, targets in self.loader:
            self._draw(len(images))
            yield images, targets

    def skip(self) -> None:
        """Draw what a pass draws without reading a batch: ranks that do not evaluate keep the
        stream of the one that does."""
        for indices in self.loader.batch_sampler:  # the loader's seed draws happen here
            self._draw(len(indices))

    def _draw(self, n: int) -> None:
        if self.nz is not None:
            torch.randn(n, self.nz, 1, 1, device=self.device)


@torch.no_grad()
def evaluate_classification(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> dict[str, float]:
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
def evaluate_segmentation(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> dict[str, float]:
    """Metrics of one confusion matrix over every test pixel (label 255 ignored), not a mean of
    per-batch scores (docs/original-release.md#the-training-loop, #metrics-transforms-and-plotting);
    'mIoU' selects the best student."""
    metrics: StreamSegMetrics | None = None
    with eval_mode(model):
        for images, targets in loader:
            logits = model(images.to(device, non_blocking=True))
            if metrics is None:  # the class count is the model's: the loader does not know it
                metrics = StreamSegMetrics(logits.shape[1], ignore_index=255)
            metrics.update(logits.argmax(dim=1).cpu(), targets)
    if metrics is None:
        raise ValueError("the test loader is empty")
    results = metrics.get_results()
    return {"mIoU": results["Mean IoU"], "overall_acc": results["Overall Acc"],
            "mean_acc": results["Mean Acc"], "freqw_acc": results["FreqW Acc"]}
