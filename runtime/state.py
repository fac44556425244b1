"""Runs at epoch granularity (docs/stopping-and-resuming.md).

At each epoch end one state file is written atomically: weights, optimizers, schedulers, AMP
scaler, every RNG, the metric history, the best metric, the run's config. Ctrl-C, SIGTERM or
SIGKILL loses at most the epoch in progress (Python's default signal behaviour); `--resume`
continues from the last complete epoch and ends bit-identical to a run never stopped. The same
command run again never replaces what a run left: a finished run says where its results are,
a stopped one asks for `--resume`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from runtime import device as devices
from runtime.errors import UserError
from runtime.files import (
    companion_path,
    ensure_writable,
    file_sha256,
    load_tensors,
    lock_run,
    remove_stale_tmp,
    save_atomic,
    write_text_atomic,
)

# Flags that steer a run without changing its numbers: a resume may change them and a results
# row leaves them out (the teacher is compared by content), as it does the flags a script accepts
# for compatibility only (dest "ignored_<flag>"). Every other flag, a new one included, is part
# of what the run is: checked at resume, recorded in its row.
RUN_CONTROL = frozenset({
    "epochs", "resume", "test_only", "device", "no_cuda", "num_workers", "log_interval",
    "download", "data_root", "ckpt", "visdom_port", "visdom_server", "visdom_env", "no_visdom",
    "verbose", "save_img", "cache_images", "health_batch", "warn_entropy", "warn_diversity",
})


SIMPLE = (int, float, str, bool, type(None))
OPTIONAL = ("health",)  # parts a state may lack: --health_batch 0 measures none


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """Every flag, in values that JSON and torch.load(weights_only=True) read back: lists of
    plain values as lists, anything else (a Path, say) as its text."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v if isinstance(v, SIMPLE) else str(v)

    return {k: plain(v) for k, v in sorted(vars(args).items())}


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """What defines a run (its results row): every flag but the run-control ones, the epochs
    and the number of processes."""
    return {**{k: v for k, v in config_of(args).items()
               if k not in RUN_CONTROL and not k.startswith("ignored_")},
            "epochs": args.epochs, "processes": devices.world_size()}


