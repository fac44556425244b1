"""The flags of every DFAD_*.py script (docs/original-release.md#script-defaults) and of the
generator health, with the original's names and spellings; each script passes its paper row's
defaults."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from reporting.generator_health import DIVERSITY_THRESHOLD, ENTROPY_THRESHOLD, PATIENCE
from runtime.cli import (
    add_runtime_args,
    batch_or_off,
    int_at_least,
    non_negative_float,
    positive_float,
)
from runtime.precision import add_original_numerics_arg, add_speed_args

COMPAT_TITLE = "accepted for compatibility with the original release; ignored"


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


def add_health_args(parser: argparse.ArgumentParser) -> None:
    """The generator-health flags (reporting/generator_health.py), for every script training one."""
    parser.add_argument("--health_batch", type=batch_or_off, default=None,
                        help="fixed latent batch on which the generator's health is measured "
                             "every epoch (default: --batch_size; 0 turns it off)")
    parser.add_argument("--warn_entropy", type=non_negative_float, default=ENTROPY_THRESHOLD,
                        help=f"warn when gen_class_entropy stays below this for {PATIENCE} epochs "
                             f"in a row (default: {ENTROPY_THRESHOLD})")
    parser.add_argument("--warn_diversity", type=non_negative_float, default=DIVERSITY_THRESHOLD,
                        help=f"warn when gen_diversity stays below this for {PATIENCE} epochs "
                             f"in a row (default: {DIVERSITY_THRESHOLD})")
