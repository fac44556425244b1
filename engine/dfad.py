"""The adversarial distillation loop of DFAD
(docs/original-release.md#the-method, #the-training-loop), shared by every DFAD_*.py script.

Per iteration: 5 student steps on detached generator samples (imitation), then 1 generator step
that maximises the student-teacher discrepancy through both networks (generation). Every
`epoch_itrs` iterations the student is evaluated on the real test set; the best student and its
generator are saved under the original file names and one CSV row per run lists every epoch's
metric. What differs between experiments (generator loss, metric, LR schedule) is a `Recipe`.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from engine.epoch_progress import EpochProgress
from engine.evaluation import Evaluate, OriginalTestDraws
from reporting.generator_health import GeneratorHealth, summary
from reporting.run_logger import RunLogger
from runtime import distributed
from runtime.checkpoint import companion_path, file_sha256, load_weights, save_all_atomic
from runtime.eval_mode import eval_mode
from runtime.precision import Precision, maybe_compile, optimizer_options, place
from runtime.run_files import (
    ensure_appendable,
    ensure_writable,
    format_metrics,
    remove_stale_tmp,
    step_schedulers,
    write_config,
)
from runtime.run_state import GracefulStop, RunState, run_flags, state_due
from tables.csv_rows import append_csv_row, has_run

# hard-coded in every original DFAD script (docs/original-release.md#the-method)
STUDENT_STEPS_PER_ITERATION = 5
# hard-coded; --momentum is ignored (docs/original-release.md#hard-coded-momentum-and-odd-defaults)
STUDENT_MOMENTUM = 0.9


def discrepancy(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element of the raw logits
    (docs/original-release.md#the-method, #l1-on-raw-logits)."""
    return F.l1_loss(s, t)


