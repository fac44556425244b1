"""evaluate_segmentation: one confusion matrix over the whole test set, 255 ignored
(docs/original-release.md#metrics-transforms-and-plotting)."""
import math

import pytest
import torch
from torch import nn

from engine.evaluation import evaluate_segmentation


class FixedLogits(nn.Module):
    """Predicts class = the input's first channel (rounded), from 3 output channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = x[:, 0].round().long()
        return nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()


def test_metrics_over_all_batches_and_mode_restored():
    preds = [torch.tensor([[[0, 1], [1, 2]]]), torch.tensor([[[2, 2], [0, 0]]])]
    targets = [torch.tensor([[[0, 1], [2, 255]]]), torch.tensor([[[2, 2], [0, 1]]])]
    loader = [(p.unsqueeze(1).float().expand(-1, 3, -1, -1), t)
              for p, t in zip(preds, targets, strict=True)]
    model = FixedLogits().train()
    metrics = evaluate_segmentation(model, loader, torch.device("cpu"))
    assert model.training
    # 7 labelled pixels, 5 right. IoU: class 0 2/3, class 1 1/3, class 2 2/3.
    assert metrics["overall_acc"] == pytest.approx(5 / 7)
    assert metrics["mIoU"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    assert metrics["mean_acc"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert set(metrics) >= {"mIoU", "overall_acc", "mean_acc", "freqw_acc"}
    assert all(isinstance(v, float) and not math.isnan(v) for v in metrics.values())
