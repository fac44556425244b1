"""Opt-in speed modes that keep the algorithm: mixed precision (`--amp`) and `--compile`.

Plain fp32 stays the default. Under `--amp` the forward passes run in autocast and the losses are
taken in fp32; fp16 scales both objectives (the student's and the generator's) with a GradScaler
each, so small gradients do not underflow. `--compile` hands the forward passes to torch.compile;
checkpoints are still written from the plain modules, so their keys never change.
"""
from __future__ import annotations

import argparse
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

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