def generator_loss_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Classification generator objective: -MAE (docs/original-release.md#the-method)."""
    return -discrepancy(s, t)


def generator_loss_log_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Segmentation generator objective: -log(MAE + 1) (docs/original-release.md#the-method).

    The log is not linear: under torchrun the MAE of the global batch goes into it (all-reduced,
    gradients included), so N processes compute the loss and gradient of one with the whole batch.
    """
    return -torch.log(distributed.global_mean(discrepancy(s, t)) + 1)


GeneratorLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FP32_PRECISION = Precision(None, torch.device("cpu"))  # the default: every step in plain fp32
# (teacher, student, generator, optimizer_S, optimizer_G, z, precision) -> losses, with at least
# "loss_S" and "loss_G": one step that trains both networks at once (the DAFL baseline).
JointStep = Callable[..., dict[str, torch.Tensor]]
# (student, generator, args, device) -> (optimizer_S, optimizer_G or None)
MakeOptimizers = Callable[[nn.Module, nn.Module, argparse.Namespace, torch.device],
                          tuple[Optimizer, Optimizer | None]]


@dataclass(frozen=True)
class Recipe:
    """What differs between the DFAD experiments; the loop itself is the same for all."""

    name: str  # log/DFAD-<name>.csv
    student_ckpt: str  # best student; the generator is saved as <stem>-generator.pt
    generator_loss: GeneratorLoss | None  # None: the generator is not trained
    evaluate: Evaluate
    metric: str  # the key of evaluate()'s result that selects the best student
    make_scheduler: Callable[[Optimizer], LRScheduler] | None = None
    # Classification scripts step the schedulers at the start of each epoch, segmentation
    # scripts at the end (docs/original-release.md#the-training-loop, #scheduler-timing).
    scheduler_at_epoch_start: bool = True
    # The baselines of Table 2 reuse the loop: KD trains the student only (generator_loss None,
    # the "generator" a fixed source of inputs), DAFL replaces both steps by one joint step.
    method: str = "DFAD"  # log/<method>-<name>.csv
    student_steps: int = STUDENT_STEPS_PER_ITERATION
    joint_step: JointStep | None = None
    make_optimizers: MakeOptimizers | None = None
    # Flags the row accepts for compatibility only: a resume may change them.
    compat_flags: tuple[str, ...] = ()

    @property
    def trains_generator(self) -> bool:
        """False for the KD baselines, whose "generator" is a fixed source of inputs."""
        return self.joint_step is not None or self.generator_loss is not None

    @property
    def generator_ckpt(self) -> str:
        return companion_path(self.student_ckpt, "generator")

    @property
    def state_path(self) -> str:
        """The resumable state, rewritten every `--save_every` epochs."""
        return companion_path(self.student_ckpt, "state")

    @property
    def csv_path(self) -> str:
        return f"log/{self.method}-{self.name}.csv"


def sample_noise(batch_size: int, nz: int, device: torch.device) -> torch.Tensor:
    """Fresh N(0, I) latents for every step
    (docs/original-release.md#step-order-and-fresh-noise)."""
    return torch.randn(batch_size, nz, 1, 1, device=device)


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Parameters take no gradient inside the block; gradients still flow through to the input."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def student_step(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_S: Optimizer,
    z: torch.Tensor,
    precision: Precision | None = None,
) -> torch.Tensor:
    """Imitation: one SGD step of the student towards the teacher on a generated batch."""
    precision = precision or FP32_PRECISION
    with precision.autocast():
        with torch.no_grad():
            # The generator is in train mode here, so its BN running stats update on every
            # student step (docs/original-release.md#batchnorm-side-effects). no_grad gives the same
            # values as the original's detach.
            x = generator(z)
            t = teacher(x)
        s = student(x)
    loss = discrepancy(s.float(), t.float())
    # Clearing first means nothing the generator step may have left can reach this update.
    optimizer_S.zero_grad(set_to_none=True)
    precision.backward_step(loss, optimizer_S, precision.scaler_S)
    return loss.detach()


def generator_step(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_G: Optimizer,
    z: torch.Tensor,
    generator_loss: GeneratorLoss,
    precision: Precision | None = None,
) -> torch.Tensor:
    """Generation: one Adam step of the generator towards samples where S and T disagree."""
    precision = precision or FP32_PRECISION
    optimizer_G.zero_grad(set_to_none=True)
    # The gradient reaches G through both networks, but the student's parameters collect none
    # (docs/original-release.md#gradient-hygiene). The student stays in train mode, so its BN
    # running stats absorb this batch too (docs/original-release.md#batchnorm-side-effects).
    with frozen(student), distributed.no_gradient_sync(student):
        with precision.autocast():
            x = generator(z)
            s, t = student(x), teacher(x)
        loss = generator_loss(s.float(), t.float())
        precision.backward_step(loss, optimizer_G, precision.scaler_G)
    return loss.detach()


def dfad_optimizers(student: nn.Module, generator: nn.Module, args: argparse.Namespace,
                    device: torch.device) -> tuple[Optimizer, Optimizer | None]:
    """The student's SGD and the generator's Adam; no generator optimizer when the generator
    has nothing to train (the KD baselines' fixed input sources)."""
    options = optimizer_options(args, device)
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, momentum=STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay, **options)
    trainable = [p for p in generator.parameters() if p.requires_grad]
    optimizer_G = Adam(trainable, lr=args.lr_G, **options) if trainable else None
    return optimizer_S, optimizer_G


@dataclass
class Distillation:
    """A DFAD run ready to train: its networks, what updates them, and where it stands."""

    args: argparse.Namespace
    recipe: Recipe
    device: torch.device
    # The plain modules: checkpoints and evaluation use them, so their keys never change.
    teacher: nn.Module
    student: nn.Module
    generator: nn.Module
    # What the steps call: compiled and/or DDP-wrapped views sharing the plain modules' weights.
    teacher_view: nn.Module
    student_view: nn.Module
    generator_view: nn.Module
    optimizer_S: Optimizer
    optimizer_G: Optimizer | None  # None: the KD baselines' fixed input sources
    schedulers: list[LRScheduler]
    precision: Precision
    health: GeneratorHealth | None  # rank 0 of a run that trains a generator
    state: RunState
    logger: RunLogger | None = None
    stop: GracefulStop = field(default_factory=GracefulStop)


def setup_distillation(
    args: argparse.Namespace,
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    recipe: Recipe,
    device: torch.device,
    test_loader: DataLoader | None,
    logger: RunLogger | None = None,
) -> Distillation:
    """Placement, `--stu_ckpt`, optimizers and schedulers, the generator health, `--resume`,
    then the `--compile` / DDP views; the DFAD run and benchmarks/benchmark.py both start here.

    `test_loader` None: no generator health (it needs real images for its reference).
    """
    distributed.local_batch(args.batch_size)
    place(args, device, student, generator, teacher)  # channels_last, or --original_numerics
    if args.stu_ckpt:
        load_weights(student, args.stu_ckpt)
        generator_path = companion_path(args.stu_ckpt, "generator")
        if Path(generator_path).is_file():
            load_weights(generator, generator_path)
        else:
            print(f"no generator checkpoint at {generator_path}: the generator starts fresh")
    optimizer_S, optimizer_G = (recipe.make_optimizers or dfad_optimizers)(
        student, generator, args, device)
    schedulers: list[LRScheduler] = []
    if args.scheduler and recipe.make_scheduler is not None:
        # The same schedule drives the generator's Adam too
        # (docs/original-release.md#scheduler-timing).
        schedulers = [recipe.make_scheduler(opt) for opt in (optimizer_S, optimizer_G)
                      if opt is not None]
    precision = Precision(args.amp, device)
    # Rank 0 only, like the evaluation: no collective call in it, so no rank waits for another.
    # Only a trained generator has a health to watch (not the KD baselines' fixed sources).
    health = (GeneratorHealth.from_args(args, test_loader)
              if distributed.is_main() and recipe.trains_generator and test_loader is not None
              else None)
    parts = {"student": student, "generator": generator, "optimizer_S": optimizer_S,
             "optimizer_G": optimizer_G, "precision": precision, "health": health}
    # The health's fixed latent batch and streaks go into the resume state too.
    state = RunState(recipe.state_path, args,
                     {name: obj for name, obj in parts.items() if obj is not None}, schedulers)
    if getattr(args, "ckpt", None) and Path(args.ckpt).is_file():  # a resume keeps its teacher
        state.teacher_sha256 = file_sha256(args.ckpt)
    # --momentum is accepted for compatibility only (STUDENT_MOMENTUM), so may change.
    state_file = state.resume(ignored=("momentum", *recipe.compat_flags))
    if state_file is not None and not state.finished:
        print(f"resumed from {state_file}: {state.epochs_done} epochs and "
              f"{state.iterations_done} iterations done, best {recipe.metric}={state.best:.4f}")
    return Distillation(
        args, recipe, device, teacher, student, generator,
        maybe_compile(teacher, args.compile),
        distributed.wrap(maybe_compile(student, args.compile), device, args.sync_bn),
        distributed.wrap(maybe_compile(generator, args.compile), device, args.sync_bn),
        optimizer_S, optimizer_G, schedulers, precision, health, state, logger)


def train_epoch(run: Distillation, epoch: int) -> tuple[dict[str, float], int]:
    """Iterations `run.state.iterations_done + 1`..`epoch_itrs` of [5 student steps,
    1 generator step] (the DAFL baseline: of its joint step).

    Returns the last losses and the number of iterations completed in this epoch, which is less
    than `epoch_itrs` when a stop was requested.
    """
    args, recipe, device = run.args, run.recipe, run.device
    teacher, student, generator = run.teacher_view, run.student_view, run.generator_view
    teacher.eval()
    student.train()
    generator.train()
    loss_S = loss_G = torch.zeros((), device=device)  # on the device: they are stacked
    logged = {"loss_S": 0.0, "loss_G": 0.0} if recipe.trains_generator else {"loss_S": 0.0}
    first = run.state.iterations_done + 1
    i = first - 1
    progress = EpochProgress(args.epoch_itrs, f"epoch {epoch}/{args.epochs}", args.log_interval,
                             run.stop, device, run.state.last_saved, done=i)
    for i in range(first, args.epoch_itrs + 1):
        at = f"at epoch {epoch}, iteration {i}"
        for k in range(1, recipe.student_steps + 1):
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            loss_S = student_step(teacher, student, generator, run.optimizer_S, z, run.precision)
            progress.watch(loss_S, f"student loss {at}, student step {k}")
        if recipe.joint_step is not None:
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            losses = recipe.joint_step(teacher, student, generator, run.optimizer_S,
                                       run.optimizer_G, z, run.precision)
            loss_S, loss_G = losses["loss_S"], losses["loss_G"]
            progress.watch(loss_S, f"student loss {at}")
            progress.watch(loss_G, f"generator loss {at}")
        elif recipe.generator_loss is not None:
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            loss_G = generator_step(teacher, student, generator, run.optimizer_G, z,
                                    recipe.generator_loss, run.precision)
            progress.watch(loss_G, f"generator loss {at}")
        if progress.log_point(i):
            logged = log_losses(run, epoch, i, loss_S, loss_G, progress.bar)
        if progress.advance():
            break
    progress.close()
    return logged, i


def log_losses(run: Distillation, epoch: int, i: int, loss_S: torch.Tensor,
               loss_G: torch.Tensor, bar: Any) -> dict[str, float]:
    """A log point: the global batch's losses to the console or progress bar and visdom."""
    args, logger = run.args, run.logger
    # Each rank's loss is that of its slice; their mean is the global batch's.
    mean_S, mean_G = distributed.global_mean(torch.stack([loss_S, loss_G])).tolist()
    trains_generator = run.recipe.trains_generator
    g_print = f"G_Loss: {mean_G:.6f} " if trains_generator else ""
    g_bar = f" loss_G={mean_G:.4f}" if trains_generator else ""
    if bar.disable:
        print(f"Train Epoch: {epoch} [{i}/{args.epoch_itrs} "
              f"({100 * i / args.epoch_itrs:.0f}%)]"
              f"\t{g_print}S_Loss: {mean_S:.6f}", flush=True)
    bar.set_postfix_str(f"loss_S={mean_S:.4f}{g_bar} "
                        f"{logger.summary if logger is not None else ''}", refresh=False)
    if logger is not None:
        logger.losses((epoch - 1) * args.epoch_itrs + i, mean_S,
                      mean_G if trains_generator else None)
    return {"loss_S": mean_S, "loss_G": mean_G} if trains_generator else {"loss_S": mean_S}


def evaluate(run: Distillation, epoch: int, test_loader: DataLoader
             ) -> tuple[dict[str, float], dict[str, Any]]:
    """Rank 0, after each epoch: the test metrics and the generator's health; a new best student
    and its generator are saved under the original names. The other ranks return nothing."""
    recipe = run.recipe
    # The test loader draws its seeds from the global RNG. By default forking keeps the training
    # stream independent of evaluation; --original_numerics draws what the original's test() did,
    # on every rank (docs/original-release.md#rng-across-evaluations).
    original = run.args.original_numerics
    draws = OriginalTestDraws(test_loader, run.args.nz if recipe.method == "DFAD" else None,
                              run.device)
    if not distributed.is_main():
        if original:
            draws.skip()
        return {}, {}
    with eval_mode(run.student, run.generator), (
            nullcontext() if original else torch.random.fork_rng(devices=[])):
        metrics = recipe.evaluate(run.student, draws if original else test_loader, run.device)
    health: dict[str, Any] = {}
    if run.health is not None:  # reporting/generator_health.py
        with eval_mode(run.teacher, run.student, run.generator):
            health = run.health.measure(run.teacher, run.student, run.generator, run.device)
        run.health.watch(epoch, health)
    if run.state.record(metrics[recipe.metric]):  # the pair is replaced both or neither
        save_all_atomic([(run.student.state_dict(), recipe.student_ckpt),
                         (run.generator.state_dict(), recipe.generator_ckpt)])
    return metrics, health


def report(run: Distillation, epoch: int, metrics: dict[str, float], health: dict[str, Any],
           losses: dict[str, float], seconds: float, test_loader: DataLoader) -> None:
    """Rank 0, after each epoch: one console line; visdom, the metrics file and sample PNGs."""
    metric, best = run.recipe.metric, run.state.best
    lr_S = run.optimizer_S.param_groups[0]["lr"]
    print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {metric}={best:.4f} | "
          f"lr_S={lr_S:.2e} | {format_metrics(losses)} | "
          f"{summary(health) + ' | ' if health else ''}{seconds:.1f}s", flush=True)
    if run.logger is not None:  # visdom, metrics file, sample PNGs (reporting/run_logger.py)
        run.logger.epoch(epoch, {**metrics, **losses, f"best_{metric}": best, "lr_S": lr_S,
                                 **health}, run.state.run_id)
        if health:
            run.logger.health(epoch, health)
        run.logger.samples(test_loader, run.device, run.student, run.teacher, run.generator)


