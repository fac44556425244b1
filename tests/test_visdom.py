"""Visdom end to end against a real server on 127.0.0.1: live plots, the offline log and its
replay, a server dying mid-run, no visdom at all, and the page served with no CDN."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

from reporting.run_logger import RunLogger
from tests.helpers.mnist_fixtures import write_tiny_mnist
from tests.helpers.script_args import dfad_args
from utils import visualizer
from utils.visualizer import VisdomPlotter

visdom = pytest.importorskip("visdom", reason="visdom is not installed (scripts/install.sh "
                                              "installs it)")

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# Without download_scripts(): a server for the plotting tests needs no static files at all.
SERVER_NO_DOWNLOAD = "import sys; from visdom.server.run_server import main; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, *, download_step: bool = False) -> tuple[subprocess.Popen, int]:
    port = free_port()
    entry = ["-m", "visdom.server"] if download_step else ["-c", SERVER_NO_DOWNLOAD]
    log = open(tmp / f"server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, *entry, "-port", str(port), "--hostname", "127.0.0.1",
                             "-bind_local", "-env_path", str(tmp / f"envs-{port}"),
                             "-logging_level", "WARNING"], stdout=log, stderr=subprocess.STDOUT,
                            env=ENV)
    deadline = time.monotonic() + 30
    while not visualizer.server_is_up("127.0.0.1", port, timeout=0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"visdom server did not start: {(tmp / f'server-{port}.log').read_text()}")
        time.sleep(0.2)
    return proc, port


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def client(port: int) -> "visdom.Visdom":
    return visdom.Visdom(server="http://127.0.0.1", port=port, use_incoming_socket=False,
                         raise_exceptions=True)


def window(port: int, win: str, env: str) -> dict:
    return json.loads(client(port).get_window_data(win, env=env))


def points(port: int, win: str, env: str) -> list[tuple[float, float]]:
    data = window(port, win, env)
    assert data["type"] == "plot", data
    trace = data["content"]["data"][0]
    return list(zip(trace["x"], trace["y"], strict=True))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("visdom_server")
    proc, port = start_server(tmp)
    yield port
    stop_server(proc)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A tiny MNIST and a one-epoch teacher (no server: --no_visdom)."""
    work = tmp_path_factory.mktemp("visdom_run")
    write_tiny_mnist(work / "data", n_train=16, n_test=8)
    result = subprocess.run([sys.executable, str(REPO / "train_teacher.py"), "--epochs", "1",
                             "--batch_size", "8", "--test_batch_size", "8", "--no_visdom", *FAST],
                            cwd=work, capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --no_visdom: not even a warning
    return work


def assert_health_windows(port: int, env: str) -> None:
    """The generator's class histogram (10 bars) and one window with its four scalars."""
    bars = window(port, "gen_class_hist", env)["content"]["data"][0]
    assert bars["type"] == "bar" and len(bars["y"]) == 10
    assert sum(bars["y"]) == pytest.approx(1.0)
    traces = window(port, "generator health", env)["content"]["data"]
    assert [t["name"] for t in traces] == ["gen_class_entropy", "gen_confidence",
                                           "gen_diversity", "gen_agreement"]
    assert all(list(t["x"]) == [1, 2] for t in traces)


def dfad_mnist(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "DFAD_mnist.py"), "--epochs", "2",
                           "--epoch_itrs", "4", "--log-interval", "2", "--batch_size", "4",
                           "--test_batch_size", "4",
                           *FAST, *args], cwd=work, capture_output=True, text=True, timeout=120,
                          env=ENV)


