"""Waiting for a started run to reach a point, in the tests that then signal it."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Until `path` exists; fails if `proc` ends first (with its output) or after `timeout`."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)