def finished_before(state: RunState, recipe: Recipe, args: argparse.Namespace) -> None:
    """Say that a resumed run has nothing left to do; write its CSV row only when a kill came
    between its last state and its row."""
    done = f"finished before: {state.epochs_done} of {args.epochs} epochs"
    if has_run(recipe.csv_path, state.run_id):
        print(f"{done}, best {recipe.metric}={state.best:.4f}, its row is in {recipe.csv_path}: "
              "nothing to do (--epochs N trains it longer)")
    else:
        append_csv_row(recipe.csv_path, state.history, state.run_id, run_flags(args))
        print(f"{done}; its row was missing from {recipe.csv_path}: written")


def distill(
    args: argparse.Namespace,
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    test_loader: DataLoader,
    recipe: Recipe,
    device: torch.device,
    logger: RunLogger | None = None,
) -> list[float]:
    """The whole run: set-up, epochs, evaluation, checkpoints, the CSV row.

    After every `--save_every` epochs (and on SIGINT/SIGTERM, mid-epoch too) it writes
    `recipe.state_path`, from which `--resume` continues exactly. Returns the per-epoch metric
    list (the CSV row).
    Under torchrun every rank trains its slice of each batch; rank 0 evaluates and writes.
    """
    main = distributed.is_main()
    if main:  # before any training: a row that cannot be written is lost after the run
        ensure_writable(Path(recipe.student_ckpt).parent, Path(recipe.csv_path).parent)
        ensure_appendable(recipe.csv_path)
        remove_stale_tmp(recipe.student_ckpt, recipe.generator_ckpt, recipe.state_path)
    run = setup_distillation(args, teacher, student, generator, recipe, device, test_loader,
                             logger)
    state = run.state
    if args.test_only:
        metrics = recipe.evaluate(student, test_loader, device)
        print(f"Test: {format_metrics(metrics)}")
        return [metrics[recipe.metric]]
    if state.finished:  # a resume of a finished run writes nothing (but a row a kill lost)
        if main:
            finished_before(state, recipe, args)
        return state.history
    if main:
        write_config()
    with run.stop.installed():
        for epoch in range(state.epochs_done + 1, args.epochs + 1):
            start = time.perf_counter()
            if recipe.scheduler_at_epoch_start and state.iterations_done == 0:
                step_schedulers(run.schedulers)  # not again when resuming mid-epoch
            losses, done = train_epoch(run, epoch)
            if done < args.epoch_itrs:  # a stop was requested mid-epoch
                raise state.stopped_in_epoch(run.stop, epoch, done)
            metrics, health = evaluate(run, epoch, test_loader)
            if not recipe.scheduler_at_epoch_start:
                step_schedulers(run.schedulers)
            stopping = distributed.any_rank(run.stop.requested, device)
            state.end_epoch(epoch, save=state_due(args, epoch) or stopping)
            if main:
                report(run, epoch, metrics, health, losses, time.perf_counter() - start,
                       test_loader)
            if stopping and epoch < args.epochs:
                raise state.interrupted(run.stop, f"stopped after epoch {epoch}; state saved to "
                                                  f"{state.path}")
    if distributed.world_size() > 1:
        if not distributed.same_on_every_rank(student, device):
            raise RuntimeError("the ranks ended with different student weights")
        print(f"student weights identical on all {distributed.world_size()} ranks")
    if main:
        print(f"Best {recipe.metric}={state.best:.6f}")
        append_csv_row(recipe.csv_path, state.history, state.run_id, run_flags(args))
    return state.history
