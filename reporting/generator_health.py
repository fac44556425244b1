"""Generator health (not in the original): is the generator collapsing, is the game stalling?

An adversarial data-free run can go bad silently: the generator collapses to a few classes or one
image, and the student stops learning long before the test metric says why. Every epoch the loop
measures the generator on one FIXED latent batch, drawn once from its own seeded
`torch.Generator` (epochs stay comparable, the training random stream never moves, a resumed run
keeps the batch), with all networks in eval mode and no gradient:

* `gen_class_hist`: share of samples (pixels, for segmentation) per teacher-predicted class;
* `gen_class_entropy`: entropy of that histogram / log C (1 = balanced, 0 = one class);
* `gen_confidence`: the teacher's mean max-softmax on the samples;
* `gen_diversity`: mean pairwise L2 distance between the samples / the same on real test images
  (about 1 = as diverse as real data, near 0 = collapsed);
* `gen_agreement`: share of samples (pixels) where student and teacher predict the same class.
"""
from __future__ import annotations

import argparse
import math

import torch
import torchvision.transforms.functional as TF
from torch import nn
from torch.utils.data import DataLoader

from utils.visualizer import warn

HISTOGRAM = "gen_class_hist"
SCALARS = ("gen_class_entropy", "gen_confidence", "gen_diversity", "gen_agreement")
SHORT_NAMES = {"gen_class_entropy": "entropy", "gen_confidence": "conf",
               "gen_diversity": "diversity", "gen_agreement": "agree"}
ENTROPY_THRESHOLD = 0.5
DIVERSITY_THRESHOLD = 0.1
PATIENCE = 3  # epochs in a row below a threshold before the warning


def fixed_latents(n: int, nz: int, seed: int) -> torch.Tensor:
    """N(0, I) latents from a private generator: the global RNG stream is not touched."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(n, nz, 1, 1, generator=rng)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over all pairs of distinct samples; exactly 0 for identical samples."""
    flat = x.detach().flatten(1).float()
    n = len(flat)
    if n < 2:
        raise ValueError("a pairwise distance needs at least 2 samples")
    # The direct formula: the matrix-product one leaves rounding noise where the distance is 0.
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.double().sum().item() / (n * (n - 1))


def real_images(loader: DataLoader, n: int) -> torch.Tensor:
    """The first `n` test images (fewer if the test set is smaller), on the CPU."""
    batches, count = [], 0
    # Iterating a DataLoader draws its seed from the global RNG: keep the run's stream as it was.
    with torch.random.fork_rng(devices=[]):
        for images, _ in loader:
            batches.append(images[:n - count])
            count += len(batches[-1])
            if count >= n:
                break
    return torch.cat(batches)


def class_histogram(logits: torch.Tensor) -> torch.Tensor:
    """Share of samples (pixels, for N x C x H x W) per predicted class; sums to 1."""
    pred = logits.argmax(dim=1)
    return torch.bincount(pred.flatten(), minlength=logits.shape[1]).double() / pred.numel()


def normalized_entropy(hist: torch.Tensor) -> float:
    """Entropy / log C: 1 for a uniform histogram, 0 for a single class."""
    present = hist[hist > 0]
    # max(0.0, ...) and not max(..., 0.0): a single class gives -0.0, printed "-0.000".
    return max(0.0, -(present * present.log()).sum().item() / math.log(len(hist)))


def class_statistics(teacher_logits: torch.Tensor, student_logits: torch.Tensor
                     ) -> dict[str, float | list[float]]:
    """Histogram, normalised entropy, confidence and agreement; per pixel for N x C x H x W."""
    confidence, pred = teacher_logits.float().softmax(dim=1).max(dim=1)
    hist = class_histogram(teacher_logits)
    agreement = (student_logits.argmax(dim=1) == pred).double().mean().item()
    return {HISTOGRAM: hist.tolist(), "gen_class_entropy": normalized_entropy(hist),
            "gen_confidence": confidence.double().mean().item(), "gen_agreement": agreement}


