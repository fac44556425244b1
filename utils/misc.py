"""Run set-up shared by every entry script: errors, seeding, device choice, config dump."""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler


class UserError(Exception):
    """A problem the user can fix (bad path, wrong checkpoint, ...): reported as one line."""


def seed_everything(seed: int) -> None:
    """Seed every RNG the original seeds (SPEC §3.1 step 2) and make cudnn deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# Present when an NVIDIA driver is loaded, whether or not this torch can use it.
NVIDIA_DEVICE_FILES: tuple[str, ...] = ("/dev/nvidia0", "/proc/driver/nvidia")


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
            "wheel needs, or the GPU is not visible to this process (see the README, GPUs)")


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


def resolve_device(args: argparse.Namespace) -> torch.device:
    """`--device auto` picks CUDA when present; `--no-cuda` (the original flag) forces the CPU.

    Prints the device used; `auto` falling back to the CPU next to an NVIDIA driver warns in one
    line rather than train on the CPU unnoticed. Under torchrun this also joins the process group
    and picks this rank's GPU.
    """
    from utils import distributed  # here: utils.distributed itself needs UserError

    if getattr(args, "no_cuda", False) or args.device == "cpu":
        device = torch.device("cpu")
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device cuda was given but CUDA is not available ({why_no_cuda()}): "
                        "use --device cpu")
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cpu" and nvidia_driver_file() is not None and distributed.is_main():
            print(f"warning: running on the CPU: {why_no_cuda()}", file=sys.stderr, flush=True)
    if getattr(args, "cudnn_benchmark", False):
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    device = distributed.init(device)
    if distributed.is_main():
        ranks = f", rank 0 of {distributed.world_size()}" if distributed.world_size() > 1 else ""
        print(describe_device(device) + ranks, flush=True)
    return device


def ensure_writable(*folders: str | Path) -> None:
    """Fail at start, in one line, when an output folder cannot be created or written."""
    for folder in folders:
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise UserError(f"cannot write to the output folder {folder}/ ({err.strerror}): "
                            "run from a folder where checkpoint/ and log/ can be written") from err


def dump_config(args: argparse.Namespace, path: str | Path) -> None:
    """Print the full config once and write it as JSON next to the run's logs."""
    from utils import distributed

    if not distributed.is_main():
        return
    config = vars(args)
    print("config: " + json.dumps(config, sort_keys=True))
    path = Path(path)
    ensure_writable(path.parent)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


RUN_PREFIX = "run="  # the first cell of a row that carries its run id and flags


@dataclass(frozen=True)
class CsvRun:
    """One CSV row: a run's id, the flags that define it, its per-epoch metric list."""

    run_id: str
    flags: dict[str, Any]
    values: list[float]


def append_csv_row(path: str | Path, values: Sequence[float], run_id: str,
                   flags: dict[str, Any]) -> None:
    """One row per run: `run=<id>`, its defining flags as JSON, then the per-epoch metric list
    (the original's row, SPEC §3.1). Read by get_results.py."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow([RUN_PREFIX + run_id, json.dumps(flags, sort_keys=True),
                                *values])
        f.flush()
        os.fsync(f.fileno())


def read_csv_runs(path: str | Path) -> list[CsvRun]:
    """Every row of a results CSV; rows from before run ids (plain floats) come with no id and
    no flags."""
    runs = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            try:
                if row[0].startswith(RUN_PREFIX):
                    runs.append(CsvRun(row[0][len(RUN_PREFIX):], json.loads(row[1]),
                                       [float(v) for v in row[2:]]))
                else:
                    runs.append(CsvRun("", {}, [float(v) for v in row]))
            except (ValueError, IndexError) as err:
                raise UserError(f"{path} has a row that is not a run ({str(err)[:80]}): "
                                f"{','.join(row)[:80]}") from err
    return runs


def step_schedulers(schedulers: Sequence[LRScheduler]) -> None:
    """Step LR schedulers; the original steps them before the epoch's first optimizer step."""
    with warnings.catch_warnings():
        # Stepping before the first optimizer step is deliberate (SPEC §3.1): silence the hint.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        for scheduler in schedulers:
            scheduler.step()


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())
