"""The results CSV: one row per finished run, written by the training loop and read by
get_results.py (docs/original-release.md#the-training-loop)."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    (the original's row, docs/original-release.md#the-training-loop). Read by get_results.py.

    A run resumed to train longer (`--epochs` grown) already has a row: it is replaced, so a run
    is counted once, with its own flags and values."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    csv.writer(out).writerow([RUN_PREFIX + run_id, json.dumps(flags, sort_keys=True), *values])
    row = out.getvalue().encode()
    lines = path.read_bytes().splitlines(keepends=True) if path.is_file() else []
    own = (RUN_PREFIX + run_id + ",").encode()
    if not any(line.startswith(own) for line in lines):
        with open(path, "ab") as f:
            f.write(row)
            f.flush()
            os.fsync(f.fileno())
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.writelines(row if line.startswith(own) else line for line in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def has_run(path: str | Path, run_id: str) -> bool:
    """Whether the CSV holds the row of run `run_id`."""
    path = Path(path)
    return path.is_file() and any(run.run_id == run_id for run in read_csv_runs(path))


def parse_row(row: list[str]) -> CsvRun:
    """One CSV row as a run; ValueError says what is wrong with it."""
    if row[0].startswith(RUN_PREFIX):
        if len(row) < 2:
            raise ValueError("no flags cell")
        flags = json.loads(row[1])
        if not isinstance(flags, dict):
            raise ValueError(f"its flags cell is not a JSON object: {row[1][:40]}")
        values = [float(v) for v in row[2:]]
        run = CsvRun(row[0][len(RUN_PREFIX):], flags, values)
    else:
        run = CsvRun("", {}, [float(v) for v in row])
    if not run.values:
        raise ValueError("no values")
    return run


def read_csv_runs(path: str | Path) -> list[CsvRun]:
    """Every row of a results CSV; rows from before run ids (plain floats) come with no id and
    no flags. A row that is not a run (cut short, edited by hand, bytes that are not text) is
    skipped with a warning naming the file and line: one bad row never hides the others."""
    runs = []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8")
            row = next(csv.reader([text]), [])
            if not row:
                continue
            runs.append(parse_row(row))
        except (ValueError, csv.Error) as err:  # UnicodeDecodeError and JSON errors included
            reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)[:80]
            print(f"warning: {path} line {number} is not a run ({reason}): skipped",
                  file=sys.stderr)
    return runs
