"""Resumable runs (not in the original): the run's progress, state files, RNG capture, and
graceful stops; one `RunState` serves the DFAD loop and the teacher loop.

A state file holds everything a run needs to continue exactly where it stopped: the networks,
optimizers, schedulers, progress counters, the metric history and every RNG. On the CPU a resumed
run is bit-identical to one that was never interrupted.
"""
from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from runtime import distributed
from runtime.checkpoint import load_tensors, save_atomic
from runtime.errors import UserError

# Flags that must not change between a run and its resumption (the epoch count may grow).
FIXED_FLAGS = ("dataset", "model", "batch_size", "epoch_itrs", "nz", "lr", "lr_S", "lr_G",
               "weight_decay", "momentum", "scheduler", "step_size", "seed", "num_classes", "amp")


# What defines a run in its CSV row (get_results.py groups by them, the seed aside): the flags
# that may not change on resume, the epochs and the BatchNorm statistics.
RUN_FLAGS = (*FIXED_FLAGS, "epochs", "sync_bn", "ckpt")


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The defining flags this script has, and the number of processes (torchrun)."""
    flags = {k: getattr(args, k) for k in RUN_FLAGS if hasattr(args, k)}
    return {**flags, "processes": distributed.world_size()}


def new_run_id() -> str:
    """When and by which process a run started: unique on a machine, sorts by time."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


class Interrupted(Exception):
    """A SIGINT/SIGTERM arrived; the state is saved and the run exits with 128 + signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class NonFiniteLoss(UserError):
    """A loss became NaN or infinite: stop before it spoils the saved state."""


def capture_rng() -> dict[str, Any]:
    """Every RNG a run draws from, in types that torch.load(weights_only=True) accepts.

    Of the GPUs only the current device's generator: the one this process draws from (under
    torchrun each rank's own GPU, whose stream is the same on every rank: same seed, same draws);
    none when this process has not used CUDA (a `--device cpu` run on a GPU host), whose
    generators are still as seeded: asking for their state would open a CUDA context.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
    }


def saved_cuda_rng(saved: torch.Tensor | Sequence[torch.Tensor] | None) -> torch.Tensor | None:
    """The saved state of the generator the run drew from. Older state files hold a list, every
    visible GPU's state as rank 0 saw it: its first entry is cuda:0's, the one rank 0 (and a
    single process) drew from."""
    if isinstance(saved, torch.Tensor) or saved is None:
        return saved
    return saved[0] if len(saved) else None


def restore_rng(state: Mapping[str, Any]) -> None:
    """Puts every RNG back; on every rank, the GPU state goes to this rank's current device."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = saved_cuda_rng(state["cuda"])
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)


def state_of(args: argparse.Namespace, **parts: Any) -> dict[str, Any]:
    """A state file's content; modules, optimizers and schedulers go in as state_dicts (their
    live tensors: copy with `cpu_copy` to keep it while training goes on)."""
    state = {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in parts.items()}
    state["config"] = {k: v for k, v in vars(args).items()
                       if isinstance(v, (int, float, str, bool, type(None)))}
    state["rng"] = capture_rng()
    return state


def cpu_copy(obj: Any) -> Any:
    """A copy of nested dicts, lists and tuples whose tensors are cloned to host memory."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def state_due(args: argparse.Namespace, epoch: int) -> bool:
    """`--save_every N`: the state is written after every N-th epoch and after the last one."""
    return epoch % args.save_every == 0 or epoch == args.epochs


