"""Everything a run reports besides the console: visdom, a metrics file and sample PNGs.

One object per run, handed to `distill()` / `fit_teacher()`:
* visdom windows (docs/original-release.md#the-training-loop, #script-defaults,
  #classification-teacher-training, #segmentation-teacher-training): `Loss_S`, `Loss_G` every log
  interval, the metric (`Acc` or `mIoU`) and the image panels after each evaluation, for DFAD also
  `gen_class_hist` and `generator health`; a replayable `log/<run>.visdom.log`;
* `log/<run>.metrics.jsonl`: one JSON line per epoch (appended; each line carries the run id of
  the run's state, runtime/state.py, which a resumed run keeps);
* `results/<run>/latest-<panel>.png`: the panels of the latest evaluation, overwritten each time
  (a long run would otherwise leave thousands of files).
Logging trouble is reported once and never stops the run.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from reporting.generator_health import HISTOGRAM, SCALARS, summary
from reporting.sample_grids import Panels, save_png
from runtime import device as devices
from runtime.errors import UserError
from runtime.state import RunState
from utils.visualizer import VisdomPlotter, warn

DrawPanels = Callable[..., Panels]
# the original's window names (docs/original-release.md#script-defaults)
METRIC_WINDOWS = {"acc": "Acc", "mIoU": "mIoU"}
LOSS_WINDOWS = {"loss_S": "Loss_S", "loss_G": "Loss_G"}
HEALTH_WINDOW = "generator health"
# Panels that do not change during a run: the first test batch, its labels, and (DFAD) the
# frozen teacher's prediction on it.
CONSTANT_PANELS = frozenset({"input", "target", "teacher"})


class RunLogger:
    """Bundles the plotter, the metrics file and the PNG grids of one run named `run`."""

    def __init__(
        self,
        run: str,
        plotter: VisdomPlotter,
        draw: DrawPanels | None = None,
        log_dir: str | Path = "log",
        results_dir: str | Path = "results",
    ) -> None:
        self.run = run
        self.plotter = plotter
        self.draw = draw
        self.metrics_path = Path(log_dir) / f"{run}.metrics.jsonl"
        self.results_dir = Path(results_dir) / run
        self._draw_failed = False
        self._posted: set[str] = set()  # constant panels already in visdom

    @classmethod
    def for_run(cls, args: argparse.Namespace, run: str, env: str, draw: DrawPanels | None,
                state: RunState) -> RunLogger | None:
        """The run's logger from the --visdom_* flags; None on ranks other than 0. A new run
        starts log/<run>.visdom.log afresh, a resumed one appends, so a replay shows one run."""
        if not devices.is_main():
            return None
        log_path = Path("log") / f"{run}.visdom.log"
        if state.epochs_done == 0:
            log_path.unlink(missing_ok=True)
        plotter = VisdomPlotter(env=args.visdom_env or env or run, port=args.visdom_port,
                                server=args.visdom_server, log_path=log_path,
                                enabled=not args.no_visdom, resumed=state.epochs_done > 0)
        plotter.add_table("config", vars(args))
        return cls(run, plotter, draw)

    def losses(self, x: int, losses: dict[str, float]) -> None:
        """Every log interval, x = (epoch - 1) * epoch_itrs + i as the original: `Loss_S`,
        `Loss_G` (the original's windows) and one window per further term."""
        for name, value in losses.items():
            self.plotter.add_scalar(LOSS_WINDOWS.get(name, name), x, value)

    def epoch(self, epoch: int, metric: str, metrics: dict[str, float],
              losses: dict[str, float], health: dict[str, Any], state: RunState, lr: float,
              seconds: float) -> None:
        """After each evaluation: the console line, the metric curve, the health plots and one
        line of the metrics file (named by the run id, as its CSV row)."""
        print(f"Epoch {epoch} test: {format_metrics(metrics)} | best {metric}={state.best:.4f} | "
              f"lr={lr:.2e} | {format_metrics(losses)} | "
              f"{summary(health) + ' | ' if health else ''}{seconds:.1f}s", flush=True)
        if metric in metrics:
            self.plotter.add_scalar(METRIC_WINDOWS.get(metric, metric), epoch, metrics[metric])
        if health:
            self.health(epoch, health)
        line = {"run_id": state.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "epoch": epoch, **metrics, **losses, f"best_{metric}": state.best, "lr": lr,
                **health}
        try:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(line, default=float) + "\n")
        except OSError as err:
            warn(f"could not append to {self.metrics_path}: {err}")

    def health(self, epoch: int, values: dict[str, Any]) -> None:
        """The generator's class histogram as a bar chart and its four scalars in one window
        (reporting/generator_health.py); a number that could not be measured is left out."""
        hist = values[HISTOGRAM]
        self.plotter.add_bar(HISTOGRAM, hist, [str(c) for c in range(len(hist))])
        for key in SCALARS:
            if values[key] is not None:
                self.plotter.add_scalar(HEALTH_WINDOW, epoch, float(values[key]),
                                        opts={"showlegend": True}, trace_name=key)

    def samples(self, loader: DataLoader, device: torch.device, model: nn.Module,
                teacher: nn.Module | None = None, generator: nn.Module | None = None) -> None:
        """Draw the panels: into visdom and as results/<run>/latest-<panel>.png. The constant
        ones (the fixed test batch, the frozen teacher on it) are posted once per process: the
        offline visdom log keeps every post."""
        if self.draw is None or self._draw_failed:
            return
        try:
            # Iterating a DataLoader draws its base seed from the global RNG: drawing must leave
            # the run's random stream (and so a resumed run) exactly as it was.
            with torch.random.fork_rng(devices=[]):
                panels = self.draw(loader, device, model, teacher=teacher, generator=generator)
            for name, grid in panels.items():
                if name in self._posted:
                    continue
                self.plotter.add_image(name, grid)
                save_png(grid, self.results_dir / f"latest-{name}.png")
                if name in CONSTANT_PANELS:
                    self._posted.add(name)
        except Exception as err:  # noqa: BLE001 - pictures must never stop a run
            self._draw_failed = True
            warn(f"sample grids disabled ({type(err).__name__}: {err})")


def format_metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())


def log_point(losses: dict[str, torch.Tensor], epoch: int, i: int, args: argparse.Namespace,
              logger: RunLogger | None) -> dict[str, float]:
    """Every `--log-interval` iterations: the global batch's losses (one host sync), checked
    for NaN/inf on every rank, to the console (the original's line) and visdom."""
    values = devices.mean_over_ranks(torch.stack([v.float() for v in losses.values()])).tolist()
    logged = dict(zip(losses, values, strict=True))
    bad = [k for k, v in logged.items() if not math.isfinite(v)]
    if bad:
        raise UserError(f"{bad[0]} is {logged[bad[0]]} at epoch {epoch}, iteration {i}: "
                        "stopping; the state file holds the last complete epoch (lower the "
                        "learning rate, or --resume from it)")
    if devices.is_main():
        print(f"Train Epoch: {epoch} [{i}/{args.epoch_itrs} ({100 * i / args.epoch_itrs:.0f}%)]"
              f"\t{format_metrics(logged)}", flush=True)
    if logger is not None:
        logger.losses((epoch - 1) * args.epoch_itrs + i, logged)
    return logged
