"""The original release's DFAD iteration, written as plainly as it was
(docs/original-release.md#the-method, #the-training-loop).

None of this repository's speed-ups: NCHW as the networks come, the teacher's weights taking
gradients, the student step's generator pass recording autograd and detached afterwards, the
student collecting gradients it never applies in the generator step. benchmarks/benchmark.py
times it as the baseline ("reference"), and tests/test_speed.py holds the engine to it: within
rounding by default, bit for bit under --original_numerics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from engine.dfad import STUDENT_STEPS_PER_ITERATION, GeneratorLoss


def original_iteration(teacher: nn.Module, student: nn.Module, generator: nn.Module,
                       optimizer_S: Optimizer, optimizer_G: Optimizer, batch_size: int, nz: int,
                       generator_loss: GeneratorLoss, device: torch.device) -> None:
    """5 student steps, then 1 generator step, in the original's order of operations."""
    for _ in range(STUDENT_STEPS_PER_ITERATION):
        z = torch.randn(batch_size, nz, 1, 1, device=device)
        optimizer_S.zero_grad()
        fake = generator(z).detach()
        t_logit = teacher(fake)
        s_logit = student(fake)
        loss_S = F.l1_loss(s_logit, t_logit.detach())
        loss_S.backward()
        optimizer_S.step()
    z = torch.randn(batch_size, nz, 1, 1, device=device)
    optimizer_G.zero_grad()
    generator.train()
    fake = generator(z)
    t_logit = teacher(fake)
    s_logit = student(fake)
    loss_G = generator_loss(s_logit, t_logit)
    loss_G.backward()
    optimizer_G.step()
