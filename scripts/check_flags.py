"""Check a script's flags before a run starts: a flag meant for the other script of a row then
fails in one line at once, not after hours of teacher training.

  python scripts/check_flags.py SCRIPT.py FLAGS...    (run from the repository)
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]


class Rejected(Exception):
    pass


def rejection(script: str, flags: list[str]) -> str | None:
    """Why `script` would refuse `flags` (argparse's message), or None when it accepts them."""
    sys.path.insert(0, str(REPO))
    parser = importlib.import_module(Path(script).stem).get_parser()

    def error(message: str) -> NoReturn:
        raise Rejected(message)

    parser.error = error  # type: ignore[method-assign]
    try:
        parser.parse_args(flags)
    except Rejected as err:
        return str(err)
    except SystemExit:  # --help and the like: a flag the script accepts
        return None
    return None


def main() -> None:
    script, *flags = sys.argv[1:]
    message = rejection(script, flags)
    if message is not None:
        print(f"error: {script}: {message} (flags for one script only go in TEACHER_ARGS or "
              "DFAD_ARGS, see the README)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
