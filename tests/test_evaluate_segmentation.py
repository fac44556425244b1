"""Evaluation (engine/evaluation.py): metrics over the whole test set, not means of per-batch
scores; segmentation over one confusion matrix with 255 ignored
(docs/original-release.md#metrics-transforms-and-plotting); each module's mode restored."""
import math

import pytest
import torch
from torch import nn

from engine.evaluation import eval_mode, evaluate_classification, evaluate_segmentation

CPU = torch.device("cpu")


class FixedLogits(nn.Module):
    """Predicts class = the input's first channel (rounded), from 3 output channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = x[:, 0].round().long()
        logits = nn.functional.one_hot(pred, 3).float()
        return logits if x.dim() == 2 else logits.permute(0, 3, 1, 2)


def test_segmentation_metrics_over_all_batches_and_the_mode_restored():
    preds = [torch.tensor([[[0, 1], [1, 2]]]), torch.tensor([[[2, 2], [0, 0]]])]
    targets = [torch.tensor([[[0, 1], [2, 255]]]), torch.tensor([[[2, 2], [0, 1]]])]
    loader = [(p.unsqueeze(1).float().expand(-1, 3, -1, -1), t)
              for p, t in zip(preds, targets, strict=True)]
    model = FixedLogits().train()
    metrics = evaluate_segmentation(model, loader, CPU)
    assert model.training
    # 7 labelled pixels, 5 right. IoU: class 0 2/3, class 1 1/3, class 2 2/3.
    assert metrics["overall_acc"] == pytest.approx(5 / 7)
    assert metrics["mIoU"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    assert metrics["mean_acc"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert set(metrics) == {"mIoU", "overall_acc", "mean_acc", "freqw_acc"}
    assert all(isinstance(v, float) and not math.isnan(v) for v in metrics.values())


def test_classification_accuracy_is_over_every_test_image():
    # 3 of 3 right, then 0 of 1: 3/4 (a mean of batch accuracies would say 1/2)
    loader = [(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([0, 1, 2])),
              (torch.tensor([[2.0]]), torch.tensor([0]))]
    metrics = evaluate_classification(FixedLogits(), loader, CPU)
    assert metrics["acc"] == 0.75 and (metrics["correct"], metrics["total"]) == (3, 4)


def test_eval_mode_gives_each_module_its_own_mode_back_after_an_error():
    training, evaluating = nn.BatchNorm1d(1).train(), nn.BatchNorm1d(1).eval()
    with pytest.raises(KeyError), eval_mode(training, evaluating):
        assert not training.training and not evaluating.training
        raise KeyError
    assert training.training and not evaluating.training
