"""StreamSegMetrics against a confusion matrix worked out by hand
(docs/original-release.md#metrics-transforms-and-plotting)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utils.stream_metrics import StreamSegMetrics


@pytest.fixture
def metrics() -> StreamSegMetrics:
    """Two updates over 4 classes: class 2 is predicted but never in GT, class 3 appears only
    as a prediction on an ignored (255) pixel, so it counts nowhere."""
    m = StreamSegMetrics(4)
    gt_a = np.array([[[0, 0, 1], [1, 1, 255]]])
    pred_a = np.array([[[0, 2, 1], [1, 0, 2]]])
    m.update(pred_a, gt_a)
    gt_b = torch.tensor([[[0, 1, 255, 1]]], dtype=torch.uint8)
    pred_b = torch.tensor([[[0, 2, 3, 1]]])
    m.update(pred_b, gt_b)
    return m


def test_confusion_matrix_rows_are_ground_truth(metrics: StreamSegMetrics) -> None:
    np.testing.assert_array_equal(metrics.confusion_matrix,
                                  [[2, 0, 1, 0], [1, 3, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_results_match_hand_computation(metrics: StreamSegMetrics) -> None:
    r = metrics.get_results()
    assert set(r) == {"Overall Acc", "Mean Acc", "FreqW Acc", "Mean IoU", "Class IoU"}
    assert r["Overall Acc"] == pytest.approx(5 / 8)
    assert r["Mean Acc"] == pytest.approx((2 / 3 + 3 / 5) / 2)  # classes 2, 3: no GT → NaN
    iou = r["Class IoU"]
    assert list(iou) == [0, 1, 2, 3]
    assert iou[0] == pytest.approx(2 / 4)
    assert iou[1] == pytest.approx(3 / 5)
    assert iou[2] == 0.0  # predicted, never in GT
    assert math.isnan(iou[3])  # in neither: excluded from the mean
    assert r["Mean IoU"] == pytest.approx((0.5 + 0.6 + 0.0) / 3)
    assert r["FreqW Acc"] == pytest.approx(3 / 8 * 0.5 + 5 / 8 * 0.6)


def test_labels_outside_the_class_range_are_ignored() -> None:
    m = StreamSegMetrics(2, ignore_index=255)
    m.update(np.array([0, 1, 1, 0]), np.array([0, 1, 7, 255]))
    np.testing.assert_array_equal(m.confusion_matrix, [[1, 0], [0, 1]])
    assert m.get_results()["Mean IoU"] == 1.0


def test_mismatched_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        StreamSegMetrics(3).update(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
