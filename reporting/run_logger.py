"""Everything a run reports besides the console line: visdom windows and their replayable
`log/<run>.visdom.log`, one JSON line per epoch in `log/<run>.metrics.jsonl` (with the run id of
runtime/state.py), the latest panels as `results/<run>/latest-<panel>.png` (overwritten: a long run
would leave thousands of files). Logging trouble is reported once and never stops the run.
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
# The panels that never change: the first test batch, its labels, the frozen teacher on it.
CONSTANT_PANELS = frozenset({"input", "target", "teacher"})


class RunLogger:
    """The plotter, the metrics file and the PNG grids of one run named `run`."""

    def __init__(self, args: argparse.Namespace, run: str, env: str, draw: DrawPanels | None,
                 state: RunState) -> None:
        log_path = Path("log") / f"{run}.visdom.log"
        if state.epochs_done == 0 and log_path.exists() and not args.no_visdom:
            # an earlier run's plots are kept; a resumed run appends: a replay shows one run
            log_path.rename(f"{log_path}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        self.plotter = VisdomPlotter(env=args.visdom_env or env or run, port=args.visdom_port,
                                     server=args.visdom_server, log_path=log_path,
                                     enabled=not args.no_visdom, resumed=state.epochs_done > 0)
        self.plotter.add_table("config", vars(args))
        self.run, self.draw = run, draw
        self._posted: set[str] = set()  # constant panels already in visdom

    @classmethod
    def for_run(cls, args: argparse.Namespace, run: str, env: str, draw: DrawPanels | None,
                state: RunState) -> RunLogger | None:
        """The run's logger from the --visdom_* flags; None on ranks other than 0."""
        return cls(args, run, env, draw, state) if devices.is_main() else None

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
        self.plotter.add_scalar(METRIC_WINDOWS.get(metric, metric), epoch, metrics[metric])
        if health:  # reporting/generator_health.py; a number not measured is left out
            self.plotter.add_bar(HISTOGRAM, health[HISTOGRAM])
            for key in SCALARS:
                if health[key] is not None:
                    self.plotter.add_scalar(HEALTH_WINDOW, epoch, health[key], trace_name=key)
        line = {"run_id": state.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": epoch,
                **metrics, **losses, f"best_{metric}": state.best, "lr": lr, **health}
        with open(f"log/{self.run}.metrics.jsonl", "a") as f:
            f.write(json.dumps(line, default=float) + "\n")

    def samples(self, loader: DataLoader, device: torch.device, model: nn.Module,
                teacher: nn.Module | None = None, generator: nn.Module | None = None) -> None:
        """The panels, into visdom and results/<run>/latest-<panel>.png; the constant ones once
        per process (the offline visdom log keeps every post)."""
        if self.draw is None:
            return
        try:
            # A DataLoader draws its seed from the global RNG: keep the run's stream as it was.
            with torch.random.fork_rng(devices=[]):
                panels = self.draw(loader, device, model, teacher=teacher, generator=generator)
            new = {name: grid for name, grid in panels.items() if name not in self._posted}
            self._posted |= CONSTANT_PANELS & new.keys()
            for name, grid in new.items():
                self.plotter.add_image(name, grid)
                save_png(grid, f"results/{self.run}/latest-{name}.png")
        except Exception as err:  # noqa: BLE001 - pictures must never stop a run
            self.draw = None
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