def capture_rng() -> dict[str, Any]:
    """Every RNG a run draws from, in types torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}


def restore_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class RunState:
    """Where a run stands (epochs done, best, history, run id) and the objects its state file
    holds: `parts` (name -> anything with state_dict / load_state_dict) and the schedulers."""

    def __init__(self, path: str, args: argparse.Namespace, parts: dict[str, Any],
                 schedulers: list[LRScheduler], best_files: tuple[str, ...] = (),
                 teacher: str | None = None) -> None:
        self.path, self.args, self.parts, self.schedulers = path, args, parts, schedulers
        self.best_files = best_files  # what a run writes besides its state
        self.teacher_sha256 = file_sha256(teacher) if teacher else None
        self.epochs_done, self.best, self.history = 0, 0.0, []
        # unique even for two runs one process starts within a second (a notebook, the tests)
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{secrets.token_hex(2)}"

    def start(self) -> bool:
        """Resume, start, or refuse; False: the run finished before and nothing is written."""
        path = self.args.resume or self.path
        if self.args.resume and Path(self.path).exists() and Path(path) != Path(self.path):
            raise UserError(f"{self.path} holds another run's state: move it aside to resume "
                            f"from {path} here")
        if self.args.resume is None and not Path(path).is_file():
            left = [f for f in self.best_files if Path(f).is_file()]
            if left:
                raise UserError(f"{left[0]} is from an earlier run (no state file beside it): "
                                "move it aside to start a new run here")
            return True
        saved = load_tensors(path, "state file")
        if not isinstance(saved, dict) or "rng" not in saved or "epochs_done" not in saved:
            raise UserError(f"{path} is not a resumable state file (a plain checkpoint? use "
                            "--ckpt or --stu_ckpt)")
        self._check(saved, path)
        done, epochs = saved["epochs_done"], saved["config"].get("epochs", 0)
        if self.args.resume is not None and self.args.epochs < done:
            raise UserError(f"--epochs {self.args.epochs} is below the {done} epochs {path} has "
                            "done: a resume may train longer, never shorter")
        if done >= (self.args.epochs if self.args.resume is not None else epochs):
            print(f"finished before: {done} of {epochs} epochs, best {saved['best']:.4f} "
                  f"(run {saved['run_id']}, state {path}): nothing to do (--resume --epochs N "
                  "trains it longer)")
            self.epochs_done, self.best, self.history = done, saved["best"], saved["history"]
            return False
        if self.args.resume is None:
            raise UserError(f"{path} holds a stopped run ({done} of {epochs} epochs): add "
                            "--resume to continue it, or move it aside to start over")
        self._load(saved)
        print(f"resumed from {path}: {done} epochs done, best {self.best:.4f}")
        return True

    def _check(self, saved: dict[str, Any], path: str) -> None:
        """Is `saved` this run: this script's, these flags (the epochs aside), this teacher?"""
        missing = [name for name in self.parts if name not in saved and name not in OPTIONAL]
        if missing:
            raise UserError(f"{path} holds no {', '.join(missing)}: it is another script's "
                            "state; resume with this run's own -state.pt")
        changed = [f"--{k} {saved['config'].get(k)} -> {v}" for k, v in run_flags(self.args).items()
                   if k not in ("epochs", "processes") and saved["config"].get(k) != v]
        if changed:
            raise UserError(f"{path} belongs to a run with other flags ({', '.join(changed)}): "
                            "resume with the run's own flags, or move it aside (or run from "
                            "another folder) to start a new run")
        if saved.get("teacher_sha256") != self.teacher_sha256:
            raise UserError(f"--ckpt {self.args.ckpt} is not the teacher {path} was trained "
                            "with (its content differs): resume with the run's own teacher")

    def _load(self, saved: dict[str, Any]) -> None:
        for name, part in self.parts.items():
            if name in saved:  # an optional part (--health_batch changed) starts afresh
                part.load_state_dict(saved[name])
        for scheduler, state in zip(self.schedulers, saved["schedulers"], strict=True):
            scheduler.load_state_dict(state)
        self.epochs_done, self.best = saved["epochs_done"], saved["best"]
        self.history, self.run_id = list(saved["history"]), saved["run_id"]
        restore_rng(saved["rng"])

    def end_epoch(self, value: float) -> bool:
        """Record an epoch's metric; True when it is a new best (strictly, as the original)."""
        self.epochs_done += 1
        self.history.append(value)
        if value > self.best:
            self.best = value
            return True
        return False

    def save(self, *best: tuple[object, str]) -> None:
        """Rank 0 writes the state (the ranks hold the same weights), with a new best
        checkpoint's files in the same atomic group: no best file without its state."""
        if not devices.is_main():
            return
        state = {name: part.state_dict() for name, part in self.parts.items()}
        save_atomic(*best, ({**state, "schedulers": [s.state_dict() for s in self.schedulers],
                             "rng": capture_rng(), "config": config_of(self.args),
                             "epochs_done": self.epochs_done, "best": self.best,
                             "history": self.history, "run_id": self.run_id,
                             "teacher_sha256": self.teacher_sha256}, self.path))

    def write_config(self, path: str | Path) -> None:
        """Print the config once and add it to `path`, which keeps every run's by run id."""
        config = config_of(self.args)
        print("config: " + json.dumps(config))
        path = Path(path)
        try:
            runs = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            runs = {"unreadable earlier file": path.read_text(errors="replace")}
        if not isinstance(runs, dict) or "seed" in runs:  # one bare config: an older format
            runs = {"earlier run": runs}
        runs[self.run_id] = config
        write_text_atomic(path, json.dumps(runs, indent=2) + "\n")


def begin(state: RunState, name: str) -> bool:
    """Before the first epoch: the run's lock (`log/<name>.lock`), then start, resume or refuse
    (`RunState.start`), then the config. False: the run finished before; nothing is written."""
    folder = Path(state.path).parent
    if devices.is_main():
        ensure_writable(folder, "log")
        lock_run(f"log/{name}.lock")
        best = [*state.best_files, *(companion_path(f, "generator") for f in state.best_files)]
        remove_stale_tmp(state.path, *best)
    if not state.start():
        return False
    if devices.is_main():
        state.write_config(f"log/{name}.config.json")
    elif state.epochs_done:  # a resume: rank 0's stream was saved, the others start new ones
        devices.seed_everything(state.args.seed + devices.rank() * 1_000_003 + state.epochs_done)
    return True


def step_schedulers(schedulers: list[LRScheduler]) -> None:
    """The classification scripts step before the epoch's first optimizer step, on purpose
    (docs/original-release.md#the-training-loop): torch's hint about it is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        for scheduler in schedulers:
            scheduler.step()