def load_state(path: str | Path, args: argparse.Namespace,
               ignored: Collection[str] = (), parts: Collection[str] = ()) -> dict[str, Any]:
    """Read a state file and check that the run it belongs to matches these flags.

    `ignored`: flags the script accepts for compatibility only; changing them changes nothing.
    `parts`: what the file must hold (checked first: another script's state differs in both).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--resume {path} is a directory: pass its -state.pt file")
    if not path.is_file():
        raise UserError(f"no resumable state at {path}: --resume needs the -state.pt file "
                        "a run writes after each epoch (or pass its path: --resume PATH)")
    state = load_tensors(path, "state file")
    if not isinstance(state, dict) or "config" not in state or "rng" not in state:
        raise UserError(f"{path} is not a resumable state (a plain checkpoint? use --ckpt)")
    missing = [name for name in parts if name not in state and name not in OPTIONAL_PARTS]
    if missing:
        kind = ("a teacher's state (train_teacher.py --resume takes it)" if "model" in state
                else "a DFAD run's state (a DFAD script's --resume takes it)"
                if "student" in state else "another script's state")
        raise UserError(f"{path} holds no {', '.join(missing)}: it is {kind}; resume with this "
                        "run's own -state.pt")
    changed = [f"--{k} {state['config'][k]} -> {getattr(args, k)}" for k in FIXED_FLAGS
               if k not in ignored and k in state["config"]
               and getattr(args, k, None) != state["config"][k]]
    if changed:
        raise UserError(f"{path} belongs to a run with other flags ({', '.join(changed)}): "
                        "resume with the run's own flags")
    return state


def check_resumable(state: Mapping[str, Any], path: str | Path, args: argparse.Namespace,
                    teacher_sha256: str | None) -> None:
    """What a resume may change besides the flags: `--epochs` may grow, never below what is done;
    the teacher must be the same file content (it may have moved). State files from before the
    teacher hash carry none and resume as before."""
    done = state["epochs_done"]
    if args.epochs < done:
        raise UserError(f"--epochs {args.epochs} is below the {done} epochs {path} has done: "
                        f"resume with --epochs {done} or more (a resume may train longer, "
                        "never shorter)")
    saved = state.get("teacher_sha256")
    if saved and teacher_sha256 and saved != teacher_sha256:
        raise UserError(f"--ckpt {getattr(args, 'ckpt', '')} is not the teacher {path} was "
                        "trained with (its content differs): resume with the run's own teacher")


def resume_path(args: argparse.Namespace, own_state: str) -> str | None:
    """`--resume` alone means the run's own state file; `--resume PATH` names one."""
    if args.resume is None:
        return None
    return own_state if args.resume == "" else args.resume


# Param-group keys that choose how an optimizer computes, not what: a run keeps its own.
OPTIMIZER_IMPLEMENTATION = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer_state(optimizer: Optimizer, saved: Mapping[str, Any]) -> None:
    """`Optimizer.load_state_dict` restores every param-group key, the implementation switches
    included: a CPU state resumed on CUDA would run unfused (and a GradScaler hand its scale to
    a step that no longer takes it), `--original_numerics` given at a resume would not bring the
    plain loop back. So the saved groups take this run's switches before they are loaded (which
    also places the state, e.g. Adam's step counter, where the run's implementation wants it)."""
    groups = saved["param_groups"]
    if len(groups) == len(optimizer.param_groups):  # else load_state_dict says what is wrong
        groups = [{**group, **{k: own[k] for k in OPTIMIZER_IMPLEMENTATION if k in own}}
                  for group, own in zip(groups, optimizer.param_groups, strict=True)]
    optimizer.load_state_dict({**saved, "param_groups": groups})


# Objects a state file may lack: files from before --amp have no "precision", from before the
# generator health no "health" (its latent batch is then drawn again from the same seed).
OPTIONAL_PARTS = ("precision", "health")


