"""Focal loss of the segmentation teacher
(docs/original-release.md#segmentation-teacher-training, #teacher-training-recipes)."""
import torch
import torch.nn.functional as F

from engine.losses import focal_loss


def test_focal_loss_matches_the_formula_and_averages_over_ignored_pixels_too():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    target = torch.randint(0, 4, (2, 3, 5))
    target[0, 0, :] = 255
    log_p = F.log_softmax(logits, dim=1)
    labelled = target != 255
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
