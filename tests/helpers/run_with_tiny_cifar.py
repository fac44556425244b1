"""Run a script with torchvision's CIFAR checksums pointed at tiny test files.

    python tests/helpers/run_with_tiny_cifar.py <data_root> <script.py> [args...]

End-to-end tests run the real entry scripts in a subprocess, where a pytest fixture cannot reach.
This launcher registers the md5 sums of the files under <data_root> (see `cifar_fixtures`, the
integrity check stays on) and then runs the script as `python <script.py> [args...]` would.
"""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, not tests/helpers/
from tests.helpers.cifar_fixtures import cifar_checksums_for  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(f"usage: {os.path.basename(__file__)} <data_root> <script.py> [args...]")
    data_root, script = argv[0], argv[1]
    sys.argv = [script, *argv[2:]]
    # As `python script.py` does: the script's own folder comes first on sys.path.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    with cifar_checksums_for(data_root):
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
