"""`--original_numerics`: the original release's floats, bit for bit, for side-by-side checks.

Everything that makes a run differ from the original by rounding or by random draws is decided
here or in runtime/speed.py (which does nothing under this flag): NCHW layouts, the plain
upsample + convolution, unfused optimizers, and evaluations that draw from the training stream
what the original's test() drew (docs/original-release.md#rng-across-evaluations): its MNIST and
CIFAR test loaders shuffled with --batch_size, and DFAD's latent batch per test batch.
benchmarks/original_iteration.py is the original, written plainly;
tests/test_original_numerics.py holds whole runs to it.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch.utils.data import DataLoader

from runtime.errors import UserError


def add_original_numerics_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--original_numerics", action="store_true",
                        help="the original release's floats bit for bit on the CPU, more slowly: "
                             "no speed-ups that change rounding, and evaluations that draw from "
                             "the training stream as the original's did (default: off)")


def check(args: argparse.Namespace) -> None:
    if not args.original_numerics:
        return
    if args.amp != "off" or args.compile:
        raise UserError("--original_numerics computes the original's fp32 floats: it cannot be "
                        "combined with --amp or --compile (drop one)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--original_numerics reproduces the original's single-process floats: "
                        "run it with python, not torchrun")


def shuffled_test_loader(args: argparse.Namespace, shuffled_in_original: bool) -> bool:
    """Whether the test loader is the original's: shuffled, with --batch_size."""
    return args.original_numerics and shuffled_in_original


class OriginalTestDraws:
    """The test loader as the original's DFAD test() read it: one latent batch drawn from the
    run's stream per test batch, for its "generated" panel. `nz` None: none (a teacher)."""

    def __init__(self, loader: DataLoader, nz: int | None, device: torch.device) -> None:
        self.loader, self.nz, self.device = loader, nz, device

    def __iter__(self) -> Iterator[Any]:
        for images, targets in self.loader:
            if self.nz is not None:
                torch.randn(len(images), self.nz, 1, 1, device=self.device)
            yield images, targets


def test_batches(args: argparse.Namespace, loader: DataLoader, nz: int | None,
                 device: torch.device) -> tuple[Any, AbstractContextManager[Any]]:
    """What an evaluation iterates and the RNG context it runs in. By default a forked RNG:
    evaluating leaves the training stream alone. Under the flag: the original's draws."""
    if args.original_numerics:
        return OriginalTestDraws(loader, nz, device), torch.random.fork_rng(devices=[],
                                                                            enabled=False)
    return loader, torch.random.fork_rng(devices=[])
