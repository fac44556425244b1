"""Where a run computes: seeds, cuDNN, the device, and torchrun as a switch.

Without torchrun every helper here is a no-op. Under torchrun (docs/gpus-and-clusters.md), as in
torchvision's references: one process per device, each seeded with `--seed + rank` and drawing
its own slice of every batch, DDP averaging the gradients, rank 0 evaluating and writing. N
processes train the same method on the same global batch size; they do not reproduce one
process's floats.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from runtime import original_numerics
from runtime.errors import UserError

# Rank 0 evaluates and writes while the others wait in the next collective: long enough for
# NYUv2's 654 full-size test images on a slow device.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)
NVIDIA_DEVICE_FILES = ("/dev/nvidia0", "/proc/driver/nvidia")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def seed_everything(seed: int) -> None:
    """Every RNG the original seeds (docs/original-release.md#the-training-loop, step 2)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def setup(args: argparse.Namespace) -> torch.device:
    """Seed, cuDNN, device and (under torchrun) the process group; returns this rank's device.
    Prints the device once."""
    original_numerics.check(args)
    device = _pick_device("cpu" if args.no_cuda else args.device)
    if args.sync_bn and device.type != "cuda":
        raise UserError("--sync_bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU "
                        "implementation): drop the flag on the CPU")
    if launched_by_torchrun() and not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        nccl = device.type == "cuda"
        dist.init_process_group("nccl" if nccl else "gloo", timeout=PROCESS_GROUP_TIMEOUT,
                                device_id=device if nccl else None)
        if rank() != 0:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    seed_everything(args.seed + rank())
    torch.backends.cudnn.deterministic = not args.cudnn_benchmark
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if device.type == "cpu":
        from runtime.speed import keep_freed_memory
        keep_freed_memory()
    if is_main():
        ranks = f", {world_size()} processes" if world_size() > 1 else ""
        print(describe_device(device) + ranks, flush=True)
    return device


def why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"this torch {torch.__version__} is a CPU-only build"
    driver = next((f for f in NVIDIA_DEVICE_FILES if os.path.exists(f)), None)
    if driver is None:
        return "no NVIDIA driver found"
    return (f"an NVIDIA driver is present ({driver}) but torch {torch.__version__} (built for "
            f"CUDA {torch.version.cuda}) cannot use it: the driver is probably older than this "
            "wheel needs, or the GPU is not visible to this process (docs/gpus-and-clusters.md)")


def _pick_device(choice: str) -> torch.device:
    """`auto` is CUDA when present; next to an NVIDIA driver a CPU fallback says why."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device cuda was given but CUDA is not available ({why_no_cuda()}): "
                        "use --device cpu")
    if choice == "auto" and not torch.cuda.is_available():
        if any(os.path.exists(f) for f in NVIDIA_DEVICE_FILES) and is_main():
            print(f"warning: running on the CPU: {why_no_cuda()}", file=sys.stderr, flush=True)
        return torch.device("cpu")
    return torch.device("cpu" if choice == "cpu" else "cuda")


def describe_device(device: torch.device) -> str:
    """The first line of a run's log: what computes it."""
    if device.type != "cuda":
        return f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}"
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return (f"device: cuda:{index} {props.name} (compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, CUDA "
            f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()} "
            f"({'autotuned' if torch.backends.cudnn.benchmark else 'deterministic'})")


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def local_batch(global_batch: int) -> int:
    """This rank's share of `--batch_size`, which stays the global batch."""
    if global_batch % world_size():
        raise UserError(f"--batch_size {global_batch} does not split evenly over "
                        f"{world_size()} processes: use a multiple of {world_size()}")
    return global_batch // world_size()


def ddp(module: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """DDP around `module` under torchrun (BatchNorm made global with --sync_bn), else itself.
    Checkpoints and evaluation use the plain module."""
    if world_size() == 1:
        return module
    if sync_bn:
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def no_sync(module: nn.Module) -> AbstractContextManager[Any]:
    """For a pass whose parameters take no gradient: DDP must not wait for one."""
    return module.no_sync() if isinstance(module, DistributedDataParallel) else nullcontext()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Each rank's mean over its slice -> the global batch's mean, on every rank; a NaN on one
    rank reaches all, so every rank stops at the same step."""
    if world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size()


def from_main(value: float, device: torch.device) -> float:
    """Rank 0's value on every rank (what rank 0 alone measured, such as its evaluation)."""
    if world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.item()
