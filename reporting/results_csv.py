"""The results CSV: one row per run, written at its end by the training loop and read by
get_results.py (docs/original-release.md#the-training-loop)."""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.files import write_all_atomic

RUN_PREFIX = "run="  # the first cell of a row that carries its run id and flags


@dataclass(frozen=True)
class CsvRun:
    """One CSV row: a run's id, the flags that define it, its per-epoch metric list."""
    run_id: str
    flags: dict[str, Any]
    values: list[float]


def append_csv_row(path: str | Path, values: Sequence[float], run_id: str,
                   flags: dict[str, Any]) -> None:
    """`run=<id>`, the run's flags as JSON, then its per-epoch metrics (the original's row). A run
    resumed to train longer has a row already: it is replaced, so each run counts once."""
    path = Path(path)
    out = io.StringIO()
    csv.writer(out).writerow([RUN_PREFIX + run_id, json.dumps(flags, sort_keys=True), *values])
    row, own = out.getvalue().encode(), (RUN_PREFIX + run_id + ",").encode()
    lines = path.read_bytes().splitlines(keepends=True) if path.is_file() else []
    if not any(line.startswith(own) for line in lines):
        lines.append(row)
    text = b"".join(row if line.startswith(own) else line for line in lines)
    write_all_atomic([(path, lambda f: f.write(text))])


def read_csv_runs(path: str | Path) -> list[CsvRun]:
    """Every row; rows from before run ids (plain numbers) come with no id and no flags. A row that
    is not a run is skipped with a warning: one bad row never hides the others."""
    runs = []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            row = next(csv.reader([raw.decode()]), [])
            if not row:
                continue
            run_id, flags, values = "", {}, row
            if row[0].startswith(RUN_PREFIX):
                run_id, flags, values = row[0][len(RUN_PREFIX):], json.loads(row[1]), row[2:]
            if not isinstance(flags, dict) or not values:
                raise ValueError("no flags object or no values")
            runs.append(CsvRun(run_id, flags, [float(v) for v in values]))
        except (ValueError, IndexError, csv.Error) as err:  # bad UTF-8 and JSON included
            print(f"warning: {path} line {number} is not a run ({str(err)[:80]}): skipped",
                  file=sys.stderr)
    return runs
