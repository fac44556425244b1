"""Command-line flags shared by the entry scripts, with the original's names and spellings."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from utils import distributed
from utils.accel import add_speed_args
from utils.errors import UserError
from utils.generator_health import DIVERSITY_THRESHOLD, ENTROPY_THRESHOLD, PATIENCE
from utils.host_memory import keep_freed_memory
from utils.run_state import Interrupted
from utils.visualizer import DEFAULT_PORT, DEFAULT_SERVER

COMPAT_TITLE = "accepted for compatibility with the original release; ignored"


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
    """Device, seed and loader flags. Both spellings of the original flags are accepted."""
    num_workers = default_num_workers()
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available (default: auto)")
    parser.add_argument("--no-cuda", "--no_cuda", dest="no_cuda", action="store_true",
                        help="the original flag: same as --device cpu")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
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
                        help="continue a stopped run from its -state.pt file (alone: this run's "
                             "own state, next to its checkpoints)")
    parser.add_argument("--save_every", type=int_at_least(1), default=1, metavar="N",
                        help="write the resumable state after every N-th epoch and the last one "
                             "(default: 1; a Ctrl-C or SIGTERM writes it too, a kill loses the "
                             "epochs since the last one)")
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
    distributed.add_distributed_args(parser)


def add_dfad_args(
    parser: argparse.ArgumentParser,
    *,
    datasets: Sequence[str],
    model: str,
    ckpt: str,
    batch_size: int,
    test_batch_size: int,
    epochs: int,
    lr_S: float,
    weight_decay: float,
    nz: int,
    schedule: str | None = None,
    uses_step_size: bool = True,
) -> argparse._ArgumentGroup:
    """The flags of every DFAD_*.py script (docs/original-release.md#script-defaults); the defaults
    are each paper row's.

    `schedule` describes the row's --scheduler in --help; `uses_step_size=False` says there that
    --step_size is accepted but ignored (CIFAR's fixed milestones,
    docs/original-release.md#ignored-and-decorative-flags). Returns the group of the flags accepted
    for compatibility only, for the script's own such flags.
    """
    parser.add_argument("--batch_size", type=int_at_least(2), default=batch_size,
                        help=f"generated samples per step (default: {batch_size})")
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=test_batch_size,
                        help=f"batch size of the real test set (default: {test_batch_size})")
    parser.add_argument("--epochs", type=int_at_least(1), default=epochs,
                        help=f"number of 'epochs' of --epoch_itrs iterations (default: {epochs})")
    parser.add_argument("--epoch_itrs", type=int_at_least(1), default=50,
                        help="iterations (5 student + 1 generator step) per epoch (default: 50)")
    parser.add_argument("--lr_S", type=positive_float, default=lr_S,
                        help=f"student SGD learning rate (default: {lr_S})")
    parser.add_argument("--lr_G", type=positive_float, default=1e-3,
                        help="generator Adam learning rate (default: 1e-3)")
    parser.add_argument("--weight_decay", type=non_negative_float, default=weight_decay,
                        help=f"student weight decay (default: {weight_decay})")
    parser.add_argument("--nz", type=int_at_least(1), default=nz,
                        help=f"latent size of the generator (default: {nz})")
    parser.add_argument("--scheduler", action="store_true",
                        help=f"decay both learning rates: {schedule}" if schedule else
                             "decay both learning rates (the schedule is the paper row's)")
    compat = parser.add_argument_group(COMPAT_TITLE)
    compat.add_argument("--momentum", type=float, default=0.9,
                        help="the student's SGD momentum is fixed at 0.9 as in the original "
                             "(docs/original-release.md#hard-coded-momentum-and-odd-defaults)")
    if uses_step_size:
        parser.add_argument("--step_size", type=int_at_least(1), default=100,
                            help="StepLR period in epochs, where the row uses StepLR "
                                 "(default: 100)")
    else:
        compat.add_argument("--step_size", type=int_at_least(1), default=100,
                            help="this script's --scheduler has fixed milestones "
                                 "(docs/original-release.md#ignored-and-decorative-flags)")
    parser.add_argument("--data_root", default="data", help="dataset folder (default: data)")
    parser.add_argument("--dataset", choices=tuple(datasets), default=datasets[0],
                        help=f"default: {datasets[0]}")
    parser.add_argument("--model", choices=(model,), default=model,
                        help="the student (a label: the script fixes the architecture)")
    parser.add_argument("--ckpt", default=ckpt, help=f"teacher state_dict (default: {ckpt})")
    parser.add_argument("--stu_ckpt", default=None,
                        help="start from this student state_dict (and its -generator.pt)")
    add_health_args(parser)
    add_runtime_args(parser)
    add_speed_args(parser)
    add_original_numerics_arg(parser)
    return compat


def add_original_numerics_arg(parser: argparse.ArgumentParser) -> None:
    """The switch of utils/numerics.py, for every script that runs the DFAD engine."""
    parser.add_argument("--original_numerics", action="store_true",
                        help="turn off the speed-ups that change rounding (channels_last, the "
                             "generator's phase kernels, fused optimizers): a CPU run computes "
                             "the original release's floats bit for bit, more slowly (default: "
                             "off)")


def add_health_args(parser: argparse.ArgumentParser) -> None:
    """The generator-health flags (utils/generator_health.py) of every script that trains one."""
    parser.add_argument("--health_batch", type=batch_or_off, default=None,
                        help="fixed latent batch on which the generator's health is measured "
                             "every epoch (default: --batch_size; 0 turns it off)")
    parser.add_argument("--warn_entropy", type=non_negative_float, default=ENTROPY_THRESHOLD,
                        help=f"warn when gen_class_entropy stays below this for {PATIENCE} epochs "
                             f"in a row (default: {ENTROPY_THRESHOLD})")
    parser.add_argument("--warn_diversity", type=non_negative_float, default=DIVERSITY_THRESHOLD,
                        help=f"warn when gen_diversity stays below this for {PATIENCE} epochs "
                             f"in a row (default: {DIVERSITY_THRESHOLD})")


def run_main(get_parser: Callable[[], argparse.ArgumentParser],
             main: Callable[[argparse.Namespace], object],
             argv: Sequence[str] | None = None) -> None:
    """Parse flags and run `main`; a UserError becomes one line on stderr and exit code 1."""
    args = get_parser().parse_args(argv)
    keep_freed_memory()
    try:
        main(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as stop:
        print(str(stop), file=sys.stderr)
        sys.exit(128 + stop.signum)
    finally:
        distributed.cleanup()
