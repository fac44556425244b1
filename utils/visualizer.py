"""Live curves and images in visdom (docs/original-release.md#metrics-transforms-and-plotting),
without ever letting logging break a run.

visdom is optional: without it the plotter warns once and does nothing. Without a server (or when
the server dies mid-run) it warns once and keeps writing visdom's own log file, which replays into
a server later:

    python -c "import visdom; visdom.Visdom(port=15550).replay_log('log/DFAD-mnist.visdom.log')"
"""
from __future__ import annotations

import html
import logging
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

DEFAULT_PORT = 15550
DEFAULT_SERVER = "127.0.0.1"  # local only, unless the user points elsewhere
CONNECT_TIMEOUT_S = 1.0  # the one start-up check: a refused or silent port costs at most this
POST_TIMEOUT_S = 5.0  # per plot call; a hung server is dropped after one such wait

try:
    import visdom
except ImportError:  # the GPU machines and minimal installs have no visdom
    visdom = None


def warn(message: str) -> None:
    """One line on stderr: plotting trouble is worth a note, never a traceback."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def server_is_up(server: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """A plain TCP connect: quick, and no visdom client retry loop behind it."""
    host = urlparse(server if "://" in server else f"http://{server}").hostname or server
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class NotVisdom(Exception):
    """The port answered, but refused a plot: something other than visdom listens there."""


def _client_class() -> type:
    """visdom's client posts with no timeout and takes any answer, an HTTP error page included;
    this one gives up after POST_TIMEOUT_S and raises on a refused post."""

    class Client(visdom.Visdom):
        def _handle_post(self, url: str, data: Any = None) -> str:
            response = self.session.post(url, data={} if data is None else data,
                                         timeout=POST_TIMEOUT_S)
            if response.status_code >= 400:
                raise NotVisdom(f"HTTP {response.status_code}")
            return response.text

    return Client


class VisdomPlotter:
    """`add_scalar` / `add_image` / `add_table` into one visdom env
    (docs/original-release.md#metrics-transforms-and-plotting).

    Every call is also appended to `log_path` (visdom's log format) when one is given, so a run
    watched live and a run without a server leave the same replayable record.
    """

    def __init__(
        self,
        env: str = "main",
        port: int = DEFAULT_PORT,
        server: str = DEFAULT_SERVER,
        log_path: str | Path | None = None,
        enabled: bool = True,
        resumed: bool = False,
    ) -> None:
        self.env = env
        self.resumed = resumed  # a resumed run's curves continue its windows' earlier points
        self.port = port
        self.server = server
        self.log_path = Path(log_path) if log_path is not None else None
        self.online = False
        self._viz: Any = None
        self._windows: set[str] = set()
        if not enabled:
            return
        if visdom is None:
            warn("visdom is not installed: no plots (pip install -r requirements-visdom.txt, "
                 "or pass --no_visdom)")
            return
        # Its session set-up chatter would be one line per reconnect: keep errors only.
        logging.getLogger("visdom").setLevel(logging.ERROR)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = server if "://" in server else f"http://{server}"
        log = str(self.log_path) if self.log_path is not None else None
        if server_is_up(server, port):
            try:
                self._viz = _client_class()(server=url, port=port, env=env,
                                            log_to_filename=log, raise_exceptions=True,
                                            use_incoming_socket=False)
                self.online = True
                return
            except Exception as err:  # noqa: BLE001 - anything the client raises: go offline
                reason = (f"answered, but refused visdom's requests ({err}): is it a visdom "
                          "server?" if isinstance(err, NotVisdom)
                          else f"failed ({type(err).__name__})")
        else:
            reason = "is not reachable"
        where = f"writing plots to {log} (replay it later)" if log else "no plots"
        warn(f"visdom server {url}:{port} {reason}: {where}")
        if log is not None:
            self._viz = visdom.Visdom(server=url, port=port, env=env, log_to_filename=log,
                                      offline=True, raise_exceptions=False)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._viz is None:
            return
        try:
            getattr(self._viz, method)(*args, env=self.env, **kwargs)
        except Exception as err:  # noqa: BLE001 - a plot must never stop training
            if not self.online:
                warn(f"visdom {method} failed ({type(err).__name__}: {err}): plotting stops")
                self._viz = None
                return
            # The message was logged before the post: nothing is lost by going offline.
            self.online = False
            self._viz.offline = True
            where = f"plots go on to {self.log_path} only" if self.log_path else "plotting stops"
            what = (f"refused a plot ({err}): is it a visdom server? (visdom -p {self.port})"
                    if isinstance(err, NotVisdom) else
                    f"stopped answering ({type(err).__name__})")
            warn(f"visdom server {self.server}:{self.port} {what}; {where}")
            if self.log_path is None:
                self._viz = None

    def add_scalar(self, win: str, x: float, y: float, opts: dict | None = None,
                   trace_name: str | None = None) -> None:
        """Append one point to the line plot `win` (created, titled `win`, on first use)."""
        opts = {"title": win, **(opts or {})}
        update = "append" if self.resumed or win in self._windows else None
        self._windows.add(win)
        self._call("line", X=np.array([x]), Y=np.array([y]), win=win, opts=opts,
                   update=update, name=trace_name)

    def add_bar(self, win: str, values: list[float], labels: list[str]) -> None:
        """Replace the bar chart `win` with one bar per label."""
        self._call("bar", X=np.asarray(values, dtype=float), win=win,
                   opts={"title": win, "rownames": list(labels)})

    def add_image(self, win: str, img: np.ndarray, opts: dict | None = None) -> None:
        """Show a C x H x W image with values in [0, 1] (or uint8) in window `win`."""
        self._call("image", np.asarray(img), win=win, opts={"title": win, **(opts or {})})

    def add_table(self, win: str, table: dict[str, Any]) -> None:
        """A key/value HTML table, e.g. the run's config."""
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in table.items())
        self._call("text", f"<table>{rows}</table>", win=win, opts={"title": win})
