"""The flags of the DFAD, baseline and teacher scripts, with the original's names and spellings."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from reporting.generator_health import DIVERSITY_THRESHOLD, ENTROPY_THRESHOLD, PATIENCE
from runtime.cli import add_runtime_args, checked, int_at_least, non_negative_float, positive_float

COMPAT_TITLE = "accepted for compatibility with the original release; ignored"


def add_dfad_args(parser: argparse.ArgumentParser, *, datasets: Sequence[str], model: str,
                  ckpt: str, batch_size: int, test_batch_size: int, epochs: int, lr_S: float,
                  weight_decay: float, nz: int, schedule: str | None = None,
                  uses_step_size: bool = True) -> argparse._ArgumentGroup:
    """Each paper row's defaults (docs/original-release.md#script-defaults); `schedule` describes
    its --scheduler; `uses_step_size=False` lists --step_size as ignored (CIFAR's milestones).
    Returns the group of the flags accepted for compatibility only, for the script's own."""
    add = parser.add_argument
    add("--batch_size", type=int_at_least(2), default=batch_size,
        help="generated samples per step (default: %(default)s)")
    add("--epochs", type=int_at_least(1), default=epochs,
        help="number of 'epochs' of --epoch_itrs iterations (default: %(default)s)")
    add("--epoch_itrs", type=int_at_least(1), default=50,
        help="iterations (5 student + 1 generator step) per epoch (default: %(default)s)")
    add("--lr_S", type=positive_float, default=lr_S,
        help="student SGD learning rate (default: %(default)s)")
    add("--weight_decay", type=non_negative_float, default=weight_decay,
        help="student weight decay (default: %(default)s)")
    add("--scheduler", action="store_true", help=f"decay both learning rates: {schedule}"
        if schedule else "decay both learning rates (the schedule is the paper row's)")
    if uses_step_size:
        add("--step_size", type=int_at_least(1), default=100,
            help="StepLR period in epochs, where the row uses StepLR (default: 100)")
    add("--lr_G", type=positive_float, default=1e-3,
        help="generator Adam learning rate (default: 1e-3)")
    add("--nz", type=int_at_least(1), default=nz,
        help="latent size of the generator (default: %(default)s)")
    compat = parser.add_argument_group(COMPAT_TITLE)  # dest "ignored_*": not a run flag
    compat.add_argument("--momentum", type=float, default=0.9, dest="ignored_momentum",
                        metavar="MOMENTUM",
                        help="the student's SGD momentum is fixed at 0.9 as in the original "
                             "(docs/original-release.md#hard-coded-momentum-and-odd-defaults)")
    if not uses_step_size:
        compat.add_argument("--step_size", type=int_at_least(1), default=100,
                            dest="ignored_step_size", metavar="STEP_SIZE",
                            help="this script's --scheduler has fixed milestones "
                                 "(docs/original-release.md#ignored-and-decorative-flags)")
    add_health_args(parser)
    add_run_args(parser, datasets=datasets, model=model, ckpt=ckpt,
                 test_batch_size=test_batch_size)
    return compat


def add_run_args(parser: argparse.ArgumentParser, *, datasets: Sequence[str], model: str,
                 ckpt: str, test_batch_size: int) -> None:
    """The test set, the networks' files and the runtime flags of every DFAD engine script."""
    add = parser.add_argument
    add("--test_batch_size", type=int_at_least(1), default=test_batch_size,
        help="batch size of the real test set (default: %(default)s)")
    add("--data_root", default="data", help="dataset folder (default: data)")
    add("--dataset", choices=tuple(datasets), default=datasets[0], help="default: %(default)s")
    add("--model", choices=(model,), default=model,
        help="the student (a label: the script fixes the architecture)")
    add("--ckpt", default=ckpt, help=f"teacher state_dict (default: {ckpt})")
    add("--stu_ckpt", help="start from this student state_dict (and its -generator.pt)")
    add_runtime_args(parser)


def add_health_args(parser: argparse.ArgumentParser) -> None:
    """The generator-health flags (reporting/generator_health.py), for every script training one."""
    add = parser.add_argument
    add("--health_batch", type=checked(int, lambda n: n == 0 or n >= 2, "0 (off) or >= 2"),
        default=None, help="fixed latent batch on which the generator's health is measured "
        "every epoch (default: --batch_size; 0 turns it off)")
    add("--warn_entropy", type=non_negative_float, default=ENTROPY_THRESHOLD,
        help=f"warn when gen_class_entropy stays below this for {PATIENCE} epochs in a row "
             "(default: %(default)s)")
    add("--warn_diversity", type=non_negative_float, default=DIVERSITY_THRESHOLD,
        help=f"warn when gen_diversity stays below this for {PATIENCE} epochs in a row "
             "(default: %(default)s)")


def add_teacher_args(parser: argparse.ArgumentParser, *, datasets: Sequence[str],
                     models: Sequence[str], batch_size: int, test_batch_size: int, epochs: int,
                     step_size: int, scheduler_help: str) -> None:
    """The flags train_teacher.py and train_teacher_seg.py share, with each one's defaults
    (docs/original-release.md#classification-teacher-training), and the runtime flags."""
    add = parser.add_argument
    add("--num_classes", type=int_at_least(2), default=None,
        help="classes of the model's head (default: the dataset's)")
    add("--batch_size", type=int_at_least(2), default=batch_size,
        help="training batch size (default: %(default)s)")
    add("--test_batch_size", type=int_at_least(1), default=test_batch_size,
        help="test batch size (default: %(default)s)")
    add("--data_root", default="data", help="dataset folder (default: data); for CamVid and "
        "NYUv2 the dataset's own folder, e.g. ./data/CamVid or ./data/NYUv2")
    add("--epochs", type=int_at_least(1), default=epochs,
        help="training epochs (default: %(default)s)")
    add("--lr", type=positive_float, default=0.1, help="SGD learning rate (default: 0.1)")
    add("--weight_decay", type=non_negative_float, default=5e-4,
        help="SGD weight decay (default: 5e-4)")
    add("--momentum", type=non_negative_float, default=0.9, help="SGD momentum (default: 0.9)")
    add("--dataset", choices=tuple(datasets), default=datasets[0], help="default: %(default)s")
    add("--model", choices=tuple(models), default=models[0], help="default: %(default)s")
    add("--scheduler", action="store_true", help=scheduler_help)
    add("--step_size", type=int_at_least(1), default=step_size,
        help="StepLR period in epochs, with --scheduler (default: %(default)s)")
    add("--ckpt", default=None, help="start from this state_dict; with --test_only, the one "
        "evaluated (default: none; --test_only evaluates this run's checkpoint)")
    add_runtime_args(parser)
