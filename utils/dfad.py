"""The adversarial distillation loop of DFAD (SPEC §1, §3.1), shared by every DFAD_*.py script.

Per iteration: 5 student steps on detached generator samples (imitation), then 1 generator step
that maximises the student-teacher discrepancy through both networks (generation). Every
`epoch_itrs` iterations the student is evaluated on the real test set; the best student and its
generator are saved under the original file names and one CSV row per run lists every epoch's
metric. What differs between experiments (generator loss, metric, LR schedule) is a `Recipe`.
"""
from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from utils import distributed
from utils.accel import Precision, maybe_compile
from utils.checkpoint import companion_path, load_weights, save_atomic
from utils.eval_mode import eval_mode
from utils.generator_health import GeneratorHealth, summary
from utils.misc import append_csv_row, ensure_writable, format_metrics, step_schedulers
from utils.numerics import optimizer_options, place
from utils.progress import progress_bar
from utils.run_logger import RunLogger
from utils.run_state import (
    GracefulStop,
    Interrupted,
    check_finite,
    load_state,
    new_run_id,
    restore_rng,
    resume_command,
    resume_path,
    run_flags,
    save_state,
    state_due,
)

STUDENT_STEPS_PER_ITERATION = 5  # hard-coded in every original DFAD script (SPEC §1)
STUDENT_MOMENTUM = 0.9  # hard-coded; --momentum is ignored (SPEC §10.16)