@dataclass
class RunState:
    """Where a run stands (epochs and iterations done, best metric, per-epoch history, run id)
    and the objects whose state its file holds; saved atomically, resumed exactly.

    A stop saves the run at the last point from which it can continue bit for bit. The DFAD loop
    draws everything from the run's RNGs, so it resumes mid-epoch, after the last iteration done
    (`iterations_done`). The teacher loop's epoch is a pass of a DataLoader, which draws the
    shuffle and the workers' seeds when the pass starts and whose workers read batches ahead:
    a pass cannot be entered half-way with the same batches and augmentations, so a stop
    discards the partial epoch and the file holds the state after the last complete one
    (`mid_epoch=False`). Both loops end an epoch with `end_epoch` and a stop inside one with
    `stopped_in_epoch`.
    """

    path: str  # the run's own state file, <checkpoint stem>-state.pt
    args: argparse.Namespace
    parts: dict[str, Any]  # name -> an object with state_dict() / load_state_dict()
    schedulers: list[LRScheduler]
    epochs_done: int = 0
    iterations_done: int = 0  # of the next epoch, when a stop came mid-epoch (DFAD)
    best: float = 0.0
    history: list[float] = field(default_factory=list)
    run_id: str = field(default_factory=new_run_id)
    # sha256 of the teacher file (DFAD): part of what a resume must not change, by content.
    teacher_sha256: str | None = None
    # The state file this run resumed from or last wrote: the one a NaN stop may point at.
    last_saved: str = ""
    mid_epoch: bool = True  # False: a stop falls back to the last complete epoch (teacher)
    # mid_epoch False, between --save_every writes: the last complete epoch's state in host
    # memory, written if a stop comes first.
    _kept: dict[str, Any] | None = field(default=None, repr=False)

    def resume(self, ignored: Collection[str] = ()) -> str | None:
        """With `--resume`: load the state file it names and return its path; else None.

        `ignored`: flags accepted for compatibility only, which a resume may change.
        """
        state_file = resume_path(self.args, self.path)
        if state_file is None:
            return None
        state = load_state(state_file, self.args, ignored, self.parts)
        for name, obj in self.parts.items():
            if isinstance(obj, Optimizer) and name in state:
                load_optimizer_state(obj, state[name])
            elif name in state:
                obj.load_state_dict(state[name])
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        check_resumable(state, state_file, self.args, self.teacher_sha256)
        self.epochs_done = state["epochs_done"]
        self.iterations_done = state.get("iterations_done", 0)  # none in teacher state files
        self.best = state["best"]
        self.history = list(state.get("history", []))
        self.run_id = state.get("run_id", self.run_id)  # state files from before run ids
        restore_rng(state["rng"])
        self.last_saved = state_file
        return state_file

    @property
    def finished(self) -> bool:
        """Every epoch of `--epochs` done: a resume has nothing left to train."""
        return self.epochs_done >= self.args.epochs and self.iterations_done == 0

    def record(self, value: float) -> bool:
        """An epoch's metric; True when it is a new best (strictly better, as the original)."""
        self.history.append(value)
        if value > self.best:
            self.best = value
            return True
        return False

    def contents(self) -> dict[str, Any]:
        """The state file's content now (live tensors: `cpu_copy` it to keep it)."""
        return state_of(self.args, **self.parts, epochs_done=self.epochs_done,
                        iterations_done=self.iterations_done, best=self.best,
                        history=self.history, run_id=self.run_id,
                        **({"teacher_sha256": self.teacher_sha256} if self.teacher_sha256 else {}),
                        schedulers=[s.state_dict() for s in self.schedulers])

    def save(self) -> None:
        """Atomically write the state file (rank 0 only: the ranks hold the same state)."""
        if distributed.is_main():
            save_atomic(self.contents(), self.path)
        self.last_saved = self.path

    def end_epoch(self, epoch: int, save: bool) -> None:
        """Epoch `epoch` is complete: write the state when `save` (`--save_every`, or a stop);
        else, for a loop that cannot resume mid-epoch, keep a host copy for a stop to write."""
        self.epochs_done, self.iterations_done = epoch, 0
        self._kept = None
        if save:
            self.save()
        elif not self.mid_epoch:
            self._kept = cpu_copy(self.contents())

    def stopped_in_epoch(self, stop: GracefulStop, epoch: int, iterations: int = 0
                         ) -> Interrupted:
        """A stop inside epoch `epoch`, after `iterations` of it (DFAD): save what can be
        resumed (see the class docstring) and return the exception that ends the run."""
        if self.mid_epoch:
            self.iterations_done = iterations
            self.save()
            return self.interrupted(stop, f"stopped at epoch {epoch}, iteration {iterations}; "
                                          f"state saved to {self.path}")
        if self._kept is not None and distributed.is_main():
            save_atomic(self._kept, self.path)
        return self.interrupted(stop, f"stopped during epoch {epoch}; {self.path} holds the "
                                      f"state after epoch {epoch - 1}")

    def interrupted(self, stop: GracefulStop, where: str) -> Interrupted:
        """The exception that ends a stopped run, with the command that resumes it."""
        return Interrupted(stop.signum or signal.SIGTERM,
                           f"{where}; resume with:\n  {resume_command(self.path)}")


