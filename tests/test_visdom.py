"""Visdom against a real server on 127.0.0.1 (a subprocess: the server is the point): a tiny
DFAD_mnist run's plots arrive live; without a server, one warning and a log that replays, a
resumed run's epochs included; a server dying mid-run; no visdom at all."""
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

import DFAD_mnist
from tests.helpers.local import free_port
from utils import visualizer
from utils.visualizer import VisdomPlotter

visdom = pytest.importorskip("visdom", reason="visdom is not installed (scripts/install.sh "
                                              "installs it)")

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = ["--epoch_itrs", "4", "--log-interval", "2", "--batch_size", "4", "--test_batch_size", "4",
        "--num_workers", "0", "--data_root", "data", "--device", "cpu"]
# Without download_scripts(): a server for the plotting tests needs no static files at all.
SERVER_NO_DOWNLOAD = "from visdom.server.run_server import main; main()"


def server_is_up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_server(tmp: Path, *, download_step: bool = False) -> tuple[subprocess.Popen, int]:
    port = free_port()
    entry = ["-m", "visdom.server"] if download_step else ["-c", SERVER_NO_DOWNLOAD]
    log = tmp / f"server-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, *entry, "-port", str(port), "--hostname",
                                 "127.0.0.1", "-bind_local", "-env_path", str(tmp / f"envs-{port}"),
                                 "-logging_level", "WARNING"], stdout=out,
                                stderr=subprocess.STDOUT, env=ENV)
    deadline = time.monotonic() + 30
    while not server_is_up(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"visdom server did not start: {log.read_text()}")
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


def xs(port: int, win: str, env: str) -> list[float]:
    data = window(port, win, env)
    assert data["type"] == "plot", data
    return list(data["content"]["data"][0]["x"])


def run_dfad_mnist(*flags: str) -> list[float]:
    return DFAD_mnist.main(DFAD_mnist.get_parser().parse_args([*TINY, *flags]))


def assert_plots_of_two_epochs(port: int, env: str) -> None:
    """Losses every 2 of 4 iterations at x = (epoch - 1) * epoch_itrs + i, the accuracy per
    epoch, the sample images, and the generator's health: 10 bars and four scalars."""
    for win in ("Loss_S", "Loss_G"):
        assert xs(port, win, env) == [2, 4, 6, 8]
    assert xs(port, "Acc", env) == [1, 2]
    for win in ("input", "generated"):
        assert window(port, win, env)["type"] == "image"
    bars = window(port, "gen_class_hist", env)["content"]["data"][0]
    assert bars["type"] == "bar" and len(bars["y"]) == 10 and sum(bars["y"]) == pytest.approx(1)
    traces = window(port, "generator health", env)["content"]["data"]
    assert [t["name"] for t in traces] == ["gen_class_entropy", "gen_confidence",
                                           "gen_diversity", "gen_agreement"]
    assert all(list(t["x"]) == [1, 2] for t in traces)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, port = start_server(tmp_path_factory.mktemp("visdom_server"))
    yield port
    stop_server(proc)


@pytest.mark.slow
def test_dfad_mnist_plots_every_window_to_a_live_server(server, mnist_run, capsys):
    run_dfad_mnist("--epochs", "2", "--visdom_port", str(server))
    assert "warning" not in capsys.readouterr().err
    assert "DFAD-mnist" in client(server).get_env_list()
    assert_plots_of_two_epochs(server, "DFAD-mnist")
    assert "lr_S" in window(server, "config", "DFAD-mnist")["content"]
    with Image.open("results/DFAD-mnist/latest-generated.png") as img:
        # as many fakes as the first test batch holds, 4: 2 x 2 tiles of 32 px
        assert img.size == (64, 64) and img.mode == "L" and np.asarray(img).std() > 0


@pytest.mark.slow
def test_without_a_server_one_warning_and_a_log_that_replays_the_resumed_run(server, mnist_run,
                                                                            capsys):
    log = Path("log/DFAD-mnist.visdom.log")
    log.parent.mkdir()
    log.write_text("an earlier run's plots\n")  # kept aside: a new run starts its own log
    port = str(free_port())
    run_dfad_mnist("--epochs", "1", "--visdom_port", port, "--visdom_env", "replayed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "not reachable" in lines[0] and str(log) in lines[0], lines
    run_dfad_mnist("--epochs", "2", "--resume", "--visdom_port", port, "--visdom_env", "replayed")
    assert "an earlier run" not in log.read_text()
    (kept,) = log.parent.glob("DFAD-mnist.visdom.log.old-*")
    assert kept.read_text() == "an earlier run's plots\n"
    client(server).replay_log(str(log))
    assert_plots_of_two_epochs(server, "replayed")  # epoch 1 before the resume, epoch 2 after


@pytest.mark.slow
def test_server_dying_mid_run_costs_one_warning(tmp_path, capsys):
    proc, port = start_server(tmp_path)
    log = tmp_path / "run.visdom.log"
    plotter = VisdomPlotter(env="dying", port=port, server="127.0.0.1", log_path=log)
    plotter.add_scalar("Loss_S", 1, 0.5)
    assert xs(port, "Loss_S", "dying") == [1]
    stop_server(proc)
    start = time.monotonic()
    for x in range(2, 6):
        plotter.add_scalar("Loss_S", x, 0.5 / x)
    plotter.add_image("generated", np.zeros((1, 8, 8)))
    assert time.monotonic() - start < 10  # no hang, no retry storm
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped answering" in err[0], err
    assert len(log.read_text().splitlines()) == 6  # every call, before and after, is in the log


def test_without_visdom_the_plotter_warns_once_and_does_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(visualizer, "visdom", None)
    plotter = VisdomPlotter(env="x", port=free_port(), server="127.0.0.1",
                            log_path=tmp_path / "x.log")
    plotter.add_scalar("Loss_S", 1, 1.0)
    plotter.add_image("input", np.zeros((3, 4, 4)))
    plotter.add_table("config", {"a": 1})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "visdom is not installed" in err[0]
    assert not (tmp_path / "x.log").exists()


@pytest.mark.slow
def test_the_page_and_every_asset_are_served_without_a_cdn(tmp_path):
    """scripts/install.sh installs visdom's static files from the npm registry: the real server
    entry point (its download step included) then serves a page that needs no CDN."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: scripts/visdom_offline_assets.py needs it")
    result = subprocess.run([sys.executable, str(REPO / "scripts/visdom_offline_assets.py")],
                            capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    proc, port = start_server(tmp_path, download_step=True)
    try:
        base = f"http://127.0.0.1:{port}/env/main"
        with urllib.request.urlopen(base, timeout=10) as response:
            page = response.read().decode()
        urls = []  # what the page loads: scripts and stylesheets (visdom's own icon link aside)
        parser = HTMLParser()
        parser.handle_starttag = lambda tag, attrs: urls.extend(  # type: ignore[method-assign]
            v for k, v in attrs if (tag, k) in (("script", "src"), ("link", "href"))
            and ("rel", "icon") not in attrs)
        parser.feed(page)
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
        local = [u for u in urls if u.startswith("/static/")]
        assert len(local) >= 15, urls
        for url in local:  # as a browser asks them: /static/../user/style.css is /user/style.css
            with urllib.request.urlopen(urljoin(base, url), timeout=10) as response:
                assert response.status == 200 and (response.read() or "/user/" in url), url
    finally:
        stop_server(proc)
