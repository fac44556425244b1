"""Run bookkeeping shared by the entry scripts: output folders, the config dump, CSV rows,
scheduler steps and metric formatting."""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.optim.lr_scheduler import LRScheduler

from utils import distributed
from utils.errors import UserError


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


RUN_PREFIX = "run="  # the first cell of a row that carries its run id and flags


@dataclass(frozen=True)
class CsvRun:
    """One CSV row: a run's id, the flags that define it, its per-epoch metric list."""

    run_id: str
    flags: dict[str, Any]
    values: list[float]


def append_csv_row(path: str | Path, values: Sequence[float], run_id: str,
                   flags: dict[str, Any]) -> None:
    """One row per run: `run=<id>`, its defining flags as JSON, then the per-epoch metric list
    (the original's row, docs/original-release.md#the-training-loop). Read by get_results.py."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow([RUN_PREFIX + run_id, json.dumps(flags, sort_keys=True),
                                *values])
        f.flush()
        os.fsync(f.fileno())


def read_csv_runs(path: str | Path) -> list[CsvRun]:
    """Every row of a results CSV; rows from before run ids (plain floats) come with no id and
    no flags."""
    runs = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            try:
                if row[0].startswith(RUN_PREFIX):
                    runs.append(CsvRun(row[0][len(RUN_PREFIX):], json.loads(row[1]),
                                       [float(v) for v in row[2:]]))
                else:
                    runs.append(CsvRun("", {}, [float(v) for v in row]))
            except (ValueError, IndexError) as err:
                raise UserError(f"{path} has a row that is not a run ({str(err)[:80]}): "
                                f"{','.join(row)[:80]}") from err
    return runs


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
