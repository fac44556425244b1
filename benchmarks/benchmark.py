"""Seconds per DFAD iteration (5 student steps + 1 generator step) per config and mode.

Each (config, mode) runs in its own process, so its peak memory is its own: RSS on the CPU,
torch.cuda.max_memory_allocated on a GPU. Modes:
  reference  the original implementation's iteration (benchmarks/original_iteration.py): NCHW, the
             teacher's weights take gradients, the student step's generator pass records
             autograd and is detached afterwards
  fp32       this repo's default engine, set up as the DFAD scripts do (engine/dfad.py
             setup_distillation, from the script's own flags; same maths)
  bf16/fp16  --amp bf16 / --amp fp16
  compile    --compile (fp32); its compilation happens in the warm-up iterations
  health     no training step: the per-epoch generator-health measurement
             (reporting/generator_health.py) on a fixed batch of the config's size; its one-off
             real-image reference (random images here) falls in the warm-up
cuDNN runs as in the scripts: deterministic unless --cudnn_benchmark (autotuning).

    python benchmarks/benchmark.py --configs mnist --modes reference fp32 bf16 --iters 3

--upsample_conv instead times the generator's "2x upsample, then 3x3 convolution" pairs
(GeneratorA: mnist, cifar10) as plain ops against the 2x2 phase kernels of
network/gan.py Upsample2xConv3x3, in this process, so the default can follow a measurement:

    python benchmarks/benchmark.py --upsample_conv --configs mnist cifar10 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.optim import SGD, Adam

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/benchmark.py`

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
from benchmarks.original_iteration import original_iteration
from engine.dfad import (
    STUDENT_MOMENTUM,
    STUDENT_STEPS_PER_ITERATION,
    GeneratorLoss,
    Recipe,
    generator_loss_log_mae,
    generator_loss_mae,
    generator_step,
    sample_noise,
    setup_distillation,
    student_step,
)
from engine.evaluation import evaluate_classification
from network import gan, lenet, resnet_8x, torchvision_resnet
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from reporting.generator_health import GeneratorHealth, fixed_latents
from runtime import startup
from runtime.cli import int_at_least
from engine.evaluation import eval_mode
from runtime.host_memory import keep_freed_memory
from runtime.precision import Precision
from runtime.startup import describe_device, why_no_cuda

MODES = ("reference", "fp32", "bf16", "fp16", "compile", "health")


@dataclass(frozen=True)
class Config:
    """One DFAD script's networks and its paper batch size."""

    build: Callable[[], tuple[nn.Module, nn.Module, nn.Module]]
    batch_size: int
    nz: int
    generator_loss: GeneratorLoss
    lr_S: float


CONFIGS = {
    "mnist": Config(lambda: (lenet.LeNet5(), lenet.LeNet5Half(), gan.GeneratorA(100, nc=1)),
                    512, 100, generator_loss_mae, 0.01),
    "cifar10": Config(lambda: (resnet_8x.ResNet34_8x(10), resnet_8x.ResNet18_8x(10),
                               gan.GeneratorA(256, nc=3)), 256, 256, generator_loss_mae, 0.1),
    "caltech101": Config(lambda: (torchvision_resnet.resnet34(101),
                                  torchvision_resnet.resnet18(101),
                                  gan.GeneratorB(nz=256, nc=3, img_size=128)),
                         64, 256, generator_loss_mae, 0.05),
    "camvid": Config(lambda: (deeplabv3_resnet50(11, pretrained_backbone=False),
                              deeplabv3_mobilenet(11, dropout_p=0.5, pretrained_backbone=False),
                              gan.GeneratorB(nz=256, nc=3, img_size=128)),
                     64, 256, generator_loss_log_mae, 0.1),
}
# The script whose own flags (defaults, and the mode's --amp / --compile) set up the engine.
SCRIPT_PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "mnist": DFAD_mnist.get_parser, "cifar10": DFAD_cifar.get_parser,
    "caltech101": DFAD_caltech101.get_parser, "camvid": DFAD_camvid_deeplab.get_parser}


