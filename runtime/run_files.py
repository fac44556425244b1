"""Run bookkeeping shared by the entry scripts: output folders, the config dump, scheduler steps
and metric formatting."""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from torch.optim.lr_scheduler import LRScheduler

from runtime import distributed
from runtime.errors import UserError


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


def dump_config(args: argparse.Namespace, path: str | Path) -> None:
    """Print the full config once and write it as JSON next to the run's logs."""
    if not distributed.is_main():
        return
    config = vars(args)
    print("config: " + json.dumps(config, sort_keys=True))
    path = Path(path)
    ensure_writable(path.parent)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


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
