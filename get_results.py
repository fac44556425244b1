"""Mean +- std of the runs' best epochs beside the paper, per group of runs that differ only in
the seed (docs/original-release.md#summarising-the-runs); `--where KEY=VALUE` keeps some.
`--table mnist` prints Table 2's MNIST column from run folders and draws its curves."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from reporting.results_csv import CsvRun, read_csv_runs
from reporting.table2 import mnist_table, plot_curves

# dataset: (metric, teacher, DFAD mean ± std), docs/original-release.md#paper-results
PAPER = {"mnist": ("acc", 0.989, 0.983, 0.002), "cifar10": ("acc", 0.955, 0.933, 0.000),
         "cifar100": ("acc", 0.775, 0.677, 0.003), "caltech101": ("acc", 0.766, 0.735, 0.008),
         "camvid": ("mIoU", 0.594, 0.535, None), "nyuv2": ("mIoU", 0.517, 0.364, None)}


def parse_where(text: str) -> tuple[str, object]:
    """KEY=VALUE; the value is read as JSON where it can be (numbers, true/false, null)."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def group_by_flags(runs: list[CsvRun]) -> list[list[CsvRun]]:
    """Runs with the same flags but the seed, largest first (rows without flags last)."""
    groups: dict[str, list[CsvRun]] = {}
    for run in runs:
        key = run.flags and {**run.flags, "seed": 0}  # rows without flags: a group of their own
        groups.setdefault(json.dumps(key, sort_keys=True), []).append(run)
    return sorted(groups.values(), key=lambda group: (not group[0].flags, -len(group)))


def describe_group(group: list[CsvRun], groups: list[list[CsvRun]]) -> str:
    """The flags that set the group apart from the others, and its seeds."""
    flags = group[0].flags
    if not flags:
        return "no flags recorded (rows from before run ids)"
    keys = [k for k in sorted(flags.keys() - {"seed"})
            if any(g[0].flags and g[0].flags.get(k) != flags[k] for g in groups)]
    seeds = sorted({run.flags["seed"] for run in group if "seed" in run.flags})
    return (" ".join(f"{k}={json.dumps(flags[k])}" for k in keys)
            + (f" (seeds {', '.join(map(str, seeds))})" if seeds else "")).strip()


def summarise_log(path: Path, where: list[tuple[str, object]]) -> int:
    if not path.is_file():
        print(f"error: no such log: {path} (DFAD scripts write log/DFAD-<dataset>.csv)",
              file=sys.stderr)
        return 1
    every = []
    for run in read_csv_runs(path):  # a NaN would make the mean nan without a word
        if all(map(math.isfinite, run.values)):
            every.append(run)
        else:
            print(f"warning: {path}: run {run.run_id or '(no id)'} has a value that is not a "
                  "number: left out of the summary", file=sys.stderr)
    runs = [run for run in every if all(k in run.flags and run.flags[k] == v for k, v in where)]
    if not runs:
        print(f"error: {path} holds no runs yet" if not every else
              f"error: none of the {len(every)} runs in {path} has "
              f"{' '.join(f'{k}={json.dumps(v)}' for k, v in where)}", file=sys.stderr)
        return 1
    groups = group_by_flags(runs)
    left_out = f", {len(every) - len(runs)} left out by --where" if where else ""
    print(f"runs: {len(runs)} in {len(groups)} group(s) of the same flags{left_out}")
    dataset = path.name.removeprefix("DFAD-").removesuffix(".csv")
    if dataset in PAPER:
        metric, teacher, mean, std = PAPER[dataset]
        print(f"paper ({dataset}, {metric}): DFAD {mean:.3f}"
              f"{f' ± {std:.3f}' if std is not None else ''}, teacher {teacher:.3f}")
    for i, group in enumerate(groups, start=1):
        bests, lasts = [max(run.values) for run in group], [run.values[-1] for run in group]
        print(f"[{i}] {len(group)} run(s): {describe_group(group, groups)}\n"
              f"best per run: {', '.join(f'{v:.4f}' for v in bests)}\n"
              f"Mean={np.mean(bests):.4f}, Std={np.std(bests):.4f}, Best={max(bests):.4f} "
              f"over {len(group)} run(s)\n"  # population std (ddof=0), as the original
              f"last epoch: Mean={np.mean(lasts):.4f}, Std={np.std(lasts):.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Summarise DFAD CSV logs", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python get_results.py --log log/DFAD-mnist.csv\n\nwrites: "
               "nothing with --log (it prints); --table mnist also writes <root>/table2-mnist.png")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--log", type=Path, help="a CSV written by a DFAD script")
    what.add_argument("--table", choices=("mnist",),
                      help="print a whole column of the paper's Table 2 from the logs under --root")
    parser.add_argument("--where", nargs="+", type=parse_where, default=[], metavar="KEY=VALUE",
                        help="--log: only the runs with these flags, e.g. --where epochs=40")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="--table: folder searched (recursively) for the runs' log/ folders")
    parser.add_argument("--plot", type=Path, default=None,
                        help="--table: the curves' PNG (default: <root>/table2-mnist.png)")
    parser.add_argument("--teacher_metrics", type=Path, default=None,
                        help="--table: the teacher's metrics file if not under --root")
    args = parser.parse_args(argv)
    if args.log:
        return summarise_log(args.log, args.where)
    table, found = mnist_table(args.root, args.teacher_metrics)
    if not any(runs.finished or runs.unfinished for runs in found.values()):
        print(f"error: no MNIST runs under {args.root}: run scripts/run_table2_mnist.sh, or point "
              "--root at the folder the runs wrote into", file=sys.stderr)
        return 1
    print(table)
    plot = args.plot or args.root / "table2-mnist.png"
    print(f"curves: {plot}" if plot_curves(found, plot) else
          "curves: not drawn (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
