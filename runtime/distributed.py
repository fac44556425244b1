"""torchrun support: one process per device, DDP, NCCL on GPUs and gloo on the CPU.

Launched without torchrun (WORLD_SIZE unset or 1) every function here is a no-op and the run is
the plain single-process one. Under torchrun:
* `--batch_size` stays the global batch; each rank takes an equal slice of it. The DFAD latents
  are drawn for the whole batch on every rank (same seed, same stream) and sliced, so the ranks
  together see exactly the batch one process would;
* gradients are averaged across ranks by DDP, so the weights stay identical on every rank;
* `--sync_bn` (CUDA only) makes BatchNorm statistics global, so N GPUs compute what one GPU does;
* evaluation, checkpoints, state files, CSV rows, logs and plots happen on rank 0 only; the other
  ranks print nothing to stdout.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from runtime.errors import UserError

# How long a collective waits for a missing rank before the run fails (NCCL's default is 10
# minutes, gloo's 30). The other ranks wait in a collective while rank 0 evaluates and writes, so
# it must outlast the longest evaluation (NYUv2's 654 full-size test images on a slow device).
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)


def add_distributed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sync_bn", action="store_true",
                        help="under torchrun: BatchNorm statistics over the global batch, so N "
                             "GPUs reproduce one GPU's run (CUDA only)")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (from torchrun's environment before the process group exists)."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    """This process's rank on its node."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


# Set only by tests/test_cuda_exactness.py: every rank on cuda:0, over gloo (NCCL refuses two
# ranks on one GPU), so a machine with one GPU can run a multi-process CUDA smoke test.
SHARE_ONE_GPU = "DFAD_TEST_RANKS_SHARE_ONE_GPU"


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (once); returns this rank's device."""
    if not launched_by_torchrun():
        return device
    shared = device.type == "cuda" and os.environ.get(SHARE_ONE_GPU) == "1"
    if device.type == "cuda":
        device = torch.device("cuda", 0 if shared else local_rank())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        nccl = device.type == "cuda" and not shared
        dist.init_process_group("nccl" if nccl else "gloo", device_id=device if nccl else None,
                                timeout=PROCESS_GROUP_TIMEOUT)
    if rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    return device


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def local_batch(global_batch: int, what: str = "--batch_size") -> int:
    """This rank's share of a global batch; the ranks must split it evenly."""
    n = world_size()
    if global_batch % n:
        raise UserError(f"{what} {global_batch} does not split evenly over {n} processes: "
                        f"use a multiple of {n}")
    return global_batch // n


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a batch that every rank drew identically."""
    n = world_size()
    return batch if n == 1 else batch.chunk(n)[rank()]


def wrap(module: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """DDP around `module` under torchrun (after converting its BatchNorm with --sync_bn)."""
    if sync_bn and device.type != "cuda":
        raise UserError("--sync_bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU "
                        "implementation): drop the flag on the CPU")
    if world_size() == 1:
        return module
    if sync_bn:
        # In place for every child; our networks never have a BatchNorm at the top level.
        nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules()):
        RankDropout(module, device)
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


class RankDropout:
    """Each rank's own dropout masks, the run's stream untouched (docs/gpus-and-clusters.md).

    Every rank draws the same numbers from the run's stream (the global latent batch it slices,
    the loaders' seeds), so dropout drawing from it too would give every rank's slice the same
    mask pattern and, drawing per local batch, shift the latents away from one process's. So a
    training forward of `module` runs on a stream of its own: seeded from this rank, the run's
    stream state at the call (restored by a resume) and the calls since that state last moved,
    and the run's stream is put back afterwards.
    """

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        self.device = device
        self.key, self.calls = b"", 0
        self.saved: tuple[torch.Tensor, torch.Tensor | None] | None = None
        module.register_forward_pre_hook(self.enter)
        module.register_forward_hook(self.leave)

    def enter(self, module: nn.Module, inputs: Any) -> None:
        if not module.training:
            return
        cpu = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        key = hashlib.sha256(cpu.numpy().tobytes()
                             + (cuda.numpy().tobytes() if cuda is not None else b"")).digest()
        self.calls = self.calls + 1 if key == self.key else 0
        self.key = key
        seed = hashlib.sha256(key + f"{rank()}:{self.calls}".encode()).digest()
        self.saved = (cpu, cuda)
        torch.default_generator.manual_seed(int.from_bytes(seed[:8], "little") >> 1)
        if cuda is not None:
            torch.cuda.manual_seed(int.from_bytes(seed[8:16], "little") >> 1)

    def leave(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self.saved is None:
            return
        cpu, cuda = self.saved
        self.saved = None
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self.device)


def no_gradient_sync(module: nn.Module) -> AbstractContextManager[Any]:
    """For a pass whose parameters take no gradient: DDP must not wait for one."""
    return module.no_sync() if isinstance(module, DistributedDataParallel) else nullcontext()


def global_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over the ranks of a per-rank mean over equal slices: the global batch's mean.

    Autograd flows through it: each rank's share of the gradient is that of the global value.
    """
    n = world_size()
    # The functional all-reduce carries the gradient (torch.distributed.nn's is deprecated).
    return value if n == 1 else funcol.all_reduce(value, "sum", dist.group.WORLD) / n


@contextmanager
def local_main_first() -> Iterator[None]:
    """Local rank 0 runs the block first (a download into the node's data folder); the other
    ranks wait at a barrier, then run it on the files it left."""
    if world_size() == 1:
        yield
        return
    if local_rank() != 0:
        dist.barrier()
    try:
        yield
    finally:
        if local_rank() == 0:
            dist.barrier()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (a signal may reach the ranks at different
    steps; they must all stop at the same one)."""
    if world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def first_over_ranks(index: int, device: torch.device) -> tuple[int, int]:
    """The smallest `index` over the ranks and the lowest rank that has it, on every rank."""
    n = world_size()
    if n == 1:
        return index, 0
    key = torch.tensor([index * n + rank()], dtype=torch.int64, device=device)
    dist.all_reduce(key, op=dist.ReduceOp.MIN)
    low = int(key.item())
    return low // n, low % n


def same_on_every_rank(module: nn.Module, device: torch.device) -> bool:
    """Whether every rank holds the same parameters (checked once, at the end of a run)."""
    if world_size() == 1:
        return True
    total = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum()
    total = total.reshape(1).to(device)
    low, high = total.clone(), total.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(low.item() == high.item())
