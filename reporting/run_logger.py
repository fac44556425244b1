"""Everything a run reports besides the console: visdom, a metrics file and sample PNGs.

One object per run, handed to `distill()` / `fit_teacher()`:
* visdom windows (docs/original-release.md#the-training-loop, #script-defaults,
  #classification-teacher-training, #segmentation-teacher-training): `Loss_S`, `Loss_G` every log
  interval, the metric (`Acc` or `mIoU`) and the image panels after each evaluation, for DFAD also
  `gen_class_hist` and `generator health`; a replayable `log/<run>.visdom.log`;
* `log/<run>.metrics.jsonl`: one JSON line per epoch (appended; each line carries the run id of
  the run's state, runtime/run_state.py, which a resumed run keeps);
* `results/<run>/latest-<panel>.png`: the panels of the latest evaluation, overwritten each time
  (a long run would otherwise leave thousands of files).
Logging trouble is reported once and never stops the run.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from reporting.generator_health import HISTOGRAM, SCALARS
from reporting.sample_grids import Panels, save_png
from runtime import distributed
from utils.visualizer import VisdomPlotter, warn

DrawPanels = Callable[..., Panels]
# the original's window names (docs/original-release.md#script-defaults)
METRIC_WINDOWS = {"acc": "Acc", "mIoU": "mIoU"}
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
        self.summary = ""  # the last test metric, for the progress bar

    @classmethod
    def from_args(cls, args: argparse.Namespace, run: str, env: str,
                  draw: DrawPanels | None = None) -> RunLogger | None:
        """The run's logger from the shared --visdom_* flags; `env` is the script's default.

        The visdom log holds this run only (a resumed run appends), so a replay shows one run.
        Under torchrun only rank 0 logs (the others get None).
        """
        if not distributed.is_main():
            return None
        log_path = Path("log") / f"{run}.visdom.log"
        if args.resume is None:
            log_path.unlink(missing_ok=True)
        plotter = VisdomPlotter(env=args.visdom_env or env, port=args.visdom_port,
                                server=args.visdom_server, log_path=log_path,
                                enabled=not args.no_visdom)
        logger = cls(run, plotter, draw)
        logger.plotter.add_table("config", vars(args))
        return logger

    def losses(self, x: int, loss_S: float, loss_G: float | None) -> None:
        """Every log interval; x = (epoch - 1) * epoch_itrs + i, as the original. No `Loss_G`
        window for runs that train no generator (the KD baselines)."""
        self.plotter.add_scalar("Loss_S", x, loss_S)
        if loss_G is not None:
            self.plotter.add_scalar("Loss_G", x, loss_G)

    def epoch(self, epoch: int, metrics: dict[str, Any], run_id: str) -> None:
        """After each evaluation: the metric curve and one line of the metrics file, which
        names the run by `run_id`, as its CSV row does."""
        for key, win in METRIC_WINDOWS.items():
            if key in metrics:
                self.plotter.add_scalar(win, epoch, float(metrics[key]))
                self.summary = f"{key}={float(metrics[key]):.4f}"
        line = {"run_id": run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "epoch": epoch, **metrics}
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
