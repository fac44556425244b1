"""The runtime a run starts with, set up in one fixed order: seeds, cuDNN, device, process group.

One function does all four so no order can undo another: seeding after the cuDNN flags used to
reset `--cudnn_benchmark` to the deterministic default.
"""
from __future__ import annotations

import argparse
import os
import random
import sys

import numpy as np
import torch

from runtime import distributed
from runtime.errors import UserError
from runtime.host_memory import keep_freed_memory

# Present when an NVIDIA driver is loaded, whether or not this torch can use it.
NVIDIA_DEVICE_FILES: tuple[str, ...] = ("/dev/nvidia0", "/proc/driver/nvidia")


def setup_runtime(args: argparse.Namespace) -> torch.device:
    """Seed, cuDNN flags, device, process group (under torchrun): returns this rank's device.
    A CPU run keeps its freed host memory for reuse (runtime/host_memory.py)."""
    seed_everything(args.seed)
    set_cudnn(args.cudnn_benchmark)
    device = resolve_device("cpu" if args.no_cuda else args.device)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def seed_everything(seed: int) -> None:
    """Seed every RNG the original seeds (docs/original-release.md#the-training-loop, step 2)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def set_cudnn(autotune: bool) -> None:
    """The original's cudnn.deterministic=True, or `--cudnn_benchmark` autotuning."""
    torch.backends.cudnn.deterministic = not autotune
    torch.backends.cudnn.benchmark = autotune


def nvidia_driver_file() -> str | None:
    return next((f for f in NVIDIA_DEVICE_FILES if os.path.exists(f)), None)


def why_no_cuda() -> str:
    """Why torch.cuda.is_available() is False, as far as can be told from here."""
    if torch.version.cuda is None:
        return f"this torch {torch.__version__} is a CPU-only build"
    driver = nvidia_driver_file()
    if driver is None:
        return "no NVIDIA driver found"
    return (f"an NVIDIA driver is present ({driver}) but torch {torch.__version__} (built for "
            f"CUDA {torch.version.cuda}) cannot use it: the driver is probably older than this "
            "wheel needs, or the GPU is not visible to this process (docs/gpus-and-clusters.md)")


def describe_device(device: torch.device) -> str:
    """What runs the job, for the first lines of its log: on a GPU its name, compute capability,
    the torch, CUDA and cuDNN versions and the cuDNN setting (--cudnn_benchmark or not)."""
    if device.type != "cuda":
        return f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}"
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return (f"device: cuda:{index} {props.name} (compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, CUDA "
            f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()} "
            f"({'autotuned' if torch.backends.cudnn.benchmark else 'deterministic'})")


def resolve_device(choice: str) -> torch.device:
    """`--device auto` picks CUDA when present (`--no-cuda`, the original flag, means `cpu`).

    Prints the device used; `auto` falling back to the CPU next to an NVIDIA driver warns in one
    line rather than train on the CPU unnoticed. Under torchrun this also joins the process group
    and picks this rank's GPU.
    """
    if choice == "cpu":
        device = torch.device("cpu")
    elif choice == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device cuda was given but CUDA is not available ({why_no_cuda()}): "
                        "use --device cpu")
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cpu" and nvidia_driver_file() is not None and distributed.is_main():
            print(f"warning: running on the CPU: {why_no_cuda()}", file=sys.stderr, flush=True)
    device = distributed.init(device)
    if distributed.is_main():
        ranks = f", rank 0 of {distributed.world_size()}" if distributed.world_size() > 1 else ""
        print(describe_device(device) + ranks, flush=True)
    return device
