"""Waiting for a started run to reach a point, in the tests that then signal it."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float,
               what: str) -> None:
    """Until `condition()` holds; fails if `proc` ends first (with its output) or after
    `timeout` seconds (saying `what` it waited for)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.01)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Until `path` exists; fails if `proc` ends first (with its output) or after `timeout`."""
    wait_until(path.exists, proc, timeout, f"{path} exists")
