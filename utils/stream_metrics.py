"""Streaming confusion-matrix metrics for semantic segmentation
(docs/original-release.md#metrics-transforms-and-plotting)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN (without a warning) when there are none."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


class StreamSegMetrics:
    """Accumulates a confusion matrix over a test set so metrics cover all pixels, not batches.

    Rows are ground truth, columns predictions. Pixels whose label is outside [0, n) or equal to
    `ignore_index` are skipped. Predictions are not checked: they must lie in [0, n)
    (docs/original-release.md#metrics-transforms-and-plotting).
    """

    def __init__(self, n_classes: int, ignore_index: int = 255) -> None:
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.confusion_matrix = np.zeros((n_classes, n_classes), dtype=np.float64)

    def update(self, preds: Any, targets: Any) -> None:
        """Add a batch; `preds` first, then `targets` (the original's argument order)."""
        pred, true = _to_numpy(preds), _to_numpy(targets)
        if pred.shape != true.shape:
            raise ValueError(f"preds {pred.shape} and targets {true.shape} differ in shape")
        pred = pred.reshape(-1).astype(np.int64)
        true = true.reshape(-1).astype(np.int64)
        n = self.n_classes
        mask = (true >= 0) & (true < n) & (true != self.ignore_index)
        counts = np.bincount(n * true[mask] + pred[mask], minlength=n * n)
        self.confusion_matrix += counts.reshape(n, n)

    def get_results(self) -> dict[str, Any]:
        """Overall/mean/frequency-weighted accuracy and IoU; classes with no GT and no prediction
        are NaN and left out of the means, classes predicted but absent from GT count as IoU 0."""
        hist = self.confusion_matrix
        diag = np.diag(hist)
        gt_per_class = hist.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            overall_acc = diag.sum() / hist.sum()
            class_acc = diag / gt_per_class
            iou = diag / (gt_per_class + hist.sum(axis=0) - diag)
            freq = gt_per_class / hist.sum()
        present = freq > 0
        return {
            "Overall Acc": float(overall_acc),
            "Mean Acc": _nanmean(class_acc),
            "FreqW Acc": float((freq[present] * iou[present]).sum()),
            "Mean IoU": _nanmean(iou),
            "Class IoU": {i: float(v) for i, v in enumerate(iou)},
        }

    def reset(self) -> None:
        self.confusion_matrix[:] = 0

    @staticmethod
    def to_str(results: dict[str, Any]) -> str:
        """Multi-line summary: the scalar metrics, then one line per class IoU."""
        lines = [f"{k}: {v:f}" for k, v in results.items() if k != "Class IoU"]
        lines += [f"  class {c}: {v:f}" for c, v in results["Class IoU"].items()]
        return "\n".join(lines)
