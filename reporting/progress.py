"""tqdm bars on a terminal, the plain log lines everywhere else (CI logs, `| tee`, nohup)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def interactive() -> bool:
    """A bar redraws one line in place: only worth it when a person watches a terminal."""
    return sys.stdout.isatty()


def progress_bar(total: int, desc: str, initial: int = 0) -> tqdm:
    """A bar over one epoch's iterations; disabled (a no-op) when stdout is not a terminal.

    It is cleared when closed, so the epoch's summary line that follows stays readable.
    """
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True,
                disable=not interactive(), file=sys.stdout)
