"""The objectives (engine/objectives.py): L1 on raw logits, the generators' -MAE and -log(MAE + 1)
(docs/original-release.md#the-method), and the segmentation teacher's focal loss
(docs/original-release.md#segmentation-teacher-training)."""
import pytest
import torch
import torch.nn.functional as F

from engine.objectives import (
    IGNORE_INDEX,
    as_terms,
    focal_loss,
    generator_log_mae,
    generator_mae,
    student_l1,
)


def test_dfad_objectives_on_known_values():
    x, s, t = torch.zeros(2, 1, 4, 4), torch.zeros(2, 3), torch.tensor([[2.0, -2, 2]] * 2)
    assert student_l1(x, s, t).item() == pytest.approx(2.0)  # over every element
    assert generator_mae(x, s, t).item() == pytest.approx(-2.0)
    assert generator_log_mae(x, s, t).item() == pytest.approx(-torch.log(torch.tensor(3.0)))


def test_an_objectives_terms_need_a_loss():
    loss = torch.tensor(1.0)
    assert as_terms(loss) == {"loss": loss}
    with pytest.raises(ValueError, match="needs a 'loss' term"):
        as_terms({"l1": loss})


def test_focal_loss_matches_the_formula_and_averages_over_ignored_pixels_too():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    target = torch.randint(0, 4, (2, 3, 5))
    target[0, 0, :] = IGNORE_INDEX
    log_p = F.log_softmax(logits, dim=1)
    labelled = target != IGNORE_INDEX
    log_p_t = log_p.gather(1, target.clamp(max=3).unsqueeze(1)).squeeze(1)
    per_pixel = -(1 - log_p_t.exp()) ** 2 * log_p_t
    expected = (per_pixel * labelled).sum() / target.numel()  # ALL pixels in the denominator
    assert torch.allclose(focal_loss(logits, target), expected, atol=1e-6)
    assert not torch.allclose(focal_loss(logits, target), per_pixel[labelled].mean())


def test_focal_loss_takes_uint8_labels_and_gamma_zero_is_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4), dtype=torch.uint8)
    assert torch.allclose(focal_loss(logits, target, gamma=0),
                          F.cross_entropy(logits, target.long()), atol=1e-6)
