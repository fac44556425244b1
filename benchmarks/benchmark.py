"""Seconds per DFAD iteration (5 student steps + 1 generator step), per config and mode.

A config is a DFAD script: its flags and its `build(args)` make the networks and objectives, with
its two reads from disk swapped out (the test set is empty, the teacher keeps its initial
weights: the time depends on neither), so nothing needs to be on disk. Modes: `reference` the
original's iteration (benchmarks/original_iteration.py: NCHW, a teacher taking gradients, plain
optimizers, glibc's default malloc); `fp32` the engine's student_step x5 + generator_step, placed
by runtime.speed.speed_up; `bf16`/`fp16` the same with --amp, `compile` with --compile. Each
(config, mode) runs in a process of its own, whose peak memory is reported (RSS on the CPU, max
allocated on a GPU). Any other flag goes to every config's script (e.g. --batch_size 16,
--cudnn_benchmark).

    .venv/bin/python benchmarks/benchmark.py --configs mnist --modes reference fp32 bf16
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import torch
from torch.optim import SGD, Adam
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/benchmark.py`

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
from benchmarks.original_iteration import original_iteration
from engine import dfad_segmentation
from engine.dfad import (
    STUDENT_MOMENTUM,
    STUDENT_STEPS_PER_ITERATION,
    Experiment,
    generator_step,
    sample_noise,
    student_step,
)
from runtime.cli import int_at_least
from runtime.device import describe_device, setup
from runtime.speed import Precision, optimizer_options, speed_up

SCRIPTS = {"mnist": DFAD_mnist, "cifar10": DFAD_cifar, "caltech101": DFAD_caltech101,
           "camvid": DFAD_camvid_deeplab}
MODE_FLAGS = {"reference": [], "fp32": [], "bf16": ["--amp", "bf16"], "fp16": ["--amp", "fp16"],
              "compile": ["--compile"]}


@contextmanager
def nothing_on_disk() -> Iterator[None]:
    """`build(args)` without files: an empty test set, a frozen teacher as initialised."""
    with ExitStack() as stack:
        for module in (DFAD_mnist, DFAD_cifar, DFAD_caltech101, dfad_segmentation):
            stack.enter_context(mock.patch.object(
                module, "get_dataloader", lambda args, train: (None, DataLoader([]))))
            stack.enter_context(mock.patch.object(
                module, "load_teacher", lambda model, path: model.requires_grad_(False).eval()))
        yield


def iteration(mode: str, args: argparse.Namespace, exp: Experiment,
              device: torch.device) -> Callable[[], None]:
    """One DFAD iteration: the original's (`reference`), or engine/dfad.py train_one_epoch's
    with distill's set-up."""
    teacher, student, generator = exp.teacher, exp.student, exp.generator
    if mode == "reference":
        teacher.requires_grad_(True)  # the original's teacher took gradients
        for net in (teacher, student, generator):
            net.to(device)
        options = {}
    else:
        speed_up(args, device, teacher, student, generator)
        options = optimizer_options(args, device)
    optimizer_S = SGD(student.parameters(), lr=args.lr_S, momentum=STUDENT_MOMENTUM,
                      weight_decay=args.weight_decay, **options)
    optimizer_G = Adam(generator.parameters(), lr=args.lr_G, **options)
    if mode == "reference":
        def loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return exp.generator_objective(torch.empty(0), s, t)

        return lambda: original_iteration(teacher, student, generator, optimizer_S, optimizer_G,
                                          args.batch_size, args.nz, loss, device)
    precision = Precision(args.amp, device)

    def engine_iteration() -> None:
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            student_step(teacher, student, generator, optimizer_S,
                         sample_noise(args.batch_size, args.nz, device), exp.student_objective,
                         precision)
        generator_step(teacher, student, generator, optimizer_G,
                       sample_noise(args.batch_size, args.nz, device), exp.generator_objective,
                       precision)

    return engine_iteration


def measure(name: str, mode: str, flags: list[str], iters: int, warmup: int) -> dict:
    """Time `iters` iterations after `warmup` ones, in this process (the script's set-up first:
    seeds, cuDNN, device)."""
    args = SCRIPTS[name].get_parser().parse_args([*flags, *MODE_FLAGS[mode]])
    device = setup(args)
    with nothing_on_disk():
        exp = SCRIPTS[name].build(args)
    step = iteration(mode, args, exp, device)
    cuda = device.type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    return {"batch": args.batch_size, "mean": mean, "min": min(times), "max": max(times),
            "samples_per_s": (STUDENT_STEPS_PER_ITERATION + 1) * args.batch_size / mean,
            "peak_mib": (torch.cuda.max_memory_allocated() / 2**20 if cuda else
                         resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="any other flag goes to every config's script (e.g. --batch_size 16, "
               "--cudnn_benchmark)\n\nexample:\n  .venv/bin/python benchmarks/benchmark.py "
               "--configs mnist cifar10 --modes reference fp32 bf16 --device cuda",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=tuple(SCRIPTS), default=["mnist"])
    parser.add_argument("--modes", nargs="+", choices=tuple(MODE_FLAGS),
                        default=["reference", "fp32", "bf16"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--iters", type=int_at_least(1), default=3,
                        help="timed iterations (default: 3)")
    parser.add_argument("--warmup", type=int_at_least(0), default=1,
                        help="untimed iterations first (default: 1; more for compile)")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args, script_flags = get_parser().parse_known_args()
    flags = ["--device", args.device, *script_flags]
    if args.one:  # a child process: one measurement, one JSON line last
        print(json.dumps(measure(*args.one, flags, args.iters, args.warmup)))
        return
    torch.backends.cudnn.benchmark = "--cudnn_benchmark" in script_flags  # as the children
    print(describe_device(torch.device(args.device)), flush=True)
    print(f"{'config':<11}{'mode':<10}{'batch':>6}{'s/iter (min-max)':>24}{'samples/s':>11}"
          f"{'peak MiB':>10}", flush=True)
    failed = False
    for name in args.configs:
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--one", name, mode, "--iters", str(args.iters),
                   "--warmup", str(args.warmup), *flags]
            # the original ran with glibc's default malloc (runtime.speed.keep_freed_memory)
            env = {**os.environ, **({"DFAD_KEEP_FREED_MEMORY": "0"} if mode == "reference"
                                    else {})}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{name:<11}{mode:<10} failed: {last}", flush=True)
                failed = True
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            spread = f"{row['mean']:.3f} ({row['min']:.3f}-{row['max']:.3f})"
            print(f"{name:<11}{mode:<10}{row['batch']:>6}{spread:>24}"
                  f"{row['samples_per_s']:>11.1f}{row['peak_mib']:>10.0f}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
