"""The visdom page of a run, rendered by a real browser: every window the run posted is on the
page with its title and its content drawn (plotly SVG, image, table). Skips without Chromium;
.ci/run installs it where it runs as root."""
import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

pytest.importorskip("visdom", reason="visdom is not installed (scripts/install.sh installs it)")
from tests.test_visdom import client, run_dfad_mnist, start_server, stop_server  # noqa: E402

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
               None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BROWSER is None, reason="no Chromium (apt-get install chromium)")]
# Offline and quiet: no sign-in, sync, updates or QUIC; a fresh profile per load.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Windows(HTMLParser):
    """What the page shows per visdom window: its title bar text and the kinds of content."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[dict] = []
        self._depth = 0  # open <div>s inside the current window; 0 = outside any window
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div" and "window" in classes and not self._depth:
            self.windows.append({"title": "", "content": set()})
            self._depth = 1
        elif self._depth and tag == "div":
            self._depth += 1
            self._in_title = "pull-right" in classes
        elif self._depth:
            kind = {"svg": "plot" if "main-svg" in classes else None, "img": "image",
                    "table": "text"}.get(tag)
            if kind:
                self.windows[-1]["content"].add(kind)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._depth:
            self._depth -= 1
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.windows[-1]["title"] += data.strip()


def rendered_windows(url: str, budget_ms: int) -> dict[str, set]:
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}",
                              f"--virtual-time-budget={budget_ms}", "--window-size=1600,1200",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Windows()
    parser.feed(dom.stdout)
    return {w["title"]: w["content"] for w in parser.windows}


def test_every_window_of_a_run_renders_in_chromium(mnist_run):
    proc, port = start_server(mnist_run)
    try:
        run_dfad_mnist("--epochs", "1", "--visdom_port", str(port))
        posted = json.loads(client(port).get_window_data(env="DFAD-mnist"))
        expected = {w["title"]: w["type"] for w in posted.values()}
        assert {"Loss_S", "Loss_G", "Acc", "config", "input", "generated", "gen_class_hist",
                "generator health"} <= set(expected)
        # virtual time runs the page's scripts ahead of the clock; a slow host may need more
        for budget_ms in (10_000, 30_000, 90_000):
            shown = rendered_windows(f"http://127.0.0.1:{port}/env/DFAD-mnist", budget_ms)
            if all(kind in shown.get(title, ()) for title, kind in expected.items()):
                break
        for title, kind in expected.items():
            assert title in shown, f"window {title!r} not on the page; shown: {sorted(shown)}"
            assert kind in shown[title], f"{title!r} shows {shown[title]}, not a {kind}"
    finally:
        stop_server(proc)
