"""Make a train/test split of Caltech101: <root>/caltech101/101_ObjectCategories_split/{train,test}.

    python data/split_caltech101.py --root data

This is NOT the authors' split. The original script listed folders in filesystem order, so its
split cannot be re-made (docs/original-release.md#the-caltech101-split); the released teacher
caltech101-resnet34.pt was trained on the authors' split, and on any other split it is tested partly
on its own training images (docs/original-release.md#reports-from-users, original issue #2: 95.75%
instead of 76.6%). For the paper's numbers use the authors' 101_ObjectCategories_split.zip. Use this
tool to train a teacher of your own, and keep its split.

Our split is deterministic on every filesystem: sorted listings and one seeded random.Random.
Per category, max(int(test_ratio * n), min_test) files go to test, the rest to train.
Standard library only, so it runs without the repo's environment.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

# clutter, not one of the 101 categories (docs/original-release.md#datasets-and-on-disk-layouts)
BACKGROUND = "BACKGROUND_Google"
WARNING = (
    "warning: this split is NOT the authors' split. Teachers trained on the authors' split (e.g. "
    "the released caltech101-resnet34.pt) must be evaluated on the authors' split "
    "(101_ObjectCategories_split.zip, 1695 test images): on this one they see their own training "
    "images (original issue #2: 95.75% instead of 76.6%)."
)


def plan_split(originals: Path, seed: int = 1, test_ratio: float = 0.2,
               min_test: int = 2) -> dict[str, dict[str, list[str]]]:
    """{category: {"train": [...], "test": [...]}}; the same on every filesystem for a seed."""
    rng = random.Random(seed)
    categories = sorted(name for name in os.listdir(originals)
                        if name != BACKGROUND and (originals / name).is_dir())
    plan = {}
    for category in categories:
        files = sorted(os.listdir(originals / category))
        k = min(len(files), max(int(test_ratio * len(files)), min_test))
        test = set(rng.sample(range(len(files)), k))
        plan[category] = {
            "train": [f for i, f in enumerate(files) if i not in test],
            "test": [f for i, f in enumerate(files) if i in test],
        }
    return plan


def write_split(root: Path, plan: dict[str, dict[str, list[str]]], overwrite: bool) -> Path:
    """Copy the files into a temporary folder, then rename it: no half-made split is left."""
    base = root / "caltech101"
    target = base / "101_ObjectCategories_split"
    if target.exists() and not overwrite:
        raise SystemExit(f"error: {target} already exists (it may be the authors' split): "
                         "remove it or pass --overwrite")
    tmp = base / f".101_ObjectCategories_split.tmp-{os.getpid()}"
    try:
        for category, parts in plan.items():
            for part, files in parts.items():
                folder = tmp / part / category
                folder.mkdir(parents=True, exist_ok=True)
                for name in files:
                    shutil.copy2(base / "101_ObjectCategories" / category / name, folder / name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Make a deterministic Caltech101 train/test split (NOT the authors' split)",
        epilog=WARNING.removeprefix("warning: "))
    parser.add_argument("--root", default="data",
                        help="the folder holding caltech101/101_ObjectCategories (default: data)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--test_ratio", type=float, default=0.2,
                        help="fraction of each category for test (default: 0.2)")
    parser.add_argument("--min_test", type=int, default=2,
                        help="at least this many test images per category (default: 2)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing 101_ObjectCategories_split")
    return parser


def main(argv: list[str] | None = None) -> Path:
    args = get_parser().parse_args(argv)
    if not 0 <= args.test_ratio <= 1 or args.min_test < 0:
        raise SystemExit("error: --test_ratio must be in [0, 1] and --min_test >= 0")
    originals = Path(args.root) / "caltech101" / "101_ObjectCategories"
    if not originals.is_dir():
        raise SystemExit(f"error: {originals} not found: extract 101_ObjectCategories.tar.gz "
                         "from the Caltech101 release there")
    print(WARNING, file=sys.stderr)
    plan = plan_split(originals, args.seed, args.test_ratio, args.min_test)
    target = write_split(Path(args.root), plan, args.overwrite)
    n_train = sum(len(p["train"]) for p in plan.values())
    n_test = sum(len(p["test"]) for p in plan.values())
    print(f"{target}: {len(plan)} categories, {n_train} train and {n_test} test images")
    return target


if __name__ == "__main__":
    main()
