"""Make a train/test split of Caltech101: <root>/caltech101/101_ObjectCategories_split/{train,test}.

    python data/split_caltech101.py --root data

NOT the authors' split, which cannot be re-made (docs/original-release.md#the-caltech101-split):
for a teacher of your own. Deterministic (sorted listings, one seeded random.Random); per category
max(int(test_ratio * n), min_test) files go to test. Standard library only.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

BACKGROUND = "BACKGROUND_Google"  # clutter, not one of the 101 categories
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
    plan = {}
    for category in sorted(name for name in os.listdir(originals)
                           if name != BACKGROUND and (originals / name).is_dir()):
        files = sorted(os.listdir(originals / category))
        test = set(rng.sample(range(len(files)),
                              min(len(files), max(int(test_ratio * len(files)), min_test))))
        plan[category] = {"train": [f for i, f in enumerate(files) if i not in test],
                          "test": [f for i, f in enumerate(files) if i in test]}
    return plan


def write_split(root: Path, plan: dict[str, dict[str, list[str]]], overwrite: bool) -> Path:
    """Copy into a temporary folder, then rename it: no half-made split is left."""
    base = root / "caltech101"
    target = base / "101_ObjectCategories_split"
    if target.exists() and not overwrite:
        raise SystemExit(f"error: {target} already exists (it may be the authors' split): "
                         "remove it or pass --overwrite")
    tmp = base / f".101_ObjectCategories_split.tmp-{os.getpid()}"
    try:
        for category, parts in plan.items():
            for part, files in parts.items():
                (tmp / part / category).mkdir(parents=True, exist_ok=True)
                for name in files:
                    shutil.copy2(base / "101_ObjectCategories" / category / name,
                                 tmp / part / category / name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def main(argv: list[str] | None = None) -> Path:
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
    args = parser.parse_args(argv)
    if not 0 < args.test_ratio < 1 or args.min_test < 0:
        parser.error("--test_ratio must lie between 0 and 1 and --min_test be >= 0")
    originals = Path(args.root) / "caltech101" / "101_ObjectCategories"
    if not originals.is_dir():
        raise SystemExit(f"error: {originals} not found: extract 101_ObjectCategories.tar.gz "
                         "from the Caltech101 release there")
    print(WARNING, file=sys.stderr)
    plan = plan_split(originals, args.seed, args.test_ratio, args.min_test)
    target = write_split(Path(args.root), plan, args.overwrite)
    count = {part: sum(len(p[part]) for p in plan.values()) for part in ("train", "test")}
    print(f"{target}: {len(plan)} categories, {count['train']} train and {count['test']} test "
          "images")
    return target


if __name__ == "__main__":
    main()
