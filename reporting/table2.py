"""Table 2's MNIST column from run folders, beside the paper's numbers, and its curves
(docs/table2-mnist.md). A run is found by its files: `log/<METHOD>-mnist.csv` holds a row per
finished run, `log/<METHOD>-mnist.metrics.jsonl` a line per epoch named by the run id, so a run
still going (or stopped, to be resumed) is reported with how far it got."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reporting.results_csv import read_csv_runs
from runtime.files import write_all_atomic

# (method as the paper names it, its number in the paper, our log files' prefix or why none)
MNIST_ROWS = (
    ("Teacher", "0.989", "teacher-mnist-lenet5"),
    ("KD-ORI", "0.988 ± 0.001", "KD_ORI"),
    ("KD-REL", "0.960 ± 0.006", "not reproduced: the paper's related-domain data is not known"),
    ("KD-UNR", "0.957 ± 0.007", "not reproduced: the paper's unrelated data is not known"),
    ("RANDOM", "0.747 ± 0.033", "RANDOM"),
    ("DAFL", "0.981 ± 0.001", "DAFL"),
    ("DFAD", "0.983 ± 0.002", "DFAD"),
)
UPDATES_PER_ITERATION = {"DAFL": 1}  # student updates per iteration (else 5): the curves' x axis


@dataclass
class Runs:
    finished: list[list[float]] = field(default_factory=list)  # per-epoch accuracy of each run
    unfinished: list[tuple[int | None, dict[int, float]]] = field(default_factory=list)  # of, accs
    epoch_itrs: int | None = None


def accuracies(path: Path) -> dict[str | None, dict[int, float]]:
    """A metrics file's test accuracy by run id and epoch (an epoch redone after a stop once)."""
    runs: dict[str | None, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            runs.setdefault(entry.get("run_id"), {})[int(entry["epoch"])] = float(entry["acc"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return runs


def collect(root: Path, prefix: str) -> Runs:
    """Every run of `prefix` under `root` (searched recursively, `log/` folders only)."""
    runs, settings = Runs(), {}
    for log in sorted({path.parent for path in root.rglob(f"log/{prefix}-mnist.*")}):
        csv_path, config = log / f"{prefix}-mnist.csv", log / f"{prefix}-mnist.config.json"
        finished = read_csv_runs(csv_path) if csv_path.is_file() else []
        for run in finished:  # runs that differ in anything but the seed are never pooled
            key = json.dumps({k: v for k, v in run.flags.items() if k != "seed"}, sort_keys=True)
            settings.setdefault(key, []).append(run.values)
        configs = json.loads(config.read_text()) if config.is_file() else {}
        metrics = log / f"{prefix}-mnist.metrics.jsonl"
        for run_id, accs in (accuracies(metrics) if metrics.is_file() else {}).items():
            if run_id not in {run.run_id for run in finished}:
                runs.unfinished.append((configs.get(run_id, {}).get("epochs"), accs))
        runs.epoch_itrs = runs.epoch_itrs or next((c["epoch_itrs"] for c in configs.values()
                                                   if "epoch_itrs" in c), None)
    if settings:
        runs.finished = max(settings.values(), key=len)
        others = sum(map(len, settings.values())) - len(runs.finished)
        if others:
            print(f"warning: {prefix}: {others} finished run(s) with other flags left out of the "
                  f"table (get_results.py --log <its csv> shows each setting)", file=sys.stderr)
    return runs


def teacher_accuracy(root: Path, extra: Path | None = None) -> list[float]:
    """The best test accuracy of each MNIST LeNet5 teacher run found (its metrics file)."""
    paths = {*root.rglob("teacher-mnist-lenet5.metrics.jsonl"), *([extra] if extra else [])}
    return [max(accs.values()) for path in sorted(paths) if path.is_file()
            for accs in accuracies(path).values()]


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}" if values else "–"  # population std


def mnist_table(root: Path, teacher_metrics: Path | None = None) -> tuple[str, dict[str, Runs]]:
    """The Markdown table and the runs behind it."""
    lines = ["| Method | Paper | Ours: best epoch | Ours: last epoch | Runs |", "|" + "---|" * 5]
    found: dict[str, Runs] = {}
    for method, paper, prefix in MNIST_ROWS:
        if prefix.startswith("not reproduced"):
            lines.append(f"| {method} | {paper} | {prefix} | | 0 |")
        elif method == "Teacher":
            accs = teacher_accuracy(root, teacher_metrics)
            lines.append(f"| {method} | {paper} | {mean_std(accs)} | | {len(accs)} |")
        else:
            runs = found[method] = collect(root, prefix)
            count = str(len(runs.finished)) + "".join(
                f"; unfinished: epoch {max(accs)}/{of or '?'}, best so far {max(accs.values()):.4f}"
                for of, accs in runs.unfinished)
            lines.append(f"| {method} | {paper} | {mean_std([max(r) for r in runs.finished])} | "
                         f"{mean_std([r[-1] for r in runs.finished])} | {count} |")
    return "\n".join(lines), found


def plot_curves(found: dict[str, Runs], path: Path) -> bool:
    """Each run's test accuracy against student updates, one colour per method, dashed while
    unfinished. False when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
    for k, (method, runs) in enumerate(found.items()):
        per_epoch = (runs.epoch_itrs or 50) * UPDATES_PER_ITERATION.get(method, 5)
        curves = [(dict(enumerate(run, 1)), "-") for run in runs.finished]
        for i, (accs, style) in enumerate(curves + [(accs, "--") for _, accs in runs.unfinished]):
            epochs, values = zip(*sorted(accs.items()), strict=True)
            ax.plot(np.array(epochs) * per_epoch, values, style, lw=0.9, color=f"C{k}",
                    label=None if i else f"{method} ({len(runs.finished)} finished)")
    ax.set(xlabel="student updates", ylabel="test accuracy (MNIST)", ylim=(0, 1),
           title="Table 2, MNIST: test accuracy of each run (dashed: unfinished)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    write_all_atomic([(path, lambda f: fig.savefig(f, format="png"))])
    return True
