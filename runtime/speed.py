"""How fast a run computes, applied from here only; the networks in network/ stay plain.

By default every network runs channels_last, the generator's 2x upsampling + 3x3 convolution
runs as four 2x2 "phase" convolutions on the CPU, the optimizers are fused on CUDA and a CPU
process keeps its freed memory: the same maths in other summation orders, so the floats differ
from the original's by rounding (docs/benchmarks.md has the measurements). `--amp` and
`--compile` are switches. `--original_numerics` (runtime/original_numerics.py) turns all of it
off.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from network import gan

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def add_speed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amp", choices=("off", *AMP_DTYPES), default="off",
                        help="mixed precision for the forward passes: bf16, or fp16 with loss "
                             "scaling (default: off, plain fp32 as the original)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks (the first iterations are slow while it "
                             "compiles; needs a C++ compiler on the CPU)")
    parser.add_argument("--cudnn_benchmark", action="store_true",
                        help="let cuDNN autotune its convolutions: faster on a GPU, not "
                             "bit-reproducible (default: the original's cudnn.deterministic)")


class Precision:
    """Autocast and loss scaling; with `--amp off` every call is plain fp32. fp16 scales each
    objective (the student's and the generator's) with a GradScaler of its own."""

    def __init__(self, mode: str, device: torch.device) -> None:
        self.dtype = AMP_DTYPES.get(mode)
        self.device_type = device.type
        self.scaler_S = torch.amp.GradScaler(device.type, enabled=mode == "fp16")
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self) -> AbstractContextManager[Any]:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @staticmethod
    def backward_step(loss: torch.Tensor, optimizer: Optimizer,
                      scaler: torch.amp.GradScaler) -> None:
        """A disabled scaler makes this exactly `loss.backward(); optimizer.step()`."""
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"scaler_S": self.scaler_S.state_dict(), "scaler_G": self.scaler_G.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scaler_S.load_state_dict(state["scaler_S"])
        self.scaler_G.load_state_dict(state["scaler_G"])


def speed_up(args: argparse.Namespace, device: torch.device, *networks: nn.Module) -> None:
    """Move the networks to `device`, in place, with the speed-ups this run allows."""
    for net in networks:
        if args.original_numerics:
            net.to(device)
            continue
        if device.type == "cpu" and isinstance(net, gan.GeneratorA):
            fuse_upsample_conv(net)
        net.to(device, memory_format=torch.channels_last)
        # A generator's reshaped linear output enters its first BatchNorm in NCHW; every later
        # layer then gets channels_last from the one before. One hook, not one per BatchNorm.
        first = next((m for m in net.modules() if isinstance(m, nn.BatchNorm2d)), None)
        if first is not None:
            first.register_forward_pre_hook(_channels_last_input)
        if args.compile:
            net.compile()  # in place: the state_dict keys stay the original's


def _channels_last_input(module: nn.Module, inputs: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
    return (inputs[0].contiguous(memory_format=torch.channels_last),)


def optimizer_options(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Fused optimizers on CUDA; the original's per-parameter loop under --original_numerics."""
    if args.original_numerics:
        return {"fused": False, "foreach": False}
    return {"fused": device.type == "cuda"}


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four 2x2 kernels that a 3x3 kernel applies to a 2x nearest-upsampled map.

    Output pixel (2i+a, 2j+b) reads input rows i-1+a..i+a only: kernel rows 1 and 2 land on the
    same input row for a = 0, rows 0 and 1 for a = 1 (likewise for columns). Returns
    (4 * out, in, 2, 2), phases in the order (a, b) = (0, 0), (0, 1), (1, 0), (1, 1).
    """
    def fold(w: torch.Tensor, dim: int) -> torch.Tensor:
        t0, t1, t2 = w.unbind(dim)
        return torch.stack([t0, t1 + t2, t0 + t1, t2], dim)

    out_c, in_c = weight.shape[:2]
    folded = fold(fold(weight, 2), 3).view(out_c, in_c, 2, 2, 2, 2)  # o, c, a, dy, b, dx
    return folded.permute(2, 4, 0, 1, 3, 5).reshape(4 * out_c, in_c, 2, 2)


class Upsample2xConv3x3(nn.Conv2d):
    """2x nearest upsampling then a 3x3 convolution (padding 1), as one layer: 4 instead of 9
    multiply-adds per output pixel and no upsampled copy of the input. The same `nn.Conv2d`
    weights and keys; the result differs from the two plain ops by rounding only (fp32, MNIST
    sizes: max abs error 1e-5 against float64, the plain ops 1.6e-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        kernels = phase_kernels(self.weight).contiguous(memory_format=torch.channels_last)
        bias = None if self.bias is None else self.bias.repeat(4)
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernels, bias)  # n, 4 * out, h + 1, w + 1
        y = y.permute(0, 2, 3, 1).view(n, h + 1, w + 1, 2, 2, self.out_channels)
        out = x.new_empty(n, h, 2, w, 2, self.out_channels)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, a, :, b] = y[:, a:a + h, b:b + w, a, b]
        return out.view(n, 2 * h, 2 * w, self.out_channels).permute(0, 3, 1, 2)


def fuse_upsample_conv(generator: gan.GeneratorA) -> None:
    """GeneratorA's `upsample` + 3x3 convolutions become `Upsample2xConv3x3` layers holding the
    same parameters (CPU only: on CUDA cuDNN's plain kernels are faster)."""
    generator.upsample = nn.Identity()
    for block in (generator.conv_blocks1, generator.conv_blocks2):
        conv = block[0]
        fused = nn.utils.skip_init(Upsample2xConv3x3, conv.in_channels, conv.out_channels, 3,
                                   padding=1, bias=conv.bias is not None)  # draws no RNG
        fused.weight, fused.bias = conv.weight, conv.bias
        block[0] = fused


def keep_freed_memory() -> bool:
    """glibc serves allocations above 32 MiB with a fresh mmap and unmaps them on free, so each
    large activation costs page faults and a zero-fill every time. With mmap off and trimming
    raised, freed blocks are reused (CPU runs; DFAD_KEEP_FREED_MEMORY=0 keeps glibc's
    defaults). Values are unchanged."""
    if os.environ.get("DFAD_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    m_mmap_max, m_trim_threshold = -4, -1  # glibc's malloc.h
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
