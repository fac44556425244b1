"""What the tests observe on this machine: a folder's files, a free local port."""
from __future__ import annotations

import socket
from pathlib import Path


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file's mtime and bytes; the lock is left out (it names whoever takes it)."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def free_port() -> int:
    """A local port nothing listens on (a visdom server to start, or one that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