def test_dfad_mnist_plots_every_window_to_a_live_server(server, workdir):
    result = dfad_mnist(workdir, "--visdom_port", str(server))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    assert "DFAD-mnist" in client(server).get_env_list()
    # 2 epochs x 4 iterations, a point every 2 iterations at x = (epoch - 1) * epoch_itrs + i.
    for win in ("Loss_S", "Loss_G"):
        assert [x for x, _ in points(server, win, "DFAD-mnist")] == [2, 4, 6, 8]
    acc = points(server, "Acc", "DFAD-mnist")
    assert [x for x, _ in acc] == [1, 2] and all(0 <= y <= 1 for _, y in acc)
    for win in ("input", "generated"):
        assert window(server, win, "DFAD-mnist")["type"] == "image"
    assert "lr_S" in window(server, "config", "DFAD-mnist")["content"]
    assert_health_windows(server, "DFAD-mnist")

    # Judged without a server: the latest sample grids and the metrics file.
    for name in ("generated", "input"):
        with Image.open(workdir / f"results/DFAD-mnist/latest-{name}.png") as img:
            # The first test batch, 4 images, and as many fakes: 2 x 2 tiles of 32 px.
            assert img.size == (64, 64) and img.mode == "L"
            assert np.asarray(img).std() > 0
    lines = [json.loads(line) for line in
             (workdir / "log/DFAD-mnist.metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines[-2:]] == [1, 2]
    assert lines[-1]["run_id"] == lines[-2]["run_id"]
    assert {"acc", "loss_S", "loss_G", "best_acc", "lr_S", "time", "gen_class_hist",
            "gen_class_entropy", "gen_confidence", "gen_diversity",
            "gen_agreement"} <= set(lines[-1])


def test_no_server_one_warning_and_the_log_replays(server, workdir):
    result = dfad_mnist(workdir, "--visdom_port", str(free_port()), "--visdom_env", "replayed")
    assert result.returncode == 0, result.stderr
    assert "Best acc=" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not reachable" in lines[0], result.stderr
    log = workdir / "log/DFAD-mnist.visdom.log"
    assert str(log.relative_to(workdir)) in lines[0]

    # 2 epochs: the generated samples twice, the fixed test batch once (a constant panel).
    posts = [json.loads(line)[1] for line in log.read_text().splitlines()]
    posts = [json.loads(p) if isinstance(p, str) else p for p in posts]
    wins = [p.get("win") or p.get("data", [{}])[0].get("win") for p in posts]
    assert wins.count("generated") == 2 and wins.count("input") == 1

    client(server).replay_log(str(log))
    assert [x for x, _ in points(server, "Loss_G", "replayed")] == [2, 4, 6, 8]
    assert len(points(server, "Acc", "replayed")) == 2
    assert window(server, "generated", "replayed")["type"] == "image"
    assert_health_windows(server, "replayed")


def test_server_dying_mid_run_costs_one_warning(tmp_path, capsys):
    proc, port = start_server(tmp_path)
    log = tmp_path / "run.visdom.log"
    plotter = VisdomPlotter(env="dying", port=port, log_path=log)
    assert plotter.online
    plotter.add_scalar("Loss_S", 1, 0.5)
    stop_server(proc)
    start = time.monotonic()
    for x in range(2, 6):
        plotter.add_scalar("Loss_S", x, 0.5 / x)
    plotter.add_image("generated", np.zeros((1, 8, 8)))
    assert time.monotonic() - start < 10  # no hang, no retry storm
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped answering" in err[0], err
    assert not plotter.online
    assert len(log.read_text().splitlines()) == 6  # every call, before and after, is in the log


def test_without_visdom_the_plotter_warns_once_and_does_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(visualizer, "visdom", None)
    plotter = VisdomPlotter(env="x", log_path=tmp_path / "x.log")
    plotter.add_scalar("Loss_S", 1, 1.0)
    plotter.add_image("input", np.zeros((3, 4, 4)))
    plotter.add_table("config", {"a": 1})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "visdom is not installed" in err[0]
    assert not (tmp_path / "x.log").exists()


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        url = attrs.get("src") if tag == "script" else attrs.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def test_page_and_every_asset_are_served_without_a_cdn(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: scripts/visdom_offline_assets.py fetches visdom's "
                    "static files from the npm registry through it")
    result = subprocess.run([sys.executable, str(REPO / "scripts/visdom_offline_assets.py")],
                            capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    # The real entry point, download step included: complete assets mean it needs no network.
    proc, port = start_server(tmp_path, download_step=True)
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/env/main", timeout=10) as response:
            assert response.status == 200
            page = response.read().decode()
        parser = _Assets()
        parser.feed(page)
        local = [u for u in parser.urls if u.startswith("/static/")]
        assert len(local) >= 15, parser.urls
        assert all(not u.startswith(("http:", "https:", "//")) for u in parser.urls), parser.urls
        for url in local:
            # As a browser does: "/static/../user/style.css" is asked as "/user/style.css".
            absolute = urljoin(f"{base}/env/main", url)
            with urllib.request.urlopen(absolute, timeout=10) as response:
                assert response.status == 200, url
                # /user/style.css is the user's own (empty) stylesheet; the rest are files.
                assert response.read() or "/static/" not in absolute, url
    finally:
        stop_server(proc)


@pytest.mark.parametrize(("resume", "kept"), [(None, False), ("", True), ("other-state.pt", True)])
def test_a_resumed_run_appends_to_its_visdom_log(resume, kept, tmp_path, monkeypatch):
    """A new run starts its log afresh; a resumed one (`--resume` alone or with a path) keeps the
    plots of the epochs before the stop."""
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log" / "DFAD-mnist.visdom.log"
    log.parent.mkdir()
    log.write_text("earlier epochs\n")
    RunLogger.from_args(dfad_args(resume=resume, no_visdom=True), run="DFAD-mnist",
                        env="DFAD-mnist")
    assert log.exists() == kept
