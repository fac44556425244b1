"""Streaming confusion-matrix metrics for semantic segmentation
(docs/original-release.md#metrics-transforms-and-plotting)."""
from __future__ import annotations

from typing import Any

import numpy as np

from dataset.image_label_pairs import IGNORE_INDEX


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN (without a warning) when there are none."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


class StreamSegMetrics:
    """One confusion matrix over a whole test set (rows ground truth, columns predictions), so the
    metrics cover all pixels, not a mean over batches. Labels outside [0, n) or equal to
    `ignore_index` are skipped; predictions must lie in [0, n)."""

    def __init__(self, n_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.confusion_matrix = np.zeros((n_classes, n_classes), dtype=np.float64)

    def update(self, preds: Any, targets: Any) -> None:
        """`preds` first, then `targets` (the original's order): CPU tensors or arrays."""
        pred, true = np.asarray(preds, dtype=np.int64), np.asarray(targets, dtype=np.int64)
        if pred.shape != true.shape:
            raise ValueError(f"preds {pred.shape} and targets {true.shape} differ in shape")
        n = self.n_classes
        mask = (true >= 0) & (true < n) & (true != self.ignore_index)
        counts = np.bincount(n * true[mask] + pred[mask], minlength=n * n)
        self.confusion_matrix += counts.reshape(n, n)

    def get_results(self) -> dict[str, Any]:
        """Classes with no ground truth and no prediction are NaN and left out of the means; a
        class predicted but absent from the ground truth has IoU 0."""
        hist = self.confusion_matrix
        diag, gt_per_class = np.diag(hist), hist.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            class_acc = diag / gt_per_class
            iou = diag / (gt_per_class + hist.sum(axis=0) - diag)
            freq = gt_per_class / hist.sum()
            overall_acc = diag.sum() / hist.sum()
        present = freq > 0
        return {
            "Overall Acc": float(overall_acc),
            "Mean Acc": _nanmean(class_acc),
            "FreqW Acc": float((freq[present] * iou[present]).sum()),
            "Mean IoU": _nanmean(iou),
            "Class IoU": {i: float(v) for i, v in enumerate(iou)},
        }
