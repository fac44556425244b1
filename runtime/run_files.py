"""Run bookkeeping shared by the entry scripts: output folders, the run's lock and config dump,
scheduler steps and metric formatting."""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from torch.optim.lr_scheduler import LRScheduler

from runtime import distributed
from runtime.checkpoint import tmp_pattern
from runtime.errors import UserError

# This process's run: the locks it holds (path -> open descriptor, released when the process
# ends, however it ends) and the config it writes once its set-up has succeeded.
_LOCKS: dict[Path, int] = {}
_PENDING_CONFIG: dict[Path, str] = {}


def ensure_writable(*folders: str | Path) -> None:
    """Fail at start, in one line, when an output folder cannot be created or written."""
    for folder in folders:
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise UserError(f"cannot write to the output folder {folder}/ ({err.strerror}): "
                            "run from a folder where checkpoint/ and log/ can be written") from err


def ensure_appendable(path: str | Path) -> None:
    """The results CSV, checked at start: a row that cannot be written is lost after the run."""
    path = Path(path)
    if path.is_dir() or (path.exists() and not os.access(path, os.W_OK)):
        what = "is a directory" if path.is_dir() else "is not writable"
        raise UserError(f"cannot write results to {path}: it {what} (move it aside, or run "
                        "from another folder)")


def lock_run(path: str | Path) -> None:
    """Hold an advisory lock on `path` for as long as this process runs; a second run that would
    write the same files stops at once, naming the run that holds it.

    A POSIX record lock (lockf), not flock: it belongs to this process alone and dies with it, so
    a killed run never blocks the next, even while its forked data-loader workers, which share
    the descriptor but not the lock, are still winding down."""
    path = Path(path).absolute()
    if path in _LOCKS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"another run is writing this run's files ({holder}; it holds {path}): "
                        "wait for it to finish, stop it (it saves a state you can --resume), "
                        "or run from another folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {shlex.join([sys.executable, *sys.argv])}\n".encode())
    _LOCKS[path] = fd


def dump_config(args: argparse.Namespace, path: str | Path) -> None:
    """Print the full config once; take the run's lock (`log/<run>.lock`: the run's logs and
    checkpoints are named after it); the JSON next to the logs is written by `write_config`."""
    if not distributed.is_main():
        return
    config = vars(args)
    print("config: " + json.dumps(config, sort_keys=True))
    ensure_writable(Path(path).parent)
    path = Path(path).absolute()  # the folder the run started in, whatever it does later
    lock_run(path.with_name(path.name.removesuffix(".config.json") + ".lock"))
    _PENDING_CONFIG[path] = json.dumps(config, indent=2, sort_keys=True) + "\n"


def write_config() -> None:
    """Write the config `dump_config` printed, once the run's set-up has succeeded (atomically):
    a start that fails (a missing data set, a wrong teacher) leaves the config of the run
    already in the folder as it was."""
    for path, text in _PENDING_CONFIG.items():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    _PENDING_CONFIG.clear()


def remove_stale_tmp(*paths: str | Path) -> None:
    """Temporary files of saves a kill interrupted (runtime/checkpoint.py): removed at the next
    start, which holds the run's lock, so no live save's file is touched."""
    stale = [tmp for path in paths for tmp in Path(path).parent.glob(tmp_pattern(path))]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    if stale:
        print(f"removed {len(stale)} temporary file(s) an interrupted save left: "
              f"{', '.join(str(t) for t in stale)}")


def step_schedulers(schedulers: Sequence[LRScheduler]) -> None:
    """Step LR schedulers; the original steps them before the epoch's first optimizer step."""
    with warnings.catch_warnings():
        # Stepping before the first optimizer step is deliberate
        # (docs/original-release.md#the-training-loop): silence the hint.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        for scheduler in schedulers:
            scheduler.step()


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())
