"""Seconds per DFAD iteration (5 student steps + 1 generator step) per config and mode.

A config is a DFAD script: its flags and its `build(args)` make the networks (random teacher, no
test set: nothing needs to be on disk). Each (config, mode) runs in a process of its own, whose
peak memory is reported (RSS on the CPU, max allocated on a GPU). Modes: `reference` the
original's iteration (benchmarks/original_iteration.py: NCHW, a teacher taking gradients, plain
optimizers, glibc's default malloc); `fp32` the engine's student_step x5 + generator_step, placed
by runtime.speed.speed_up; `bf16`/`fp16` the same with --amp, `compile` with --compile; `health`
the per-epoch generator-health measurement. cuDNN as in the scripts (--cudnn_benchmark).

    python benchmarks/benchmark.py --configs mnist --modes reference fp32 bf16 --iters 3

--upsample_conv times GeneratorA's upsample + 3x3 convolution pairs per DFAD iteration instead,
plain ops against runtime.speed's phase kernels:

    python benchmarks/benchmark.py --upsample_conv --configs mnist cifar10 --device cuda
"""
from __future__ import annotations

import argparse
import copy
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
from torch import nn
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
from engine.evaluation import eval_mode
from network import gan
from reporting.generator_health import GeneratorHealth, fixed_latents
from runtime.cli import int_at_least
from runtime.device import describe_device, setup, why_no_cuda
from runtime.speed import Precision, fuse_upsample_conv, optimizer_options, speed_up

SCRIPTS = {"mnist": DFAD_mnist, "cifar10": DFAD_cifar, "caltech101": DFAD_caltech101,
           "camvid": DFAD_camvid_deeplab}
MODES = ("reference", "fp32", "bf16", "fp16", "compile", "health")
Iteration = Callable[[], object]


@contextmanager
def nothing_on_disk() -> Iterator[None]:
    """`build(args)` without files: an empty test set, the teacher's weights as initialised (the
    time does not depend on them)."""
    with ExitStack() as stack:
        for module in (DFAD_mnist, DFAD_cifar, DFAD_caltech101, dfad_segmentation):
            stack.enter_context(mock.patch.object(
                module, "get_dataloader", lambda args, train: (None, DataLoader([]))))
            stack.enter_context(mock.patch.object(
                module, "load_teacher", lambda model, path: model.requires_grad_(False).eval()))
        yield


def experiment(name: str, flags: list[str]) -> tuple[argparse.Namespace, Experiment,
                                                    torch.device]:
    """The config's script as it starts: its flags, set-up (seeds, cuDNN), then build(args)."""
    args = SCRIPTS[name].get_parser().parse_args(["--health_batch", "0", *flags])
    device = setup(args)
    with nothing_on_disk():
        return args, SCRIPTS[name].build(args), device


def optimizers(args: argparse.Namespace, exp: Experiment, **options: bool) -> tuple[SGD, Adam]:
    """The student's and the generator's, as engine/dfad.py distill makes them."""
    return (SGD(exp.student.parameters(), lr=args.lr_S, momentum=STUDENT_MOMENTUM,
                weight_decay=args.weight_decay, **options),
            Adam(exp.generator.parameters(), lr=args.lr_G, **options))


def reference_iteration(args: argparse.Namespace, exp: Experiment,
                        device: torch.device) -> Iteration:
    teacher, student, generator = exp.teacher, exp.student, exp.generator
    teacher.requires_grad_(True).to(device)  # the original's teacher took gradients
    student.to(device)
    generator.to(device)
    optimizer_S, optimizer_G = optimizers(args, exp)

    def loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return exp.generator_objective(torch.empty(0), s, t)

    return lambda: original_iteration(teacher, student, generator, optimizer_S, optimizer_G,
                                      args.batch_size, args.nz, loss, device)


def engine_iteration(args: argparse.Namespace, exp: Experiment,
                     device: torch.device) -> Iteration:
    """The iteration of engine/dfad.py train_one_epoch, with distill's set-up."""
    teacher, student, generator = exp.teacher, exp.student, exp.generator
    speed_up(args, device, teacher, student, generator)
    optimizer_S, optimizer_G = optimizers(args, exp, **optimizer_options(args, device))
    precision = Precision(args.amp, device)

    def iteration() -> None:
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            student_step(teacher, student, generator, optimizer_S,
                         sample_noise(args.batch_size, args.nz, device), exp.student_objective,
                         precision)
        generator_step(teacher, student, generator, optimizer_G,
                       sample_noise(args.batch_size, args.nz, device), exp.generator_objective,
                       precision)

    return iteration


