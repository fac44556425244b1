"""The client of tests/helpers/forked_runs.py, run as `python -S -E warm_python.py SOCKET
args...` (no site, so it starts in milliseconds): asks the warm server to run `python args` with
this process's stdin, stdout, stderr, environment and working folder, and exits as that run did."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forked_runs import request  # noqa: E402 - stdlib only at import

if __name__ == "__main__":
    code = request(sys.argv[1], sys.argv[2:], os.getcwd(), os.environ, [0, 1, 2])
    sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as a shell says
