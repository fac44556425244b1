"""Run entry scripts as `python script.py args` would, in forks of one warm interpreter.

A fresh interpreter spends about 3 s importing torch and torchvision before a script parses its
first flag; a test file with dozens of short runs (tests/test_bad_inputs.py) spends most of its
time there. The server below imports them once and forks a child per run: each run is still its
own process (its exit code, its stdout and stderr, its locks, signal handlers and module state
are its own), started from a state in which nothing but imports has happened.

    runner = ForkedRunner(env)          # starts `python tests/helpers/forked_runs.py`
    result = runner.run([script, *args], cwd)   # a subprocess.CompletedProcess
    runner.close()
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ForkedRunner:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.server = subprocess.Popen([sys.executable, __file__], env=dict(env),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.server.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"forked_runs server did not start: {ready!r}")

    def run(self, argv: Sequence[str], cwd: str | Path) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "stdout": str(out),
                       "stderr": str(err)}
            self.server.stdin.write(json.dumps(request) + "\n")
            self.server.stdin.flush()
            reply = self.server.stdout.readline()
            if not reply:
                raise RuntimeError("forked_runs server died")
            code = json.loads(reply)["returncode"]
            return subprocess.CompletedProcess(list(argv), code, out.read_text(),
                                               err.read_text())

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=30)


def _child(request: dict) -> None:
    """In the fork: become `python <argv>` started in `cwd`; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the child
        script = request["argv"][0]
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py` does
        try:
            runpy.run_path(script, run_name="__main__")
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


def serve() -> None:
    sys.path.insert(0, str(REPO))
    import torch  # noqa: F401 - the imports every run would otherwise pay for
    import torchvision  # noqa: F401

    import dataloader  # noqa: F401
    import engine.dfad  # noqa: F401
    import engine.teacher  # noqa: F401
    import tables.paper_table  # noqa: F401

    sys.path.pop(0)
    reply = sys.stdout
    print("ready", file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), file=reply,
              flush=True)


if __name__ == "__main__":
    serve()
