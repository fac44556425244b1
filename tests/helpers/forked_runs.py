"""Run entry scripts as `python script.py args` would, in forks of one warm interpreter.

A fresh interpreter spends about 3 s importing torch and torchvision before a script parses its
first flag; test files with dozens of short runs spend most of their time there. The server
below imports them once, listens on a Unix socket, and forks a child per run: each run is still
a process of its own (its exit code, its stdin/stdout/stderr, environment and working folder,
its locks, signal handlers and module state), started from a state in which nothing but imports
has happened.

    runner = ForkedRunner(env, tmp)     # starts `python tests/helpers/forked_runs.py SOCKET`
    result = runner.run([script, *args], cwd)   # a subprocess.CompletedProcess
    python = runner.python()            # an interpreter for shell scripts' PYTHON=: each
                                        # `$PYTHON script.py ...` / `$PYTHON -m module ...` runs
                                        # in a fork, with the caller's fds, env and folder
    runner.close()
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("warm_python.py")


class ForkedRunner:
    def __init__(self, env: Mapping[str, str], folder: Path) -> None:
        self.env = dict(env)
        self.folder = folder
        self.socket = str(folder / "warm.sock")
        self.server = subprocess.Popen([sys.executable, __file__, self.socket], env=self.env,
                                       stdout=subprocess.PIPE, text=True)
        ready = self.server.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"forked_runs server did not start: {ready!r}")

    def run(self, argv: Sequence[str], cwd: str | Path) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            with open(os.devnull) as stdin, open(out, "w") as stdout, open(err, "w") as stderr:
                code = request(self.socket, [str(a) for a in argv], str(cwd), self.env,
                               [stdin.fileno(), stdout.fileno(), stderr.fileno()])
            return subprocess.CompletedProcess(list(argv), code, out.read_text(),
                                               err.read_text())

    def python(self) -> str:
        """A file that works as an interpreter's path: `$PYTHON args` runs `python args` here."""
        shim = self.folder / "warm-python"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{CLIENT}" "{self.socket}" '
                        '"$@"\n')
        shim.chmod(0o755)
        return str(shim)

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)


def request(path: str, argv: list[str], cwd: str, env: Mapping[str, str],
            fds: list[int]) -> int:
    """Ask the server at `path` to run `python argv` in `cwd` with `env` and `fds` as stdin,
    stdout and stderr; returns its exit code (the warm_python client does the same)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        message = json.dumps({"argv": argv, "cwd": cwd, "env": dict(env)}).encode()
        socket.send_fds(conn, [len(message).to_bytes(8, "little") + message], fds)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    return json.loads(reply)["returncode"]


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    size = int.from_bytes(data[:8], "little")
    data = data[8:]
    while len(data) < size:
        data += conn.recv(size - len(data))
    return json.loads(data), fds


def _child(request: dict, fds: list[int]) -> None:
    """In the fork: become `python <argv>` started in `cwd`; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for target, fd in zip(fds, (0, 1, 2), strict=True):
            os.dup2(target, fd)
            os.close(target)
        # Python's own standard streams on the caller's descriptors, buffered as a fresh
        # interpreter's are.
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)
        os.environ.clear()
        os.environ.update(request["env"])
        argv = request["argv"]
        try:
            if argv[:1] == ["-m"]:
                sys.argv = ["-m", *argv[2:]]
                sys.path[0] = os.getcwd()  # as `python -m` does
                runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
            else:
                sys.argv = list(argv)
                sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # as `python script`
                runpy.run_path(argv[0], run_name="__main__")
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _handle(conn: socket.socket) -> None:
    """One connection, in a fork of the server: run the request in a fork of its own (so that
    this process can report its exit status) and send the status back."""
    request, fds = _receive(conn)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _child(request, fds)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())


def serve(path: str) -> None:
    sys.path.insert(0, str(REPO))
    import torch  # noqa: F401 - the imports every run would otherwise pay for
    import torchvision  # noqa: F401

    import dataloader  # noqa: F401
    import engine.dfad  # noqa: F401
    import engine.teacher  # noqa: F401
    import tables.paper_table  # noqa: F401

    sys.path.pop(0)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the connection handlers reap themselves
    print("ready", flush=True)
    parent = os.getppid()
    server.settimeout(1.0)
    while os.getppid() == parent:  # a test process that dies takes its server with it
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this one waits for its run
            try:
                _handle(conn)
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
