"""Command-line flags shared by the entry scripts, with the original's names and spellings."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from runtime import device as devices
from runtime.errors import UserError
from runtime.original_numerics import add_original_numerics_arg
from runtime.speed import add_speed_args
from utils.visualizer import DEFAULT_PORT, DEFAULT_SERVER


def checked(cast: Callable[[str], Any], ok: Callable[[Any], bool],
            need: str) -> Callable[[str], Any]:
    """An argparse type: `cast(text)`, which must satisfy `ok`; else "must be <need>"."""

    def parse(text: str) -> Any:
        value = cast(text)  # a ValueError: argparse says "invalid <cast> <need> value"
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {need}, got {value}")
        return value

    parse.__name__ = f"{cast.__name__} {need}"
    return parse


def int_at_least(minimum: int) -> Callable[[str], int]:
    return checked(int, lambda value: value >= minimum, f">= {minimum}")


positive_float = checked(float, lambda value: value > 0, "> 0")
non_negative_float = checked(float, lambda value: value >= 0, ">= 0")


def default_num_workers() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and schedulers
    restrict), shared among torchrun's processes on this machine, at most 8 (each worker is a
    process of its own; more is a flag away)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(8, (cpus or 1) // local_processes))


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """Device, seed, loader, resume, visdom, torchrun, speed and numerics flags of every training
    script; both spellings of the original flags."""
    add = parser.add_argument
    add("--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="auto = cuda when available (default: auto)")
    add("--no-cuda", "--no_cuda", dest="no_cuda", action="store_true",
        help="the original flag: same as --device cpu")
    add("--seed", type=checked(int, lambda value: 0 <= value < 2**32, "0 to 2**32 - 1"),
        default=1, help="random seed, 0 to 2**32 - 1 (default: 1)")
    add("--num_workers", type=int_at_least(0), default=default_num_workers(),
        help="data loader workers per process, started for each pass as the original's; 0 "
             "loads in the main process (default: the CPUs this process may use, divided among "
             "torchrun's processes on this machine, at most 8: %(default)s here)")
    add("--log-interval", "--log_interval", dest="log_interval", type=int_at_least(1),
        default=10, help="iterations between log lines (default: 10)")
    add("--test-only", "--test_only", dest="test_only", action="store_true",
        help="evaluate once and exit")
    add("--resume", nargs="?", const="", default=None, metavar="STATE",
        help="resume a stopped run from the last complete epoch in a -state.pt (alone: this run's)")
    add("--download", action="store_true", help="download the dataset if it is missing (the "
        "original always tried for MNIST and CIFAR; we only do with this flag)")
    add("--visdom_port", type=int_at_least(1), default=DEFAULT_PORT,
        help="visdom server port (default: %(default)s, the README's `visdom -p %(default)s`)")
    add("--visdom_server", default=DEFAULT_SERVER,
        help=f"visdom server host or URL (default: {DEFAULT_SERVER}); without a server the plots "
             "go to log/<run>.visdom.log for a later replay")
    add("--visdom_env", help="visdom environment (default: the script's, e.g. DFAD-mnist)")
    add("--no_visdom", "--no-visdom", dest="no_visdom", action="store_true",
        help="no visdom at all (the metrics file and sample PNGs are still written)")
    add("--sync_bn", action="store_true",
        help="under torchrun: BatchNorm statistics over the global batch (CUDA only)")
    add_speed_args(parser)
    add_original_numerics_arg(parser)


def help_example(command: str, writes: Sequence[str], note: str = "") -> dict[str, object]:
    """ArgumentParser keywords: --help ends with one example command and the files the run
    writes, so a new user need not open the README to start."""
    lines = [note, ""] if note else []
    lines += ["example:", f"  {command}", "", "writes (relative to the working directory):"]
    lines += [f"  {path}" for path in writes]
    return {"epilog": "\n".join(lines), "formatter_class": argparse.RawDescriptionHelpFormatter}


def run_main(get_parser: Callable[[], argparse.ArgumentParser],
             main: Callable[[argparse.Namespace], object],
             argv: Sequence[str] | None = None) -> None:
    """Parse flags and run `main`: a UserError is one line on stderr and exit code 1, a bad flag
    one line and exit code 2 (--help has the rest), Ctrl-C one line saying how to continue."""
    parser = get_parser()
    parser.error = lambda message: parser.exit(  # type: ignore[method-assign]
        2, f"error: {message} (see {parser.prog} --help)\n")
    args = parser.parse_args(argv)
    try:
        main(args)
    except UserError as err:
        if devices.is_main():  # under torchrun every rank stops: one line
            print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        if devices.is_main():
            print("\nstopped (Ctrl-C): the state file holds the last complete epoch; the same "
                  "command with --resume continues from it (a row script: run it again)",
                  file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    finally:
        devices.cleanup()