def set_cudnn(autotune: bool) -> str:
    """The scripts' cuDNN setting (runtime/startup.py): deterministic, or autotuned; returns it."""
    startup.set_cudnn(autotune)
    return (f"cuDNN {torch.backends.cudnn.version()}: "
            f"enabled={torch.backends.cudnn.enabled} "
            f"deterministic={torch.backends.cudnn.deterministic} "
            f"benchmark={torch.backends.cudnn.benchmark} "
            f"allow_tf32={torch.backends.cudnn.allow_tf32} "
            f"(matmul allow_tf32={torch.backends.cuda.matmul.allow_tf32})")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_args(name: str, mode: str, device: torch.device,
                batch_size: int) -> argparse.Namespace:
    """The config's DFAD script's flags for this mode (no generator health: timed alone)."""
    flags = ["--device", device.type, "--batch_size", str(batch_size), "--health_batch", "0"]
    if mode in ("bf16", "fp16"):
        flags += ["--amp", mode]
    if mode == "compile":
        flags.append("--compile")
    return SCRIPT_PARSERS[name]().parse_args(flags)


def measure(name: str, mode: str, device: torch.device, batch_size: int, iters: int,
            warmup: int, cudnn_benchmark: bool = False) -> dict[str, object]:
    """Time `iters` iterations after `warmup` ones, in this process."""
    config = CONFIGS[name]
    set_cudnn(cudnn_benchmark)
    if mode != "reference" and device.type == "cpu":  # as runtime/startup.py setup_runtime
        keep_freed_memory()
    torch.manual_seed(0)
    teacher, student, generator = config.build()
    teacher.to(device).eval()
    student.to(device).train()
    generator.to(device).train()
    if mode == "reference":
        optimizer_S = SGD(student.parameters(), lr=config.lr_S, momentum=STUDENT_MOMENTUM,
                          weight_decay=5e-4)
        optimizer_G = Adam(generator.parameters(), lr=1e-3)
    else:  # the engine's own set-up, from the script's own flags (engine/dfad.py)
        teacher.requires_grad_(False)  # as runtime/checkpoint.py load_teacher leaves it
        run = setup_distillation(engine_args(name, mode, device, batch_size), teacher, student,
                                 generator, Recipe(name, "unused.pt", config.generator_loss,
                                                   evaluate_classification, "acc"),
                                 device, test_loader=None)
        t, s, g = run.teacher_view, run.student_view, run.generator_view
        optimizer_S, optimizer_G, precision = run.optimizer_S, run.optimizer_G, run.precision
    if mode == "health":
        with torch.no_grad(), eval_mode(generator):
            shape = generator(sample_noise(2, config.nz, device)).shape[1:]
        health = GeneratorHealth(fixed_latents(batch_size, config.nz, 0),
                                 torch.randn(batch_size, *shape))

    def iteration() -> None:
        if mode == "health":
            with eval_mode(teacher, student, generator):
                health.measure(teacher, student, generator, device)
            return
        if mode == "reference":
            original_iteration(teacher, student, generator, optimizer_S, optimizer_G,
                               batch_size, config.nz, config.generator_loss, device)
            return
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            student_step(t, s, g, optimizer_S, sample_noise(batch_size, config.nz, device),
                         precision)
        generator_step(t, s, g, optimizer_G, sample_noise(batch_size, config.nz, device),
                       config.generator_loss, precision)

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
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mean = sum(times) / len(times)
    return {"config": name, "mode": mode, "device": str(device), "batch_size": batch_size,
            "threads": torch.get_num_threads(), "iters": iters, "warmup": warmup,
            "s_per_iter": mean, "s_per_iter_min": min(times), "s_per_iter_max": max(times),
            # Generated samples per second: 6 generator batches per iteration (health: 1).
            "samples_per_s": (1 if mode == "health" else STUDENT_STEPS_PER_ITERATION + 1)
            * batch_size / mean,
            "peak_mib": peak_mib,
            "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "rss",
            "cudnn_benchmark": cudnn_benchmark}


