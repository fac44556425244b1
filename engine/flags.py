"""The flags of every DFAD_*.py script (docs/original-release.md#script-defaults), of the
generator health and of the teacher scripts, with the original's names and spellings; each script
passes its own defaults."""
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
    add_student_args(parser, batch_size=batch_size, epochs=epochs, lr_S=lr_S,
                     weight_decay=weight_decay, min_batch=2,
                     batch_help="generated samples per step",
                     iteration="(5 student + 1 generator step)",
                     scheduler_help=f"decay both learning rates: {schedule}" if schedule else
                     "decay both learning rates (the schedule is the paper row's)",
                     step_size=uses_step_size)
    parser.add_argument("--lr_G", type=positive_float, default=1e-3,
                        help="generator Adam learning rate (default: 1e-3)")
    parser.add_argument("--nz", type=int_at_least(1), default=nz,
                        help=f"latent size of the generator (default: {nz})")
    compat = parser.add_argument_group(COMPAT_TITLE)
    compat.add_argument("--momentum", type=float, default=0.9,
                        help="the student's SGD momentum is fixed at 0.9 as in the original "
                             "(docs/original-release.md#hard-coded-momentum-and-odd-defaults)")
    if not uses_step_size:
        compat.add_argument("--step_size", type=int_at_least(1), default=100,
                            help="this script's --scheduler has fixed milestones "
                                 "(docs/original-release.md#ignored-and-decorative-flags)")
    add_health_args(parser)
    add_run_args(parser, datasets=datasets, model=model, ckpt=ckpt,
                 test_batch_size=test_batch_size)
    return compat


def add_student_args(
    parser: argparse.ArgumentParser,
    *,
    batch_size: int,
    epochs: int,
    lr_S: float,
    weight_decay: float,
    min_batch: int,
    batch_help: str,
    iteration: str,
    scheduler_help: str,
    step_size: bool = True,
) -> None:
    """The student's side of the loop, which the DFAD scripts and the KD baselines share: batch,
    epochs of --epoch_itrs iterations, SGD, --scheduler (and its --step_size when `step_size`)."""
    parser.add_argument("--batch_size", type=int_at_least(min_batch), default=batch_size,
                        help=f"{batch_help} (default: {batch_size})")
    parser.add_argument("--epochs", type=int_at_least(1), default=epochs,
                        help=f"number of 'epochs' of --epoch_itrs iterations (default: {epochs})")
    parser.add_argument("--epoch_itrs", type=int_at_least(1), default=50,
                        help=f"iterations {iteration} per epoch (default: 50)")
    parser.add_argument("--lr_S", type=positive_float, default=lr_S,
                        help=f"student SGD learning rate (default: {lr_S})")
    parser.add_argument("--weight_decay", type=non_negative_float, default=weight_decay,
                        help=f"student weight decay (default: {weight_decay})")
    parser.add_argument("--scheduler", action="store_true", help=scheduler_help)
    if step_size:
        parser.add_argument("--step_size", type=int_at_least(1), default=100,
                            help="StepLR period in epochs, where the row uses StepLR "
                                 "(default: 100)")


def add_run_args(
    parser: argparse.ArgumentParser,
    *,
    datasets: Sequence[str],
    model: str,
    ckpt: str,
    test_batch_size: int,
) -> None:
    """The test set, the networks' files, and the runtime, speed and numerics flags: of every
    script that runs the DFAD engine, baselines included."""
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=test_batch_size,
                        help=f"batch size of the real test set (default: {test_batch_size})")
    parser.add_argument("--data_root", default="data", help="dataset folder (default: data)")
    parser.add_argument("--dataset", choices=tuple(datasets), default=datasets[0],
                        help=f"default: {datasets[0]}")
    parser.add_argument("--model", choices=(model,), default=model,
                        help="the student (a label: the script fixes the architecture)")
    parser.add_argument("--ckpt", default=ckpt, help=f"teacher state_dict (default: {ckpt})")
    parser.add_argument("--stu_ckpt", default=None,
                        help="start from this student state_dict (and its -generator.pt)")
    add_runtime_args(parser)


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


def add_teacher_args(
    parser: argparse.ArgumentParser,
    *,
    datasets: Sequence[str],
    models: Sequence[str],
    batch_size: int,
    test_batch_size: int,
    epochs: int,
    step_size: int,
    scheduler_help: str,
    data_root_help: str = "dataset folder (default: data)",
) -> None:
    """The flags train_teacher.py and train_teacher_seg.py share
    (docs/original-release.md#classification-teacher-training, #segmentation-teacher-training),
    with each script's defaults, and the runtime flags."""
    parser.add_argument("--num_classes", type=int_at_least(2), default=None,
                        help="classes of the model's head (default: the dataset's)")
    parser.add_argument("--batch_size", type=int_at_least(2), default=batch_size,
                        help=f"training batch size (default: {batch_size})")
    parser.add_argument("--test_batch_size", type=int_at_least(1), default=test_batch_size,
                        help=f"test batch size (default: {test_batch_size})")
    parser.add_argument("--data_root", default="data", help=data_root_help)
    parser.add_argument("--epochs", type=int_at_least(1), default=epochs,
                        help=f"training epochs (default: {epochs})")
    parser.add_argument("--lr", type=positive_float, default=0.1,
                        help="SGD learning rate (default: 0.1)")
    parser.add_argument("--weight_decay", type=non_negative_float, default=5e-4,
                        help="SGD weight decay (default: 5e-4)")
    parser.add_argument("--momentum", type=non_negative_float, default=0.9,
                        help="SGD momentum (default: 0.9)")
    parser.add_argument("--dataset", choices=tuple(datasets), default=datasets[0],
                        help=f"default: {datasets[0]}")
    parser.add_argument("--model", choices=tuple(models), default=models[0],
                        help=f"default: {models[0]}")
    parser.add_argument("--scheduler", action="store_true", help=scheduler_help)
    parser.add_argument("--step_size", type=int_at_least(1), default=step_size,
                        help=f"StepLR period in epochs, with --scheduler (default: {step_size})")
    parser.add_argument("--ckpt", default=None,
                        help="start from this state_dict; with --test_only, the one evaluated "
                             "(default: none; --test_only evaluates this run's checkpoint)")
    add_runtime_args(parser)