def launcher(env: Mapping[str, str] | None = None) -> list[str]:
    """How this process was started: the interpreter that runs it (a venv's, not a bare
    `python`), or the torchrun command that gives the same processes (rebuilt from the
    environment torchrun sets for its workers), through that interpreter too."""
    env = os.environ if env is None else env
    if int(env.get("WORLD_SIZE", "1")) <= 1:
        return [sys.executable]
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    per_node = env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])
    nodes = int(env.get("GROUP_WORLD_SIZE", "1"))
    if nodes == 1:
        return [*torchrun, "--standalone", "--nproc_per_node", per_node]
    # The rendezvous endpoint is not in the workers' environment: the user fills it in.
    return [*torchrun, "--nnodes", str(nodes), "--nproc_per_node", per_node,
            "--rdzv_backend", "c10d", "--rdzv_endpoint", "HOST:PORT"]


def resume_command(state_path: str, argv: Sequence[str] | None = None,
                   env: Mapping[str, str] | None = None) -> str:
    """The exact command line that continues this run from the folder it started in (on every
    node, for several nodes): the script by its absolute path."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).is_file():
        argv[0] = str(Path(argv[0]).resolve())
    kept: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--resume":
            skip = i + 1 < len(argv) and not argv[i + 1].startswith("-")
            continue
        if arg.startswith("--resume="):
            continue
        kept.append(arg)
    launch = launcher(env)
    command = shlex.join([*launch, *kept, "--resume", state_path])
    if "HOST:PORT" in launch:
        command += "  # on every node; HOST:PORT: the run's --rdzv_endpoint"
    return command


class GracefulStop:
    """Turns the first SIGINT/SIGTERM into a flag the loop checks between steps; a second
    SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise Interrupted(signum, "second Ctrl-C: stopped at once; the state file holds the "
                                      "last state saved before it (resume with --resume)")
        self.signum = signum
        when = ("at the next log point, with the other ranks" if distributed.world_size() > 1
                else "after the current step")
        if distributed.is_main():  # torchrun signals every rank: one line, not one per rank
            print(f"\n{signal.Signals(signum).name} received: stopping {when} "
                  "(Ctrl-C again to stop now)", file=sys.stderr, flush=True)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def agreed(self, device: torch.device, sync_point: bool) -> bool:
        """Whether every rank stops now. Alone: after any step. Under torchrun the ranks agree
        only at `sync_point`s (log intervals, epoch ends): agreeing costs a collective and a
        host sync, and every rank must stop at the same step."""
        if distributed.world_size() == 1:
            return self.requested
        return sync_point and distributed.any_rank(self.requested, device)

    @contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def check_finite(losses: Sequence[torch.Tensor], labels: Sequence[str], state_path: str) -> None:
    """One host sync for a batch of step losses; names the first non-finite one. Under torchrun
    the ranks agree on it in the same call (one small all-reduce), so a NaN in one rank's slice
    stops every rank with the same line instead of leaving the others in the next collective."""
    if not losses:
        return
    values = torch.stack([v.detach().float().reshape(()) for v in losses])
    bad = ~torch.isfinite(values)
    local = int(bad.nonzero()[0, 0]) if bool(bad.any()) else len(values)
    i, rank = distributed.first_over_ranks(local, values.device)
    if i == len(values):
        return
    if state_path and Path(state_path).is_file():
        where = f"the last good state is {state_path} (lower the learning rate, or --resume " \
                "from it)"
    else:
        where = "no state was saved yet (lower the learning rate and start again)"
    what = (f"is {values[i].item()}" if distributed.world_size() == 1
            else f"is not finite on rank {rank}")
    raise NonFiniteLoss(f"{labels[i]} {what}: stopping; {where}")