def health_iteration(args: argparse.Namespace, exp: Experiment,
                     device: torch.device) -> Iteration:
    """The measurement; its one-off real-image reference (random images here) is a warm-up."""
    nets = exp.teacher, exp.student, exp.generator
    speed_up(args, device, *nets)
    with torch.no_grad(), eval_mode(exp.generator):
        shape = exp.generator(sample_noise(2, args.nz, device)).shape[1:]
    health = GeneratorHealth(fixed_latents(args.batch_size, args.nz, 0),
                             torch.randn(args.batch_size, *shape))

    def iteration() -> None:
        with eval_mode(*nets):
            health.measure(*nets, device)

    return iteration


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, mode: str, flags: list[str], iters: int,
            warmup: int) -> dict[str, object]:
    """Time `iters` iterations after `warmup` ones, in this process."""
    mode_flags = {"bf16": ["--amp", "bf16"], "fp16": ["--amp", "fp16"],
                  "compile": ["--compile"]}.get(mode, [])
    args, exp, device = experiment(name, [*flags, *mode_flags])
    make = {"reference": reference_iteration, "health": health_iteration}.get(mode,
                                                                              engine_iteration)
    iteration = make(args, exp, device)
    for _ in range(warmup):
        iteration()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        iteration()
        synchronize(device)
        times.append(time.perf_counter() - start)
    cuda = device.type == "cuda"
    mean = sum(times) / len(times)
    batches = 1 if mode == "health" else STUDENT_STEPS_PER_ITERATION + 1  # generated batches
    return {"config": name, "mode": mode, "device": str(device), "batch_size": args.batch_size,
            "threads": torch.get_num_threads(), "iters": iters, "warmup": warmup,
            "s_per_iter": mean, "s_per_iter_min": min(times), "s_per_iter_max": max(times),
            "samples_per_s": batches * args.batch_size / mean,
            "peak_mib": (torch.cuda.max_memory_allocated() / 2**20 if cuda else
                         resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_kind": "cuda_max_allocated" if cuda else "rss",
            "cudnn_benchmark": args.cudnn_benchmark}


def ms_per_call(fn: Callable[[], object], device: torch.device, iters: int,
                warmup: int) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return 1e3 * (time.perf_counter() - start) / iters


def iteration_ms(layer: nn.Module, x: torch.Tensor, precision: Precision, device: torch.device,
                 iters: int, warmup: int) -> float:
    """ms per DFAD iteration of one layer: 5 forwards (the student steps) + 1 forward+backward
    (the generator step)."""
    def forward() -> None:
        with torch.no_grad(), precision.autocast():
            layer(x)

    def forward_backward() -> None:
        with precision.autocast():
            out = layer(x)
        torch.autograd.grad(out, [x, *layer.parameters()], torch.ones_like(out))

    return (STUDENT_STEPS_PER_ITERATION * ms_per_call(forward, device, iters, warmup)
            + ms_per_call(forward_backward, device, iters, warmup))


def upsample_conv(name: str, flags: list[str], iters: int, warmup: int) -> list[dict[str, object]]:
    """Both upsample + 3x3 conv pairs of the config's GeneratorA, channels_last as the engine
    runs them, plain and as phase kernels, per DFAD iteration, fp32 and bf16 autocast."""
    args, exp, device = experiment(name, flags)
    plain = exp.generator
    if not isinstance(plain, gan.GeneratorA):
        print(f"{name}: no upsample + 3x3 conv in its generator (GeneratorB)", flush=True)
        return []
    phases = copy.deepcopy(plain)
    fuse_upsample_conv(phases)
    pairs = [(nn.Sequential(plain.upsample, plain.conv_blocks1[0]), phases.conv_blocks1[0]),
             (nn.Sequential(plain.upsample, plain.conv_blocks2[0]), phases.conv_blocks2[0])]
    rows = []
    for dtype in ("fp32", "bf16"):
        precision = Precision("bf16" if dtype == "bf16" else "off", device)
        total = {"plain": 0.0, "phases": 0.0}
        for i, layers in enumerate(pairs):
            size = plain.init_size * 2**i
            # Under bf16 autocast the generator's BatchNorm hands the pair a bf16 map.
            x = torch.randn(args.batch_size, layers[1].in_channels, size, size, device=device,
                            dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
            x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
            for kind, layer in zip(total, layers, strict=True):
                layer.to(device, memory_format=torch.channels_last)
                total[kind] += iteration_ms(layer, x, precision, device, iters, warmup)
        faster = "phase kernels" if total["phases"] < total["plain"] else "plain ops"
        print(f"{name} {dtype}, per DFAD iteration (5 forwards + 1 forward+backward of both "
              f"layers, batch {args.batch_size}): plain {total['plain']:.3f} ms, phase kernels "
              f"{total['phases']:.3f} ms: {faster} faster on {device.type} (plain/phases "
              f"{total['plain'] / total['phases']:.2f})", flush=True)
        rows.append({"config": name, "dtype": dtype, "device": str(device),
                     "batch_size": args.batch_size, "plain_ms": total["plain"],
                     "phases_ms": total["phases"]})
    return rows


def run_iterations(args: argparse.Namespace, flags: list[str]) -> list[dict[str, object]]:
    """Each (config, mode) in its own process, printed as it ends."""
    results = []
    print(f"{'config':<11}{'mode':<11}{'batch':>6}{'s/iter':>9}{'samples/s':>11}"
          f"{'peak MiB':>10}", flush=True)
    for name in args.configs:
        for mode in args.modes:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", name, mode,
                   "--iters", str(args.iters), "--warmup", str(args.warmup), *flags]
            # the original ran with glibc's default malloc (runtime/speed.py keep_freed_memory)
            env = {**os.environ, **({"DFAD_KEEP_FREED_MEMORY": "0"} if mode == "reference"
                                    else {})}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{name:<11}{mode:<11} failed: {last}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"{name:<11}{mode:<11}{row['batch_size']:>6}{row['s_per_iter']:>9.3f}"
                  f"{row['samples_per_s']:>11.1f}{row['peak_mib']:>10.0f}", flush=True)
    return results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=tuple(SCRIPTS), default=["mnist"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["reference", "fp32", "bf16"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch_size", type=int_at_least(2), default=None,
                        help="override every config's paper batch size (its --batch_size)")
    parser.add_argument("--iters", type=int_at_least(1), default=3,
                        help="timed iterations (default: 3)")
    parser.add_argument("--warmup", type=int_at_least(0), default=1,
                        help="untimed iterations first (default: 1; more for compile)")
    parser.add_argument("--cudnn_benchmark", action="store_true",
                        help="cuDNN autotuning, as the scripts' flag (default: deterministic)")
    parser.add_argument("--upsample_conv", action="store_true",
                        help="time GeneratorA's upsample + 3x3 conv, plain vs phase kernels, "
                             "instead of DFAD iterations")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = get_parser().parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"error: --device cuda was given but CUDA is not available ({why_no_cuda()}): "
                 "use --device cpu")
    # what every config's script gets, and the child processes too
    flags = ["--device", args.device, *(["--cudnn_benchmark"] if args.cudnn_benchmark else []),
             *(["--batch_size", str(args.batch_size)] if args.batch_size else [])]
    if args.one:  # the child process: one measurement, one JSON line
        print(json.dumps(measure(*args.one, flags, args.iters, args.warmup)))
        return
    torch.backends.cudnn.deterministic = not args.cudnn_benchmark  # as runtime.device.setup
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    print(f"{describe_device(torch.device(args.device))}; cuDNN "
          f"{torch.backends.cudnn.version()}: enabled={torch.backends.cudnn.enabled} "
          f"deterministic={torch.backends.cudnn.deterministic} "
          f"benchmark={torch.backends.cudnn.benchmark} "
          f"allow_tf32={torch.backends.cudnn.allow_tf32} "
          f"(matmul allow_tf32={torch.backends.cuda.matmul.allow_tf32})", flush=True)
    if args.upsample_conv:
        results = [row for name in args.configs
                   for row in upsample_conv(name, flags, args.iters, args.warmup)]
    else:
        results = run_iterations(args, flags)
    print(json.dumps(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
