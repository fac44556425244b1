"""Arguments for the engine's tests from the scripts' own parsers, never a hand-built Namespace:
a test then runs with exactly the fields, defaults and checks a real command line gets."""
from __future__ import annotations

import argparse

import DFAD_mnist


def command_line(**flags: object) -> list[str]:
    """`--name value` per keyword; True: the flag alone; "": the flag alone with its `const`
    (`--resume`); None or False: left out, so the parser's default applies."""
    argv: list[str] = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        argv.append(f"--{name}")
        if value is not True and value != "":
            argv.append(str(value))
    return argv


def parse(parser: argparse.ArgumentParser, **flags: object) -> argparse.Namespace:
    return parser.parse_args(command_line(**flags))


def dfad_args(**flags: object) -> argparse.Namespace:
    """DFAD_mnist.py's flags: its paper defaults, except those given."""
    return parse(DFAD_mnist.get_parser(), **flags)
