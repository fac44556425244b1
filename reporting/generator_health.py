"""Generator health (not in the original): is the generator collapsing, is the game stalling?

Every epoch, on one FIXED latent batch (seeded apart from the training stream, kept by a resume):
`gen_class_hist` (share of samples, or pixels, per teacher class), `gen_class_entropy` (its
entropy / log C: 1 balanced, 0 one class), `gen_confidence` (the teacher's mean max-softmax),
`gen_diversity` (mean pairwise L2 distance / the same on real test images: near 0 = collapsed),
`gen_agreement` (share of samples, or pixels, where student and teacher agree).
"""
from __future__ import annotations

import argparse
import itertools
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
    return torch.randn(n, nz, 1, 1, generator=torch.Generator().manual_seed(seed))


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over all pairs of distinct samples; exactly 0 for identical samples (or
    a single one)."""
    flat, n = x.detach().flatten(1).float(), len(x)
    # The direct formula: the matrix-product one leaves rounding noise where the distance is 0.
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.double().sum().item() / max(n * (n - 1), 1)


def real_images(loader: DataLoader, n: int) -> torch.Tensor:
    """The first `n` test images (fewer if the test set is smaller), on the CPU."""
    # Iterating a DataLoader draws its seed from the global RNG: keep the run's stream as it was.
    with torch.random.fork_rng(devices=[]):
        batches = itertools.islice(loader, math.ceil(n / loader.batch_size))
        return torch.cat([images for images, _ in batches])[:n]


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
    """The fixed latent batch, the real-data reference spread, and the collapse warnings. Its
    `state_dict` (latents, streaks) goes into the resume state."""

    def __init__(self, latents: torch.Tensor, real: torch.Tensor,
                 warn_entropy: float = ENTROPY_THRESHOLD,
                 warn_diversity: float = DIVERSITY_THRESHOLD) -> None:
        self.latents = latents.cpu()
        self.real = real.cpu()
        self.spread: float | None = None  # of the real images, at the first samples' size
        self.thresholds = {"gen_class_entropy": (warn_entropy, "--warn_entropy"),
                           "gen_diversity": (warn_diversity, "--warn_diversity")}
        self.streaks = dict.fromkeys(self.thresholds, 0)

    @classmethod
    def from_args(cls, args: argparse.Namespace, test_loader: DataLoader) -> GeneratorHealth | None:
        """None when `--health_batch 0`; the real reference is the first test images."""
        n = args.batch_size if args.health_batch is None else args.health_batch
        return cls(fixed_latents(n, args.nz, args.seed), real_images(test_loader, n),
                   args.warn_entropy, args.warn_diversity) if n else None

    def state_dict(self) -> dict[str, object]:
        return {"latents": self.latents, "streaks": dict(self.streaks)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.latents = state["latents"].cpu()
        self.streaks.update(state["streaks"])

    @torch.no_grad()
    def measure(self, teacher: nn.Module, student: nn.Module, generator: nn.Module,
                device: torch.device) -> dict[str, float | list[float] | None]:
        """The five numbers on the fixed batch; the caller puts the networks in eval mode (train
        mode would move the BatchNorm statistics)."""
        fake = generator(self.latents.to(device)).float()
        if self.spread is None:  # cropped to the samples' size, as the teachers train
            self.spread = mean_pairwise_distance(TF.center_crop(self.real, list(fake.shape[-2:])))
        # n/a when the real images are all alike (or a single one)
        diversity = mean_pairwise_distance(fake) / self.spread if self.spread else None
        return {**class_statistics(teacher(fake), student(fake)), "gen_diversity": diversity}

    def watch(self, epoch: int, values: dict[str, object]) -> list[str]:
        """Warn once when a number stays below its threshold PATIENCE epochs in a row."""
        warnings = []
        for key, (threshold, flag) in self.thresholds.items():
            value = values.get(key)
            low = value is not None and value < threshold
            self.streaks[key] = self.streaks[key] + 1 if low else 0
            if self.streaks[key] == PATIENCE:
                warnings.append(f"generator collapse? {key} below {threshold} for {PATIENCE} "
                                f"epochs in a row (epoch {epoch}: {value:.4f}; {flag} sets the "
                                "threshold)")
                warn(warnings[-1])
        return warnings


def summary(values: dict[str, object]) -> str:
    """The scalars for the epoch line, e.g. `gen entropy=0.93 conf=0.88 diversity=0.71 ...`."""
    shown = {k: "n/a" if values[k] is None else f"{values[k]:.3f}" for k in SCALARS}
    return "gen " + " ".join(f"{SHORT_NAMES[k]}={v}" for k, v in shown.items())
