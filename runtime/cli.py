"""Command-line flags shared by the entry scripts, with the original's names and spellings."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from runtime import device as devices
from runtime.errors import UserError
from runtime.original_numerics import add_original_numerics_arg
from runtime.speed import add_speed_args
from utils.visualizer import DEFAULT_PORT, DEFAULT_SERVER


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int>={minimum}"
    return parse


def seed_value(text: str) -> int:
    """An argparse type: a seed numpy accepts too (0 to 2**32 - 1)."""
    value = int_at_least(0)(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"must be < 2**32, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def batch_or_off(text: str) -> int:
    """0 (off) or a batch of at least 2: a pairwise distance needs two samples."""
    value = int_at_least(0)(text)
    if value == 1:
        raise argparse.ArgumentTypeError("must be 0 (off) or >= 2, got 1")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


MAX_DEFAULT_WORKERS = 8  # each worker is a process of its own; more is a flag away


def default_num_workers() -> int:
    """Loader workers per process: the CPUs this process may run on (its affinity mask, which
    containers and schedulers restrict, not the machine's count), shared among the processes
    torchrun starts on this machine, at most MAX_DEFAULT_WORKERS, at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(MAX_DEFAULT_WORKERS, (cpus or 1) // local_processes))


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """Device, seed, loader, resume, visdom, torchrun, speed and numerics flags of every
    training script. Both spellings of the original flags are accepted."""
    num_workers = default_num_workers()
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available (default: auto)")
    parser.add_argument("--no-cuda", "--no_cuda", dest="no_cuda", action="store_true",
                        help="the original flag: same as --device cpu")
    parser.add_argument("--seed", type=seed_value, default=1,
                        help="random seed, 0 to 2**32 - 1 (default: 1)")
    parser.add_argument("--num_workers", type=int_at_least(0), default=num_workers,
                        help="data loader workers per process, started once and kept for the "
                             "whole run; 0 loads in the main process (default: the CPUs this "
                             "process may use, divided among torchrun's processes on this "
                             f"machine, at most {MAX_DEFAULT_WORKERS}: {num_workers} here)")
    parser.add_argument("--log-interval", "--log_interval", dest="log_interval",
                        type=int_at_least(1), default=10,
                        help="iterations between log lines (default: 10)")
    parser.add_argument("--test-only", "--test_only", dest="test_only", action="store_true",
                        help="evaluate once and exit")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="STATE",
                        help="continue a stopped run from the last complete epoch in its "
                             "-state.pt file (alone: this run's own, next to its checkpoints)")
    parser.add_argument("--download", action="store_true",
                        help="download the dataset if it is missing (the original always tried "
                             "for MNIST and CIFAR; we only do with this flag)")
    parser.add_argument("--visdom_port", type=int_at_least(1), default=DEFAULT_PORT,
                        help=f"visdom server port (default: {DEFAULT_PORT}, the README's "
                             f"`visdom -p {DEFAULT_PORT}`)")
    parser.add_argument("--visdom_server", default=DEFAULT_SERVER,
                        help=f"visdom server host or URL (default: {DEFAULT_SERVER}); without "
                             "a server the plots go to log/<run>.visdom.log for a later replay")
    parser.add_argument("--visdom_env", default=None,
                        help="visdom environment (default: the script's, e.g. DFAD-mnist)")
    parser.add_argument("--no_visdom", "--no-visdom", dest="no_visdom", action="store_true",
                        help="no visdom at all (the metrics file and sample PNGs are still "
                             "written)")
    parser.add_argument("--sync_bn", action="store_true",
                        help="under torchrun: BatchNorm statistics over the global batch (CUDA "
                             "only)")
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

    def one_line_error(message: str) -> NoReturn:
        print(f"error: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        main(args)
    except UserError as err:
        if devices.is_main():  # under torchrun every rank stops: one line
            print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nstopped (Ctrl-C): the state file holds the last complete epoch; the same "
              "command with --resume continues from it", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    finally:
        devices.cleanup()
