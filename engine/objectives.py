"""The objectives of DFAD (docs/original-release.md#the-method), what a new method replaces
(docs/extending.md): `objective(x, s, t)` of the generated images and the student's and teacher's
outputs (fp32) returns the loss to minimise, or named terms whose "loss" is minimised (every term
is logged)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dataset.image_label_pairs import IGNORE_INDEX

Terms = dict[str, torch.Tensor]
Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], "torch.Tensor | Terms"]



def student_l1(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Imitation: mean absolute error over every element of the raw logits
    (docs/original-release.md#l1-on-raw-logits)."""
    return F.l1_loss(s, t)


def generator_mae(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Classification: the generator maximises the student-teacher MAE."""
    return -F.l1_loss(s, t)


def generator_log_mae(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Segmentation: -log(MAE + 1)."""
    return -torch.log(F.l1_loss(s, t) + 1)


def as_terms(result: torch.Tensor | Terms) -> Terms:
    """An objective's result as named terms, "loss" among them."""
    if isinstance(result, torch.Tensor):
        return {"loss": result}
    if "loss" not in result:
        raise ValueError(f"an objective's dict needs a 'loss' term, got {sorted(result)}")
    return result


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               alpha: float = 1.0) -> torch.Tensor:
    """The segmentation teacher's loss: alpha * (1 - p_t)^gamma * CE per pixel, averaged over
    ALL pixels, unlabelled ones included (their loss is 0), as the original teachers were
    trained (docs/original-release.md#segmentation-teacher-training)."""
    ce = F.cross_entropy(logits, target.long(), reduction="none", ignore_index=IGNORE_INDEX)
    p_t = torch.exp(-ce)
    return (alpha * (1 - p_t) ** gamma * ce).mean()
