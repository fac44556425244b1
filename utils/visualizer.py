"""Live curves and images in visdom (docs/original-release.md#metrics-transforms-and-plotting).
Logging never breaks a run: without a server, or when it dies, one warning; visdom's own log file,
written at every call, replays into a server later:
    python -c "import visdom; visdom.Visdom(port=15550).replay_log('log/DFAD-mnist.visdom.log')"
"""
from __future__ import annotations

import html
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PORT = 15550
DEFAULT_SERVER = "127.0.0.1"  # local only, unless the user points elsewhere
POST_TIMEOUT_S = 5.0  # per call: a silent or hung server is dropped after one such wait

try:
    import visdom

    class Client(visdom.Visdom):
        """visdom's client posts with no timeout and takes an HTTP error page as an answer."""

        def _handle_post(self, url: str, data: Any = None) -> str:
            response = self.session.post(url, data=data or {}, timeout=POST_TIMEOUT_S)
            response.raise_for_status()
            return response.text
except ImportError:  # minimal installs have no visdom
    visdom = None


def warn(message: str) -> None:
    """One line on stderr: plotting trouble is worth a note, never a traceback."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class VisdomPlotter:
    """Plots into one visdom env, every call also appended to `log_path` (visdom's log format):
    a run watched live and a run without a server leave the same replayable record."""

    def __init__(self, env: str, port: int, server: str, log_path: Path, enabled: bool = True,
                 resumed: bool = False) -> None:
        self.env, self.port, self.server, self.log_path = env, port, server, log_path
        self.resumed = resumed  # a resumed run's curves continue its windows' earlier points
        self._windows: set[str] = set()
        self._viz: Any = None
        if not enabled:
            return
        if visdom is None:
            warn("visdom is not installed: no plots (pip install -r requirements-visdom.txt, "
                 "or pass --no_visdom)")
            return
        logging.getLogger("visdom").setLevel(logging.ERROR)  # its chatter at every reconnect
        options = {"server": server, "port": port, "env": env, "log_to_filename": str(log_path),
                   "raise_exceptions": True}
        try:
            self._viz = Client(**options, use_incoming_socket=False)
        except Exception as err:  # noqa: BLE001 - anything the client raises: go offline
            warn(f"visdom server {server}:{port} is not reachable ({type(err).__name__}: {err}): "
                 f"writing plots to {log_path} (replay it later)")
            self._viz = visdom.Visdom(**options, offline=True)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._viz is None:
            return
        try:
            getattr(self._viz, method)(*args, env=self.env, **kwargs)
        except Exception as err:  # noqa: BLE001 - a plot must never stop training
            if self._viz.offline:  # even the log file failed
                warn(f"visdom {method} failed ({type(err).__name__}: {err}): plotting stops")
                self._viz = None
            else:  # the message was logged before the post: nothing is lost by going offline
                self._viz.offline = True
                warn(f"visdom server {self.server}:{self.port} stopped answering "
                     f"({type(err).__name__}: {err}); plots go on to {self.log_path} only")

    def add_scalar(self, win: str, x: float, y: float, trace_name: str | None = None) -> None:
        """Append one point to the line plot `win`; named traces share a window, with a legend."""
        update = "append" if self.resumed or win in self._windows else None
        self._windows.add(win)
        self._call("line", X=np.array([x]), Y=np.array([y]), win=win, update=update,
                   name=trace_name, opts={"title": win, "showlegend": trace_name is not None})

    def add_bar(self, win: str, values: list[float]) -> None:
        """Replace the bar chart `win`: one bar per value, labelled 0, 1, ..."""
        self._call("bar", X=np.asarray(values, dtype=float), win=win,
                   opts={"title": win, "rownames": [str(i) for i in range(len(values))]})

    def add_image(self, win: str, img: np.ndarray) -> None:
        """Show a C x H x W image with values in [0, 1] (or uint8) in window `win`."""
        self._call("image", np.asarray(img), win=win, opts={"title": win})

    def add_table(self, win: str, table: dict[str, Any]) -> None:
        """A key/value HTML table, e.g. the run's config."""
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in table.items())
        self._call("text", f"<table>{rows}</table>", win=win, opts={"title": win})
