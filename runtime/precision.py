"""How a run computes: mixed precision (`--amp`), `--compile`, and `--original_numerics`.

Plain fp32 stays the default. Under `--amp` the forward passes run in autocast and the losses are
taken in fp32; fp16 scales both objectives (the student's and the generator's) with a GradScaler
each, so small gradients do not underflow. `--compile` hands the forward passes to torch.compile;
checkpoints are still written from the plain modules, so their keys never change.

By default every network runs channels_last, layers that offer a faster kernel for the same maths
(a `phase_kernels` attribute: the generator's upsample + 3x3 convolution) take it on the CPU, and
the optimizers are fused on CUDA: the same maths in other summation orders, so the floats differ
from the original release's by rounding. `--original_numerics` turns all of that off together:
NCHW, the plain kernels and the per-parameter optimizer loop, as the original did, and the
evaluations draw from the training stream what the original's did (its shuffled MNIST/CIFAR test
loaders with --batch_size, DFAD's latent batch per test batch: dataloader.py, engine/evaluation.py),
so a CPU run computes the original's floats bit for bit through every epoch, evaluation and LR
milestone (tests/test_speed.py, tests/test_exactness.py), more slowly. A resume keeps the run's
own optimizer implementation whatever the state file says (runtime/run_state.py).
"""
from __future__ import annotations

import argparse
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from runtime.errors import UserError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def add_speed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amp", choices=("off", *AMP_DTYPES), default="off",
                        help="mixed precision for the forward passes: bf16, or fp16 with loss "
                             "scaling (default: off, plain fp32 as the original)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks (the first iterations are slow while it "
                             "compiles; needs a C++ compiler on the CPU)")
    parser.add_argument("--cudnn_benchmark", action="store_true",
                        help="let cuDNN autotune its convolutions: faster on a GPU, but not "
                             "bit-reproducible (the default keeps the original's "
                             "cudnn.deterministic=True)")


def add_original_numerics_arg(parser: argparse.ArgumentParser) -> None:
    """`--original_numerics`, for the DFAD scripts, the baselines and both teacher scripts."""
    parser.add_argument("--original_numerics", action="store_true",
                        help="turn off the speed-ups that change rounding (channels_last, the "
                             "generator's phase kernels, fused optimizers) and evaluate as the "
                             "original did (MNIST/CIFAR test sets shuffled with --batch_size, "
                             "drawing from the training stream): a CPU run computes the "
                             "original release's floats bit for bit through every epoch, more "
                             "slowly (default: off)")


class Precision:
    """Autocast and loss scaling for one run; with `mode` off every call is plain fp32."""

    def __init__(self, mode: str | None, device: torch.device) -> None:
        self.mode = mode if mode in AMP_DTYPES else None
        self.device_type = device.type
        fp16 = self.mode == "fp16"
        # One scaler per objective: the student's and the generator's losses differ in scale.
        self.scaler_S = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=fp16)

    def autocast(self) -> AbstractContextManager[Any]:
        if self.mode is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=AMP_DTYPES[self.mode])

    @staticmethod
    def backward_step(loss: torch.Tensor, optimizer: Optimizer,
                      scaler: torch.amp.GradScaler) -> None:
        """backward + step; a disabled scaler makes this exactly `loss.backward(); step()`."""
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"scaler_S": self.scaler_S.state_dict(), "scaler_G": self.scaler_G.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scaler_S.load_state_dict(state["scaler_S"])
        self.scaler_G.load_state_dict(state["scaler_G"])


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """The compiled forward shares its parameters and buffers with `module`."""
    return torch.compile(module) if enabled else module

def place(args: argparse.Namespace, device: torch.device, *networks: nn.Module) -> None:
    """Move the networks to `device` in the run's memory layout."""
    if args.original_numerics and (args.amp != "off" or args.compile):
        raise UserError("--original_numerics computes the original's fp32 floats: it cannot be "
                        "combined with --amp or --compile (drop one)")
    # channels_last: faster convolutions on the CPU (docs/benchmarks.md); same maths.
    layout = torch.contiguous_format if args.original_numerics else torch.channels_last
    for net in networks:
        net.to(device, memory_format=layout)
        if args.original_numerics:
            for layer in net.modules():
                if hasattr(layer, "phase_kernels"):  # e.g. network/gan.py Upsample2xConv3x3
                    layer.phase_kernels = False


def optimizer_options(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Fused optimizers on CUDA (one kernel per step); the original's loop with the switch."""
    if args.original_numerics:
        return {"fused": False, "foreach": False}
    return {"fused": device.type == "cuda"}