def time_per_call(fn: Callable[[], object], device: torch.device, iters: int,
                  warmup: int) -> float:
    """Mean seconds per call of `fn`, synchronised once around the timed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


def time_phases(conv: gan.Upsample2xConv3x3, x: torch.Tensor, precision: Precision,
                device: torch.device, iters: int, warmup: int
                ) -> dict[str, dict[str, float] | float]:
    """ms per call of plain vs phase kernels, forward alone and forward + backward."""
    params = [x, *conv.parameters()]

    def forward(decompose: bool) -> torch.Tensor:
        conv.phase_kernels = decompose
        with precision.autocast():
            return conv(x)

    def forward_no_grad(decompose: bool) -> None:
        with torch.no_grad():
            forward(decompose)

    def forward_backward(decompose: bool) -> None:
        out = forward(decompose)
        torch.autograd.grad(out, params, torch.ones_like(out))

    with torch.no_grad():
        diff = (forward(True).float() - forward(False).float()).abs().max().item()
    timings: dict[str, dict[str, float] | float] = {"max_abs_diff": diff}
    for step, fn in (("forward", forward_no_grad), ("fwd+bwd", forward_backward)):
        timings[step] = {
            "plain_ms": 1e3 * time_per_call(partial(fn, False), device, iters, warmup),
            "phases_ms": 1e3 * time_per_call(partial(fn, True), device, iters, warmup)}
    return timings


def upsample_conv_rows(name: str, device: torch.device, batch_size: int, iters: int,
                       warmup: int) -> list[dict[str, object]]:
    """Plain upsample + 3x3 conv against the 2x2 phase kernels, at the config's generator's
    layers and batch, channels_last as the engine runs them: forward alone (the 5 student
    steps) and forward + backward (the generator step), fp32 and bf16 autocast."""
    generator = CONFIGS[name].build()[2]
    if not isinstance(generator, gan.GeneratorA):
        return []
    generator.to(device).to(memory_format=torch.channels_last)
    size = generator.init_size
    rows: list[dict[str, object]] = []
    for layer, conv in (("conv_blocks1", generator.conv_blocks1[0]),
                        ("conv_blocks2", generator.conv_blocks2[0])):
        for dtype in ("fp32", "bf16"):
            precision = Precision(dtype if dtype == "bf16" else None, device)
            torch.manual_seed(0)
            # Under bf16 autocast the generator's BatchNorm hands the pair a bf16 map.
            x = torch.randn(batch_size, conv.in_channels, size, size, device=device,
                            dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
            x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
            timings = time_phases(conv, x, precision, device, iters, warmup)
            for step in ("forward", "fwd+bwd"):
                plain, phases = timings[step]["plain_ms"], timings[step]["phases_ms"]
                rows.append({"config": name, "layer": layer, "in_c": conv.in_channels,
                             "out_c": conv.out_channels, "in_hw": size,
                             "batch_size": batch_size, "dtype": dtype, "pass": step,
                             "device": str(device), "plain_ms": plain, "phases_ms": phases,
                             "plain_over_phases": plain / phases,
                             "max_abs_diff": timings["max_abs_diff"]})
        size *= 2
    return rows


def run_upsample_conv(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    print(f"{'config':<9}{'layer':<13}{'shape':<17}{'dtype':<6}{'pass':<9}{'plain ms':>10}"
          f"{'phases ms':>11}{'plain/phases':>14}{'max |diff|':>12}", flush=True)
    results = []
    for name in args.configs:
        rows = upsample_conv_rows(name, device, args.batch_size or CONFIGS[name].batch_size,
                                  args.iters, args.warmup)
        if not rows:
            print(f"{name:<9}no upsample + 3x3 conv in its generator (GeneratorB)", flush=True)
        for row in rows:
            shape = f"{row['in_c']}->{row['out_c']} {row['in_hw']}px"
            print(f"{name:<9}{row['layer']:<13}{shape:<17}{row['dtype']:<6}{row['pass']:<9}"
                  f"{row['plain_ms']:>10.3f}{row['phases_ms']:>11.3f}"
                  f"{row['plain_over_phases']:>14.2f}{row['max_abs_diff']:>12.2e}", flush=True)
        results += rows
    # One DFAD iteration runs the generator 5 times without autograd and once with it.
    weight = {"forward": STUDENT_STEPS_PER_ITERATION, "fwd+bwd": 1}
    for name in args.configs:
        for dtype in ("fp32", "bf16"):
            rows = [r for r in results if r["config"] == name and r["dtype"] == dtype]
            if not rows:
                continue
            plain = sum(weight[r["pass"]] * r["plain_ms"] for r in rows)
            phases = sum(weight[r["pass"]] * r["phases_ms"] for r in rows)
            faster = "phase kernels" if phases < plain else "plain ops"
            print(f"{name} {dtype}, per DFAD iteration (5 forwards + 1 forward+backward of both "
                  f"layers): plain {plain:.3f} ms, phase kernels {phases:.3f} ms: {faster} "
                  f"faster on {device.type} (plain/phases {plain / phases:.2f})", flush=True)
    return results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=["mnist"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["reference", "fp32", "bf16"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch_size", type=int_at_least(2), default=None,
                        help="override every config's paper batch size")
    parser.add_argument("--iters", type=int_at_least(1), default=3,
                        help="timed iterations (default: 3)")
    parser.add_argument("--warmup", type=int_at_least(0), default=1,
                        help="untimed iterations first (default: 1; more for compile)")
    parser.add_argument("--cudnn_benchmark", action="store_true",
                        help="cuDNN autotuning, as the scripts' flag (default: deterministic)")
    parser.add_argument("--upsample_conv", action="store_true",
                        help="time the generator's upsample + 3x3 conv, plain vs 2x2 phase "
                             "kernels, instead of DFAD iterations")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = get_parser().parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"error: --device cuda was given but CUDA is not available ({why_no_cuda()}): "
                 "use --device cpu")
    device = torch.device(args.device)
    if args.one:  # the child process: one measurement, one JSON line
        name, mode = args.one
        batch = args.batch_size or CONFIGS[name].batch_size
        print(json.dumps(measure(name, mode, device, batch, args.iters, args.warmup,
                                 args.cudnn_benchmark)))
        return
    print(f"{describe_device(device)}; {set_cudnn(args.cudnn_benchmark)}", flush=True)
    if args.upsample_conv:
        results = run_upsample_conv(args, device)
    else:
        results = run_iterations(args)
    print(json.dumps(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def run_iterations(args: argparse.Namespace) -> list[dict[str, object]]:
    """Each (config, mode) in its own process, printed as it ends."""
    results = []
    print(f"{'config':<11}{'mode':<11}{'batch':>6}{'s/iter':>9}{'samples/s':>11}"
          f"{'peak MiB':>10}", flush=True)
    for name in args.configs:
        for mode in args.modes:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", name, mode,
                   "--device", args.device, "--iters", str(args.iters),
                   "--warmup", str(args.warmup)]
            if args.batch_size:
                cmd += ["--batch_size", str(args.batch_size)]
            if args.cudnn_benchmark:
                cmd.append("--cudnn_benchmark")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{name:<11}{mode:<11} failed: {last}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"{name:<11}{mode:<11}{row['batch_size']:>6}{row['s_per_iter']:>9.3f}"
                  f"{row['samples_per_s']:>11.1f}{row['peak_mib']:>10.0f}", flush=True)
    return results


if __name__ == "__main__":
    main()