def discrepancy(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element of the raw logits (SPEC §1, §10.8)."""
    return F.l1_loss(s, t)


def generator_loss_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Classification generator objective: -MAE (SPEC §1)."""
    return -discrepancy(s, t)


def generator_loss_log_mae(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Segmentation generator objective: -log(MAE + 1) (SPEC §1).

    The log is not linear: under torchrun the MAE of the global batch goes into it (all-reduced,
    gradients included), so N processes compute the loss and gradient of one with the whole batch.
    """
    return -torch.log(distributed.global_mean(discrepancy(s, t)) + 1)


GeneratorLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FP32 = Precision(None, torch.device("cpu"))  # the default: every step in plain fp32
Evaluate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]
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
    # scripts at the end (SPEC §3.1, §10.15).
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
    """Fresh N(0, I) latents for every step (SPEC §10.10)."""
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
    precision = precision or FP32
    with precision.autocast():
        with torch.no_grad():
            # The generator is in train mode here, so its BN running stats update on every
            # student step (SPEC §10.11). no_grad gives the same values as the original's detach.
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
    precision = precision or FP32
    optimizer_G.zero_grad(set_to_none=True)
    # The gradient reaches G through both networks, but the student's parameters collect none
    # (SPEC §10.12). The student stays in train mode, so its BN running stats absorb this batch
    # too (SPEC §10.11).
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


def train_epoch(
    teacher: nn.Module,
    student: nn.Module,
    generator: nn.Module,
    optimizer_S: Optimizer,
    optimizer_G: Optimizer,
    recipe: Recipe,
    args: argparse.Namespace,
    epoch: int,
    device: torch.device,
    first_iteration: int = 1,
    stop: GracefulStop | None = None,
    logger: RunLogger | None = None,
    precision: Precision | None = None,
) -> tuple[dict[str, float], int]:
    """Iterations `first_iteration`..`epoch_itrs` of [5 student steps, 1 generator step].

    Returns the last losses and the number of iterations completed in this epoch, which is less
    than `epoch_itrs` when a stop was requested.
    """
    teacher.eval()
    student.train()
    generator.train()
    loss_S = loss_G = torch.zeros((), device=device)  # on the device: they are stacked
    trains_generator = recipe.trains_generator
    # over the global batch, read at log points
    logged = {"loss_S": 0.0, "loss_G": 0.0} if trains_generator else {"loss_S": 0.0}
    pending: list[torch.Tensor] = []  # checked for NaN/inf at log points: no per-step host sync
    labels: list[str] = []
    i = first_iteration - 1
    bar = progress_bar(args.epoch_itrs, f"epoch {epoch}/{args.epochs}", initial=i)
    for i in range(first_iteration, args.epoch_itrs + 1):
        for k in range(1, recipe.student_steps + 1):
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            loss_S = student_step(teacher, student, generator, optimizer_S, z, precision)
            pending.append(loss_S)
            labels.append(f"student loss at epoch {epoch}, iteration {i}, student step {k}")
        if recipe.joint_step is not None:
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            losses = recipe.joint_step(teacher, student, generator, optimizer_S, optimizer_G, z,
                                       precision)
            loss_S, loss_G = losses["loss_S"], losses["loss_G"]
            pending += [loss_S, loss_G]
            labels += [f"student loss at epoch {epoch}, iteration {i}",
                       f"generator loss at epoch {epoch}, iteration {i}"]
        elif recipe.generator_loss is not None:
            z = distributed.shard(sample_noise(args.batch_size, args.nz, device))
            loss_G = generator_step(teacher, student, generator, optimizer_G, z,
                                    recipe.generator_loss, precision)
            pending.append(loss_G)
            labels.append(f"generator loss at epoch {epoch}, iteration {i}")
        log_point = i % args.log_interval == 0 or i == args.epoch_itrs
        stopping = stop is not None and stop.agreed(device, log_point)
        if log_point or stopping:
            check_finite(pending, labels, recipe.state_path)
            pending.clear()
            labels.clear()
            # Each rank's loss is that of its slice; their mean is the global batch's.
            mean_S, mean_G = distributed.global_mean(torch.stack([loss_S, loss_G])).tolist()
            logged = {"loss_S": mean_S, "loss_G": mean_G} if trains_generator else {
                "loss_S": mean_S}
            g_print = f"G_Loss: {mean_G:.6f} " if trains_generator else ""
            g_bar = f" loss_G={mean_G:.4f}" if trains_generator else ""
            if bar.disable:
                print(f"Train Epoch: {epoch} [{i}/{args.epoch_itrs} "
                      f"({100 * i / args.epoch_itrs:.0f}%)]"
                      f"\t{g_print}S_Loss: {mean_S:.6f}", flush=True)
            bar.set_postfix_str(f"loss_S={mean_S:.4f}{g_bar} "
                                f"{logger.summary if logger is not None else ''}", refresh=False)
            if logger is not None:
                logger.losses((epoch - 1) * args.epoch_itrs + i, mean_S, logged.get("loss_G"))
        bar.update()
        if stopping:
            break
    bar.close()
    return logged, i


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
    """The whole run: optimizers, schedulers, epochs, evaluation, checkpoints, the CSV row.

    After every `--save_every` epochs (and on SIGINT/SIGTERM) it writes `recipe.state_path`,
    from which `--resume` continues exactly. Returns the per-epoch metric list (the CSV row).
    Under torchrun every rank trains its slice of each batch; rank 0 evaluates and writes.
    """
    main = distributed.is_main()
    if main:
        ensure_writable(Path(recipe.student_ckpt).parent, Path(recipe.csv_path).parent)
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
        # The same schedule drives the generator's Adam too (SPEC §10.15).
        schedulers = [recipe.make_scheduler(opt) for opt in (optimizer_S, optimizer_G)
                      if opt is not None]
    precision = Precision(getattr(args, "amp", "off"), device)

    if args.test_only:
        metrics = recipe.evaluate(student, test_loader, device)
        print(f"Test: {format_metrics(metrics)}")
        return [metrics[recipe.metric]]

    parts = {"student": student, "generator": generator, "optimizer_S": optimizer_S,
             "optimizer_G": optimizer_G, "precision": precision}
    parts = {name: obj for name, obj in parts.items() if obj is not None}
    # Rank 0 only, like the evaluation: no collective call in it, so no rank waits for another.
    # Only a trained generator has a health to watch (not the KD baselines' fixed sources).
    health = (GeneratorHealth.from_args(args, test_loader) if main and recipe.trains_generator
              else None)
    if health is not None:
        parts["health"] = health  # its fixed latent batch and streaks go into the resume state
    epochs_done, iterations_done, best, history = 0, 0, 0.0, []
    run_id = new_run_id()
    state_file = resume_path(args, recipe.state_path)
    if state_file is not None:
        # --momentum is accepted for compatibility only (STUDENT_MOMENTUM), so may change.
        state = load_state(state_file, args, ignored=("momentum", *recipe.compat_flags))
        for name, obj in parts.items():
            # State files from before --amp have no "precision"; from before the generator
            # health no "health" (its batch is then drawn again from the same seed).
            if name in state:
                obj.load_state_dict(state[name])
        for scheduler, saved in zip(schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        epochs_done, iterations_done = state["epochs_done"], state["iterations_done"]
        best, history = state["best"], list(state["history"])
        run_id = state.get("run_id", run_id)  # state files from before run ids have none
        restore_rng(state["rng"])
        print(f"resumed from {state_file}: {epochs_done} epochs and {iterations_done} "
              f"iterations done, best {recipe.metric}={best:.4f}")
    if logger is not None:  # the metrics file's lines name the run as its CSV row does
        logger.run_id = run_id

    def save(epochs: int, iterations: int) -> None:
        if main:
            save_state(recipe.state_path, args, **parts, epochs_done=epochs,
                       iterations_done=iterations, best=best, history=history, run_id=run_id,
                       schedulers=[s.state_dict() for s in schedulers])

    # What the steps call: compiled and/or DDP-wrapped views sharing the plain modules' weights.
    # Checkpoints and evaluation use the plain modules, so their keys never change.
    compile_ = getattr(args, "compile", False)
    sync_bn = getattr(args, "sync_bn", False)
    train_teacher = maybe_compile(teacher, compile_)
    train_student = distributed.wrap(maybe_compile(student, compile_), device, sync_bn)
    train_generator = distributed.wrap(maybe_compile(generator, compile_), device, sync_bn)
    stop = GracefulStop()
    with stop.installed():
        for epoch in range(epochs_done + 1, args.epochs + 1):
            start = time.perf_counter()
            resuming_mid_epoch = iterations_done > 0
            if recipe.scheduler_at_epoch_start and not resuming_mid_epoch:
                step_schedulers(schedulers)
            losses, done = train_epoch(train_teacher, train_student, train_generator,
                                       optimizer_S, optimizer_G, recipe, args, epoch, device,
                                       iterations_done + 1, stop, logger, precision)
            iterations_done = 0
            if done < args.epoch_itrs:  # a stop was requested mid-epoch
                save(epoch - 1, done)
                raise Interrupted(stop.signum or signal.SIGTERM,
                                  f"stopped at epoch {epoch}, iteration {done}; state saved to "
                                  f"{recipe.state_path}; resume with:\n  "
                                  f"{resume_command(recipe.state_path)}")
            if main:
                # The test loader draws its seed from the global RNG: forking keeps the training
                # stream independent of evaluation, and every rank's stream in step.
                with eval_mode(student, generator), torch.random.fork_rng(devices=[]):
                    metrics = recipe.evaluate(student, test_loader, device)
                gen = {}
                if health is not None:  # utils/generator_health.py
                    with eval_mode(teacher, student, generator):
                        gen = health.measure(teacher, student, generator, device)
                    health.watch(epoch, gen)
                value = metrics[recipe.metric]
                history.append(value)
                if value > best:  # strictly better, as the original
                    best = value
                    save_atomic(student.state_dict(), recipe.student_ckpt)
                    save_atomic(generator.state_dict(), recipe.generator_ckpt)
            if not recipe.scheduler_at_epoch_start:
                step_schedulers(schedulers)
            stopping = distributed.any_rank(stop.requested, device)
            if state_due(args, epoch) or stopping:
                save(epoch, 0)
            if main:
                print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {recipe.metric}="
                      f"{best:.4f} | lr_S={optimizer_S.param_groups[0]['lr']:.2e} | "
                      f"{format_metrics(losses)} | {summary(gen) + ' | ' if gen else ''}"
                      f"{time.perf_counter() - start:.1f}s", flush=True)
                if logger is not None:  # visdom, metrics file, sample PNGs (utils/run_logger.py)
                    logger.epoch(epoch, {**metrics, **losses, f"best_{recipe.metric}": best,
                                         "lr_S": optimizer_S.param_groups[0]["lr"], **gen})
                    if gen:
                        logger.health(epoch, gen)
                    logger.samples(test_loader, device, student, teacher, generator)
            if stopping and epoch < args.epochs:
                raise Interrupted(stop.signum or signal.SIGTERM,
                                  f"stopped after epoch {epoch}; state saved to "
                                  f"{recipe.state_path}; resume with:\n  "
                                  f"{resume_command(recipe.state_path)}")
    if distributed.world_size() > 1:
        if not distributed.same_on_every_rank(student, device):
            raise RuntimeError("the ranks ended with different student weights")
        print(f"student weights identical on all {distributed.world_size()} ranks")
    if main:
        print(f"Best {recipe.metric}={best:.6f}")
        append_csv_row(recipe.csv_path, history, run_id, run_flags(args))
    return history
