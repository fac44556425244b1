"""Seconds per DFAD iteration (5 student steps + 1 generator step) per config and mode.

Each (config, mode) runs in its own process, so its peak memory is its own: RSS on the CPU,
torch.cuda.max_memory_allocated on a GPU. Modes:
  reference  the original implementation's step: NCHW, the teacher's weights take gradients,
             the student step's generator pass records autograd and is detached afterwards
  fp32       this repo's default engine (same maths: utils/dfad.py student_step/generator_step)
  bf16/fp16  --amp bf16 / --amp fp16
  compile    --compile (fp32); its compilation happens in the warm-up iterations
  health     no training step: the per-epoch generator-health measurement
             (utils/generator_health.py) on a fixed batch of the config's size; its one-off
             real-image reference (random images here) falls in the warm-up

    python benchmark.py --configs mnist --modes reference fp32 bf16 --iters 3
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

import torch
from torch import nn
from torch.optim import SGD, Adam

from network import gan, lenet, resnet_8x, torchvision_resnet
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from utils.accel import Precision, maybe_compile
from utils.cli import positive_int
from utils.dfad import (
    STUDENT_MOMENTUM,
    STUDENT_STEPS_PER_ITERATION,
    GeneratorLoss,
    discrepancy,
    eval_mode,
    generator_loss_log_mae,
    generator_loss_mae,
    generator_step,
    sample_noise,
    student_step,
)
from utils.generator_health import GeneratorHealth, fixed_latents
from utils.host_memory import keep_freed_memory

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


def reference_iteration(teacher: nn.Module, student: nn.Module, generator: nn.Module,
                        optimizer_S: SGD, optimizer_G: Adam, batch_size: int, nz: int,
                        generator_loss: GeneratorLoss, device: torch.device) -> None:
    """The original's iteration, written from SPEC §1 and §3.1."""
    for _ in range(STUDENT_STEPS_PER_ITERATION):
        z = torch.randn(batch_size, nz, 1, 1, device=device)
        optimizer_S.zero_grad()
        fake = generator(z).detach()
        t_logit = teacher(fake)
        s_logit = student(fake)
        loss_S = discrepancy(s_logit, t_logit.detach())
        loss_S.backward()
        optimizer_S.step()
    z = torch.randn(batch_size, nz, 1, 1, device=device)
    optimizer_G.zero_grad()
    generator.train()
    fake = generator(z)
    loss_G = generator_loss(student(fake), teacher(fake))
    loss_G.backward()
    optimizer_G.step()


def measure(name: str, mode: str, device: torch.device, batch_size: int, iters: int,
            warmup: int) -> dict[str, object]:
    """Time `iters` iterations after `warmup` ones, in this process."""
    config = CONFIGS[name]
    if mode != "reference":  # the entry scripts do this in utils/cli.run_main
        keep_freed_memory()
    torch.manual_seed(0)
    teacher, student, generator = config.build()
    teacher.to(device).eval()
    student.to(device).train()
    generator.to(device).train()
    if mode != "reference":  # the engine's set-up (utils/dfad.py distill)
        teacher.requires_grad_(False)
        for net in (teacher, student, generator):
            net.to(memory_format=torch.channels_last)
    fused = device.type == "cuda" and mode != "reference"
    optimizer_S = SGD(student.parameters(), lr=config.lr_S, momentum=STUDENT_MOMENTUM,
                      weight_decay=5e-4, fused=fused)
    optimizer_G = Adam(generator.parameters(), lr=1e-3, fused=fused)
    precision = Precision(mode if mode in ("bf16", "fp16") else None, device)
    compiled = mode == "compile"
    t, s, g = (maybe_compile(net, compiled) for net in (teacher, student, generator))
    if mode == "health":
        with torch.no_grad(), eval_mode(generator):
            shape = generator(sample_noise(2, config.nz, device)).shape[1:]
        health = GeneratorHealth(fixed_latents(batch_size, config.nz, 0),
                                 torch.randn(batch_size, *shape))

    def iteration() -> None:
        if mode == "health":
            with eval_mode(teacher, student, generator):
                health.measure(teacher, student, generator)
            return
        if mode == "reference":
            reference_iteration(teacher, student, generator, optimizer_S, optimizer_G,
                                batch_size, config.nz, config.generator_loss, device)
            return
        for _ in range(STUDENT_STEPS_PER_ITERATION):
            student_step(t, s, g, optimizer_S, sample_noise(batch_size, config.nz, device),
                         precision)
        generator_step(t, s, g, optimizer_G, sample_noise(batch_size, config.nz, device),
                       config.generator_loss, precision)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        iteration()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        iteration()
        sync()
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
            "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "rss"}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=["mnist"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["reference", "fp32", "bf16"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch_size", type=positive_int(2), default=None,
                        help="override every config's paper batch size")
    parser.add_argument("--iters", type=positive_int(1), default=3,
                        help="timed iterations (default: 3)")
    parser.add_argument("--warmup", type=positive_int(0), default=1,
                        help="untimed iterations first (default: 1; more for compile)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = get_parser().parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but CUDA is not available: use --device cpu")
    device = torch.device(args.device)
    if args.one:  # the child process: one measurement, one JSON line
        name, mode = args.one
        batch = args.batch_size or CONFIGS[name].batch_size
        print(json.dumps(measure(name, mode, device, batch, args.iters, args.warmup)))
        return
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
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{name:<11}{mode:<11} failed: {last}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"{name:<11}{mode:<11}{row['batch_size']:>6}{row['s_per_iter']:>9.3f}"
                  f"{row['samples_per_s']:>11.1f}{row['peak_mib']:>10.0f}", flush=True)
    print(json.dumps(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
