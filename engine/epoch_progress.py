"""The bookkeeping between the steps of an epoch, shared by the DFAD loop and the teacher loop:
each step's losses wait on the device with a label, and are checked for NaN/inf only at log
points (one host sync per interval, not per step); a stop is agreed among the ranks; the progress
bar advances."""
from __future__ import annotations

import torch

from reporting.progress import progress_bar
from runtime.run_state import GracefulStop, check_finite


class EpochProgress:
    """Steps `done + 1`..`total` of one epoch. Per step: `watch` its losses, then `log_point(i)`
    (True: log now), then `advance()` (True: stop now)."""

    def __init__(self, total: int, description: str, log_interval: int,
                 stop: GracefulStop | None, device: torch.device, last_state: str,
                 done: int = 0) -> None:
        self.total = total
        self.log_interval = log_interval
        self.stop = stop
        self.device = device
        self.last_state = last_state  # the state a NaN stop points at
        self.bar = progress_bar(total, description, initial=done)
        self.stopping = False
        self._pending: list[torch.Tensor] = []
        self._labels: list[str] = []

    def watch(self, loss: torch.Tensor, label: str) -> None:
        """A step's loss, checked at the next log point; `label` names it if it is not finite."""
        self._pending.append(loss)
        self._labels.append(label)

    def log_point(self, i: int) -> bool:
        """Every `log_interval` steps, the epoch's last step, or a stop every rank agreed on:
        the losses since the last check are checked, and the caller logs."""
        due = i % self.log_interval == 0 or i == self.total
        self.stopping = self.stop is not None and self.stop.agreed(self.device, due)
        if not (due or self.stopping):
            return False
        check_finite(self._pending, self._labels, self.last_state)
        self._pending.clear()
        self._labels.clear()
        return True

    def advance(self) -> bool:
        """The step is done: the bar moves on; True when the loop stops here."""
        self.bar.update()
        return self.stopping

    def close(self) -> None:
        self.bar.close()
