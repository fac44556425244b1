"""The client of tests/helpers/forked_runs.py, run as `python -S -E warm_python.py SOCKET
args...` (no site, so it starts in milliseconds): asks the warm server to run `python args` with
this process's stdin, stdout, stderr, environment and working folder, and exits as that run did."""
import json
import os
import socket
import sys


def main() -> None:
    path, argv = sys.argv[1], sys.argv[2:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        message = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        data = message.encode()
        socket.send_fds(conn, [len(data).to_bytes(8, "little") + data], [0, 1, 2])
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    code = json.loads(reply)["returncode"]
    sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as a shell says


if __name__ == "__main__":
    main()
