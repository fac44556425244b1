"""Images per second of the teachers' training loaders, on synthetic data in the real formats.

    python -m benchmarks.bench_loaders --workers 0 2 --cache off on

Run from the repository root. It writes (once, into --data) CamVid as 360x480 PNGs, Caltech101 as
300x200 / 300x250 JPEGs and CIFAR-10 as torchvision's pickled batches, with the test suite's
fixture writers (tests/helpers/*_fixtures.py), then times the train loader of
`dataloader.get_dataloader(args)`, with the teacher script's flags, over --epochs epochs per
(dataset, --num_workers, --cache_images) setting. The first epoch includes building the loader
(and, with --cache_images, decoding the images into memory); later epochs are the steady state a
long run sees. Random pixels are the slow case for PNG and JPEG decoding.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the project and its test fixture writers

import train_teacher  # noqa: E402
import train_teacher_seg  # noqa: E402
from dataloader import get_dataloader  # noqa: E402
from tests.helpers.caltech_fixtures import CATEGORIES, write_tiny_caltech  # noqa: E402
from tests.helpers.cifar_fixtures import cifar_checksums_for, write_tiny_cifar10  # noqa: E402
from tests.helpers.segmentation_fixtures import write_tiny_camvid  # noqa: E402

# The teacher scripts' default batch sizes (train_teacher_seg.py, train_teacher.py).
BATCH = {"camvid": 16, "caltech101": 256, "cifar10": 256}
CACHED = ("camvid", "nyuv2")  # the datasets --cache_images applies to


def write_data(root: Path, camvid: int, caltech: int, cifar: int) -> None:
    """Every dataset once: a second run reuses the files, so before/after read the same bytes."""
    marker = root / f"written-{camvid}-{caltech}-{cifar}"
    if marker.exists():
        return
    write_tiny_camvid(root / "CamVid", n_train=camvid, n_test=1, size=(360, 480))
    per_category = {c: max(2, caltech // (len(CATEGORIES) - 1)) for c in CATEGORIES}
    write_tiny_caltech(root, per_category, sizes=[(300, 200), (300, 250)])
    sys.path.insert(0, str(REPO / "data"))
    import split_caltech101

    split_caltech101.main(["--root", str(root), "--overwrite"])
    write_tiny_cifar10(root, n_train=cifar, n_test=8)
    marker.touch()


def loader_args(dataset: str, root: Path, workers: int, cache: bool) -> argparse.Namespace:
    """The teacher script's flags for this setting, on the CPU (no pinned memory)."""
    script = train_teacher_seg if dataset == "camvid" else train_teacher
    data_root = root / "CamVid" if dataset == "camvid" else root
    return script.get_parser().parse_args([
        "--dataset", dataset, "--data_root", str(data_root), "--batch_size", str(BATCH[dataset]),
        "--num_workers", str(workers), "--device", "cpu", *(["--cache_images"] if cache else [])])


def timed_epochs(build: Callable[[], object], epochs: int) -> Iterator[tuple[int, float]]:
    """(images, seconds) of building the loader (0 images), then of each epoch."""
    start = time.perf_counter()
    loader = build()
    yield 0, time.perf_counter() - start
    for _ in range(epochs):
        start, images = time.perf_counter(), 0
        for batch, _ in loader:
            images += len(batch)
        yield images, time.perf_counter() - start


def measure(dataset: str, root: Path, workers: int, cache: bool, epochs: int) -> dict:
    checks: AbstractContextManager = (cifar_checksums_for(root) if dataset == "cifar10"
                                      else nullcontext())

    def build() -> object:
        with checks:
            return get_dataloader(loader_args(dataset, root, workers, cache))[0]

    (_, build_s), (first_n, first_s), *rest = timed_epochs(build, epochs)
    later_n, later_s = sum(n for n, _ in rest), sum(s for _, s in rest)
    return {"dataset": dataset, "workers": workers, "cache": cache, "build_s": build_s,
            "epoch1_img_s": first_n / (build_s + first_s),
            "later_img_s": later_n / later_s if rest else None}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=tuple(BATCH), default=list(BATCH))
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2],
                        help="--num_workers values to time (default: 0 2)")
    parser.add_argument("--cache", nargs="+", choices=("off", "on"), default=["off", "on"],
                        help="--cache_images settings to time, for CamVid (default: off on)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per setting (default: 3)")
    parser.add_argument("--camvid_images", type=int, default=367,
                        help="CamVid train images (default: 367, the real train split)")
    parser.add_argument("--caltech_images", type=int, default=800,
                        help="Caltech101 images before the 80/20 split (default: 800; the real "
                             "set has about 8700)")
    parser.add_argument("--cifar_images", type=int, default=10000,
                        help="CIFAR-10 train images (default: 10000; the real set has 50000)")
    parser.add_argument("--data", default="data/bench-loaders",
                        help="folder for the synthetic data, reused when present "
                             "(default: data/bench-loaders, which git ignores)")
    parser.add_argument("--label", default="", help="a name for this run's rows, e.g. before")
    parser.add_argument("--json", default=None, help="also append the rows to this file")
    return parser


def main() -> None:
    args = get_parser().parse_args()
    root = Path(args.data)
    write_data(root, args.camvid_images, args.caltech_images, args.cifar_images)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads", flush=True)
    print(f"{'label':<8}{'dataset':<12}{'workers':>8}{'cache':>7}{'build s':>9}"
          f"{'epoch 1 img/s':>15}{'later img/s':>13}", flush=True)
    rows = []
    for dataset in args.datasets:
        for workers in args.workers:
            for cache in args.cache if dataset in CACHED else ["off"]:
                row = {"label": args.label,
                       **measure(dataset, root, workers, cache == "on", args.epochs)}
                rows.append(row)
                later = f"{row['later_img_s']:.0f}" if row["later_img_s"] else "-"
                print(f"{args.label:<8}{dataset:<12}{workers:>8}{cache:>7}{row['build_s']:>9.2f}"
                      f"{row['epoch1_img_s']:>15.0f}{later:>13}", flush=True)
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
