"""Check a script's flags before a row starts, so that a flag meant for the other script of the
row fails at once in one line, not after hours of teacher training.

  python scripts/check_flags.py SCRIPT.py FLAGS...    (run from the repository)
"""
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    script, *flags = sys.argv[1:]
    parser = importlib.import_module(Path(script).stem).get_parser()
    parser.error = lambda message: parser.exit(  # type: ignore[method-assign]
        1, f"error: {script}: {message} (flags for one script only go in TEACHER_ARGS or "
           "DFAD_ARGS, see the README)\n")
    parser.parse_args(flags)  # --help prints the help, as the script would


if __name__ == "__main__":
    main()
