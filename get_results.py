"""Summarise DFAD CSV logs: mean +- std of each run's best epoch, beside the paper
(docs/original-release.md#summarising-the-runs).

Each CSV row names its run and the flags that define it: runs that differ in anything but the
seed (a smoke run beside the paper's) are summarised apart, each mean with its number of runs;
`--where KEY=VALUE` keeps only some.

`--table mnist` prints Table 2's MNIST column (every method, finished and unfinished runs) and
writes the accuracy curves as a PNG.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from tables.csv_rows import CsvRun, read_csv_runs
from tables.paper_table import mnist_table, plot_curves

# (metric, teacher, DFAD mean, DFAD std or None): Table 2 and Table 3 of the paper
# (docs/original-release.md#paper-results).
PAPER = {
    "mnist": ("acc", 0.989, 0.983, 0.002),
    "cifar10": ("acc", 0.955, 0.933, 0.000),
    "cifar100": ("acc", 0.775, 0.677, 0.003),
    "caltech101": ("acc", 0.766, 0.735, 0.008),
    "camvid": ("mIoU", 0.594, 0.535, None),
    "nyuv2": ("mIoU", 0.517, 0.364, None),
}


def parse_where(text: str) -> tuple[str, object]:
    """KEY=VALUE; the value is read as JSON where it can be (numbers, true/false, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. epochs=40, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def matches(run: CsvRun, where: list[tuple[str, object]]) -> bool:
    return all(key in run.flags and run.flags[key] == value for key, value in where)


def group_by_flags(runs: list[CsvRun]) -> list[list[CsvRun]]:
    """Runs with the same flags but the seed, largest group first (rows from before flags were
    written form one group of their own, last)."""
    groups: dict[str, list[CsvRun]] = {}
    for run in runs:
        flags = {k: v for k, v in run.flags.items() if k != "seed"}
        groups.setdefault(json.dumps(flags, sort_keys=True), []).append(run)
    return sorted(groups.values(), key=lambda group: (not group[0].flags, -len(group)))


def describe_group(group: list[CsvRun], groups: list[list[CsvRun]]) -> str:
    """The group's flags: all of them when it is the only group, else those that differ."""
    if not group[0].flags:
        return "no flags recorded (rows from before run ids)"
    keys = sorted(group[0].flags.keys() - {"seed"})
    others = [g[0].flags for g in groups if g[0].flags]
    if len(others) > 1:
        keys = [k for k in keys if any(flags.get(k) != group[0].flags[k] for flags in others)]
    seeds = sorted({run.flags["seed"] for run in group if "seed" in run.flags})
    flags = " ".join(f"{k}={json.dumps(group[0].flags[k])}" for k in keys)
    return flags + (f" (seeds {', '.join(map(str, seeds))})" if seeds else "")


def finite_runs(runs: list[CsvRun], path: Path) -> list[CsvRun]:
    """The runs whose every value is a number; each other one is named in a warning (a NaN
    would otherwise turn the whole mean into nan without a word)."""
    kept = []
    for run in runs:
        bad = [epoch for epoch, v in enumerate(run.values, start=1) if not math.isfinite(v)]
        if bad:
            print(f"warning: {path}: run {run.run_id or '(no id)'} has {run.values[bad[0] - 1]} "
                  f"at epoch {bad[0]}: left out of the summary", file=sys.stderr)
        else:
            kept.append(run)
    return kept


def summarise(runs: list[list[float]]) -> dict[str, float | list[float]]:
    bests = [max(run) for run in runs]
    lasts = [run[-1] for run in runs]
    return {
        "bests": bests,
        "lasts": lasts,
        "mean": float(np.mean(bests)),
        "std": float(np.std(bests)),  # population std (ddof=0), as the original
        "best": float(np.max(bests)),
        "last_mean": float(np.mean(lasts)),
        "last_std": float(np.std(lasts)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Summarise DFAD CSV logs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python get_results.py --log log/DFAD-mnist.csv\n\n"
               "writes: nothing with --log (it prints); --table mnist also writes "
               "<root>/table2-mnist.png")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--log", help="a CSV written by a DFAD script")
    what.add_argument("--table", choices=("mnist",),
                      help="print a whole column of the paper's Table 2 from the logs under --root")
    parser.add_argument("--paper", choices=tuple(PAPER), default=None,
                        help="the paper row to compare with (default: from the file name)")
    parser.add_argument("--where", nargs="+", type=parse_where, default=[], metavar="KEY=VALUE",
                        help="--log: only the runs with these flags, e.g. --where epochs=40 "
                             "batch_size=512 (runs whose flags differ in anything but the seed "
                             "are summarised apart anyway)")
    parser.add_argument("--root", default=".",
                        help="--table: folder searched (recursively) for log/<METHOD>-mnist.csv "
                             "and metrics files (default: .)")
    parser.add_argument("--plot", default=None,
                        help="--table: where the accuracy curves go (default: "
                             "<root>/table2-mnist.png)")
    parser.add_argument("--teacher_metrics", default=None,
                        help="--table: the teacher's metrics file, when it is not under --root "
                             "(e.g. log/teacher-mnist-lenet5.metrics.jsonl)")
    args = parser.parse_args(argv)
    if args.table:
        return print_table(Path(args.root), Path(args.plot) if args.plot else None,
                           Path(args.teacher_metrics) if args.teacher_metrics else None)
    path = Path(args.log)
    if not path.is_file():
        print(f"error: no such log: {path} (DFAD scripts write log/DFAD-<dataset>.csv)",
              file=sys.stderr)
        return 1
    every = finite_runs(read_csv_runs(path), path)
    runs = [run for run in every if matches(run, args.where)]
    if not runs:
        print(f"error: {path} holds no runs yet" if not every else
              f"error: none of the {len(every)} runs in {path} has "
              f"{' '.join(f'{k}={json.dumps(v)}' for k, v in args.where)} (see their flags "
              "without --where)", file=sys.stderr)
        return 1
    groups = group_by_flags(runs)
    left_out = f", {len(every) - len(runs)} left out by --where" if args.where else ""
    print(f"runs: {len(runs)} in {len(groups)} group(s) of the same flags{left_out}")
    match = re.fullmatch(r"DFAD-(.+)\.csv", path.name)
    key = args.paper or (match.group(1) if match else None)
    reproduced = []
    for i, group in enumerate(groups, start=1):
        s = summarise([run.values for run in group])
        print(f"[{i}] {len(group)} run(s): {describe_group(group, groups)}")
        print("best per run: " + ", ".join(f"{v:.4f}" for v in s["bests"]))
        print("last per run: " + ", ".join(f"{v:.4f}" for v in s["lasts"]))
        print(f"Mean={s['mean']:.4f}, Std={s['std']:.4f}, Best={s['best']:.4f} "
              f"over {len(group)} run(s)")
        print(f"last epoch: Mean={s['last_mean']:.4f}, Std={s['last_std']:.4f}")
        reproduced.append(f"[{i}] {s['mean']:.3f} ± {s['std']:.3f} over {len(group)} run(s)")
    if key in PAPER:
        metric, teacher, mean, std = PAPER[key]
        spread = f" ± {std:.3f}" if std is not None else ""
        print(f"paper ({key}, {metric}): DFAD {mean:.3f}{spread}, teacher {teacher:.3f} | "
              f"reproduced: {'; '.join(reproduced)}")
    return 0


def print_table(root: Path, plot: Path | None, teacher_metrics: Path | None) -> int:
    if not root.is_dir():
        print(f"error: no such folder: {root} (--root is where the runs wrote their log/ folders)",
              file=sys.stderr)
        return 1
    table, found = mnist_table(root, teacher_metrics)
    if not any(runs.finished or runs.unfinished for runs in found.values()):
        print(f"error: no MNIST runs under {root}: run scripts/run_table2_mnist.sh, or point "
              "--root at the folder the runs wrote into", file=sys.stderr)
        return 1
    print(table)
    plot = plot or root / "table2-mnist.png"
    if plot_curves(found, plot):
        print(f"curves: {plot}")
    else:
        print("curves: not drawn (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
