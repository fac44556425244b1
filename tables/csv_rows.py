"""The results CSV: one row per finished run, written by the training loop and read by
get_results.py (docs/original-release.md#the-training-loop)."""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import UserError

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
