"""Table 2's MNIST column from our logs: every row the paper has, beside its number, and a plot.

A run is found by its files, wherever it ran: `<folder>/log/<METHOD>-mnist.csv` holds one row
per finished run (its id, flags and per-epoch test accuracy),
`<folder>/log/<METHOD>-mnist.metrics.jsonl` one line per epoch, so a run still going (or
stopped, to be resumed) is reported with how far it got.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tables.csv_rows import read_csv_runs


@dataclass(frozen=True)
class Row:
    method: str  # as the paper names it
    prefix: str | None  # our log files' prefix; None: not reproducible
    paper: str
    student_steps_per_iteration: int = 5
    note: str = ""


MNIST_ROWS = (
    Row("Teacher", "teacher-mnist-lenet5", "0.989", 0),
    Row("KD-ORI", "KD_ORI", "0.988 ± 0.001"),
    Row("KD-REL", None, "0.960 ± 0.006",
        note="not reproduced: the paper's related-domain data is not known"),
    Row("KD-UNR", None, "0.957 ± 0.007",
        note="not reproduced: the paper's unrelated data is not known"),
    Row("RANDOM", "RANDOM", "0.747 ± 0.033"),
    Row("DAFL", "DAFL", "0.981 ± 0.001", 1),
    Row("DFAD", "DFAD", "0.983 ± 0.002"),
)


@dataclass
class Runs:
    finished: list[list[float]] = field(default_factory=list)  # per-epoch accuracy of each run
    unfinished: list[tuple[int, int | None, float]] = field(default_factory=list)  # epoch, of, best
    partial: list[list[tuple[int, float]]] = field(default_factory=list)  # their (epoch, acc)
    epoch_itrs: int | None = None


def _segments(path: Path) -> list[list[tuple[int, float]]]:
    """The metrics file's epochs split into runs: a fresh run starts again at epoch 1 (a resumed
    one goes on counting)."""
    runs: list[list[tuple[int, float]]] = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            epoch, acc = int(entry["epoch"]), float(entry["acc"])
        except (ValueError, KeyError, TypeError):
            continue
        if epoch == 1 or not runs:
            runs.append([])
        runs[-1].append((epoch, acc))
    return runs


def _last_config(path: Path, metrics: Path) -> dict:
    """The flags of the run that wrote the metrics file's last line: the config file keeps
    every run's by run id (a file from before run ids holds one bare config)."""
    configs = json.loads(path.read_text()) if path.is_file() else {}
    if "epochs" in configs:
        return configs
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    try:
        run_id = json.loads(lines[-1])["run_id"]
    except (IndexError, ValueError, KeyError, TypeError):
        return {}
    return configs.get(run_id) or {}


def collect(root: Path, prefix: str) -> Runs:
    """Every run of `prefix` under `root` (searched recursively, `log/` folders only)."""
    runs = Runs()
    log_dirs = {p.parent for p in root.rglob(f"{prefix}-mnist*") if p.parent.name == "log"}
    for log_dir in sorted(log_dirs):
        metrics = log_dir / f"{prefix}-mnist.metrics.jsonl"
        config = _last_config(log_dir / f"{prefix}-mnist.config.json", metrics)
        runs.epoch_itrs = runs.epoch_itrs or config.get("epoch_itrs")
        csv_path = log_dir / f"{prefix}-mnist.csv"
        finished = [run.values for run in read_csv_runs(csv_path)] if csv_path.is_file() else []
        runs.finished += finished
        segments = _segments(metrics) if metrics.is_file() else []
        if len(segments) > len(finished) and segments[-1]:
            last = segments[-1]
            runs.unfinished.append((last[-1][0], config.get("epochs"), max(a for _, a in last)))
            runs.partial.append(last)
    return runs


def teacher_accuracy(root: Path, extra: Path | None = None) -> list[float]:
    """The best test accuracy of each MNIST LeNet5 teacher found (its metrics file)."""
    paths = sorted(root.rglob("teacher-mnist-lenet5.metrics.jsonl"))
    if extra is not None and extra.is_file() and extra not in paths:
        paths.append(extra)
    return [max(a for _, a in seg) for path in paths for seg in _segments(path) if seg]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"  # population std, as the paper's tool


def mnist_table(root: Path, teacher_metrics: Path | None = None) -> tuple[str, dict[str, Runs]]:
    """The Markdown table and the runs behind it."""
    lines = ["| Method | Paper | Ours: best epoch | Ours: last epoch | Runs |",
             "|---|---|---|---|---|"]
    found: dict[str, Runs] = {}
    for row in MNIST_ROWS:
        if row.prefix is None:
            lines.append(f"| {row.method} | {row.paper} | {row.note} | | 0 |")
            continue
        if row.method == "Teacher":
            accs = teacher_accuracy(root, teacher_metrics)
            lines.append(f"| {row.method} | {row.paper} | {_mean_std(accs)} | | {len(accs)} |")
            continue
        runs = found[row.method] = collect(root, row.prefix)
        bests = [max(r) for r in runs.finished]
        lasts = [r[-1] for r in runs.finished]
        count = str(len(runs.finished))
        for epoch, of, best in runs.unfinished:
            count += f"; unfinished: epoch {epoch}/{of or '?'}, best so far {best:.4f}"
        lines.append(f"| {row.method} | {row.paper} | {_mean_std(bests)} | {_mean_std(lasts)} "
                     f"| {count} |")
    return "\n".join(lines), found


def plot_curves(found: dict[str, Runs], path: Path) -> bool:
    """Test accuracy against student updates, mean ± std band over the finished runs of each
    method, and each unfinished run as a dashed line. False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps_per_iteration = {row.method: row.student_steps_per_iteration for row in MNIST_ROWS}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for method, runs in found.items():
        per_epoch = (runs.epoch_itrs or 50) * steps_per_iteration[method]
        color = None
        if runs.finished:
            length = min(len(r) for r in runs.finished)
            curves = np.array([r[:length] for r in runs.finished])
            x = np.arange(1, length + 1) * per_epoch
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            (line,) = ax.plot(x, mean,
                              label=f"{method} ({len(curves)} run{'s' * (len(curves) > 1)})")
            color = line.get_color()
            ax.fill_between(x, mean - std, mean + std, alpha=0.25, color=color)
        for i, run in enumerate(runs.partial):
            epochs, accs = zip(*run, strict=True)
            label = f"{method}, unfinished ({len(runs.partial)})" if i == 0 else None
            (line,) = ax.plot(np.array(epochs) * per_epoch, accs, "--", lw=0.9, color=color,
                              label=label)
            color = line.get_color()
    ax.set_xlabel("student updates")
    ax.set_ylabel("test accuracy (MNIST)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Table 2, MNIST: test accuracy per epoch (mean ± std; dashed: unfinished)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
