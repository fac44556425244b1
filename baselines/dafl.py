"""DAFL (Chen et al., ICCV 2019) with its authors' MNIST recipe, as one joint step of the loop.

The generator is trained to make the teacher confident (one-hot loss), to use all classes evenly
(information entropy of the batch-mean prediction, in log base 10 as the authors' code) and to
excite the teacher's features (activation loss); the student imitates the teacher on the same
batch with a KL divergence. The recipe and its sources: docs/table2-mnist.md.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Adam, Optimizer

from network import gan
from runtime.precision import Precision, optimizer_options

WEIGHT_ONE_HOT = 1.0
WEIGHT_ENTROPY = 5.0
WEIGHT_ACTIVATION = 0.1
INNER_BN_EPS = 0.8  # the two inner BatchNorms of the authors' generator (a public-GAN quirk)


def dafl_generator(nz: int = 100, nc: int = 1, img_size: int = 32) -> gan.GeneratorA:
    """GeneratorA's layers with eps 0.8 in the BatchNorms after the 128->128 and 128->64 convs."""
    generator = gan.GeneratorA(nz=nz, nc=nc, img_size=img_size)
    generator.conv_blocks1[1].eps = INNER_BN_EPS
    generator.conv_blocks2[1].eps = INNER_BN_EPS
    return generator


def dafl_losses(t: torch.Tensor, feature: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
    """The generator's three terms and the student's KD term, from the teacher's logits `t` and
    feature, and the student's logits `s` on the detached images."""
    one_hot = F.cross_entropy(t, t.argmax(dim=1))
    mean_p = F.softmax(t, dim=1).mean(dim=0)
    entropy = (mean_p * torch.log10(mean_p)).sum()  # minimising it balances the classes
    activation = -feature.abs().mean()
    # KL(softmax(t) || softmax(s)) summed over classes, averaged over the batch, temperature 1
    kd = F.kl_div(F.log_softmax(s, dim=1), F.softmax(t.detach(), dim=1), reduction="batchmean")
    loss_G = WEIGHT_ONE_HOT * one_hot + WEIGHT_ENTROPY * entropy + WEIGHT_ACTIVATION * activation
    return {"loss_G": loss_G, "loss_S": kd, "one_hot": one_hot, "entropy": entropy,
            "activation": activation}


def dafl_step(teacher: nn.Module, student: nn.Module, generator: nn.Module,
              optimizer_S: Optimizer, optimizer_G: Optimizer, z: torch.Tensor,
              precision: Precision) -> dict[str, torch.Tensor]:
    """One joint step: one backward of the summed objectives, then both optimizers step.

    The teacher is frozen: the gradient passes through it to the generator only.
    """
    optimizer_G.zero_grad(set_to_none=True)
    optimizer_S.zero_grad(set_to_none=True)
    with precision.autocast():
        x = generator(z)
        t, feature = teacher(x, out_feature=True)
        s = student(x.detach())
    losses = dafl_losses(t.float(), feature.float(), s.float())
    scaler = precision.scaler_S  # one objective, one scale
    scaler.scale(losses["loss_G"] + losses["loss_S"]).backward()
    scaler.step(optimizer_G)
    scaler.step(optimizer_S)
    scaler.update()
    return {k: v.detach() for k, v in losses.items()}


def dafl_optimizers(student: nn.Module, generator: nn.Module, args: argparse.Namespace,
                    device: torch.device) -> tuple[Optimizer, Optimizer]:
    """Adam for both, default betas, no weight decay (the authors' MNIST settings)."""
    options = optimizer_options(args, device)
    return (Adam(student.parameters(), lr=args.lr_S, **options),
            Adam(generator.parameters(), lr=args.lr_G, **options))