class GeneratorHealth:
    """The fixed latent batch, the real-data reference spread, and the collapse warnings.

    Its `state_dict` (the latents and the running streaks) goes into the resume state, so a
    resumed run measures the same batch and counts the same streaks.
    """

    def __init__(self, latents: torch.Tensor, real: torch.Tensor,
                 warn_entropy: float = ENTROPY_THRESHOLD,
                 warn_diversity: float = DIVERSITY_THRESHOLD) -> None:
        self.latents = latents.cpu()
        self._real: torch.Tensor | None = real.cpu()
        self._real_spread: float | None = None
        self.thresholds = {"gen_class_entropy": (warn_entropy, "--warn_entropy"),
                           "gen_diversity": (warn_diversity, "--warn_diversity")}
        self.streaks = dict.fromkeys(self.thresholds, 0)

    @classmethod
    def from_args(cls, args: argparse.Namespace, test_loader: DataLoader) -> GeneratorHealth | None:
        """None when `--health_batch 0`; the real reference is the first test images."""
        n = args.batch_size if args.health_batch is None else args.health_batch
        if n == 0:
            return None
        return cls(fixed_latents(n, args.nz, args.seed), real_images(test_loader, n),
                   args.warn_entropy, args.warn_diversity)

    def state_dict(self) -> dict[str, object]:
        return {"latents": self.latents, "streaks": dict(self.streaks)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.latents = state["latents"].cpu()
        self.streaks.update(state["streaks"])

    def _reference_spread(self, size: torch.Size) -> float | None:
        """Computed once, on real images cropped to the samples' size (the teachers train on
        such crops); None when fewer than 2 test images exist."""
        if self._real is not None:
            real = self._real
            self._real = None  # the images are not needed again
            if len(real) < 2:
                warn("the test set has fewer than 2 images: gen_diversity is not measured")
            else:
                if real.shape[-2:] != size:
                    real = TF.center_crop(real, list(size))
                self._real_spread = mean_pairwise_distance(real)
        return self._real_spread if self._real_spread else None  # 0: identical test images

    @torch.no_grad()
    def measure(self, teacher: nn.Module, student: nn.Module, generator: nn.Module,
                device: torch.device) -> dict[str, float | list[float] | None]:
        """The five numbers on the fixed batch; the caller puts the networks in eval mode."""
        if any(m.training for m in (teacher, student, generator)):
            raise RuntimeError("generator health is measured in eval mode (runtime/eval_mode.py): "
                               "train mode would move the BatchNorm statistics")
        fake = generator(self.latents.to(device)).float()
        stats = class_statistics(teacher(fake), student(fake))
        reference = self._reference_spread(fake.shape[-2:])
        diversity = None if reference is None else mean_pairwise_distance(fake) / reference
        return {HISTOGRAM: stats[HISTOGRAM], "gen_class_entropy": stats["gen_class_entropy"],
                "gen_confidence": stats["gen_confidence"], "gen_diversity": diversity,
                "gen_agreement": stats["gen_agreement"]}

    def watch(self, epoch: int, values: dict[str, object]) -> list[str]:
        """Warn (once per streak) when a number stays below its threshold for PATIENCE epochs;
        returns the warnings."""
        warnings = []
        for key, (threshold, flag) in self.thresholds.items():
            value = values.get(key)
            low = value is not None and value < threshold
            self.streaks[key] = self.streaks[key] + 1 if low else 0
            if self.streaks[key] == PATIENCE:
                warnings.append(f"generator collapse? {key} below {threshold} for {PATIENCE} "
                                f"epochs in a row (epoch {epoch}: {value:.4f}; {flag} sets the "
                                "threshold)")
        for message in warnings:
            warn(message)
        return warnings


def summary(values: dict[str, object]) -> str:
    """The scalars for the epoch line, e.g. `gen entropy=0.93 conf=0.88 diversity=0.71 ...`."""
    parts = [f"{SHORT_NAMES[k]}=" + ("n/a" if values[k] is None else f"{values[k]:.3f}")
             for k in SCALARS]
    return "gen " + " ".join(parts)
