"""`--original_numerics`: the speed-ups that change the last bits, switched off together.

By default the engine runs every network channels_last, the generator's upsample + 3x3
convolutions as 2x2 phase kernels on the CPU (network/gan.py Upsample2xConv3x3) and fused
optimizers on CUDA: the same maths in other summation orders, so the floats differ from the
original release's by rounding. With the switch the networks stay NCHW, the generator runs the
plain upsample + convolution and the optimizers the plain per-parameter loop, as the original
did: a CPU run then computes the original's floats bit for bit (tests/test_speed.py), more
slowly.
"""
from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from network.gan import Upsample2xConv3x3
from utils.errors import UserError


def place(args: argparse.Namespace, device: torch.device, *networks: nn.Module) -> None:
    """Move the networks to `device` in the run's memory layout."""
    if args.original_numerics and (args.amp != "off" or args.compile):
        raise UserError("--original_numerics computes the original's fp32 floats: it cannot be "
                        "combined with --amp or --compile (drop one)")
    # channels_last runs the convolutions about 1.5-2x faster on CPU; same maths.
    layout = torch.contiguous_format if args.original_numerics else torch.channels_last
    for net in networks:
        net.to(device, memory_format=layout)
        if args.original_numerics:
            for layer in net.modules():
                if isinstance(layer, Upsample2xConv3x3):
                    layer.phase_kernels = False


def optimizer_options(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Fused optimizers on CUDA (one kernel per step); the original's loop with the switch."""
    if args.original_numerics:
        return {"fused": False, "foreach": False}
    return {"fused": device.type == "cuda"}
