"""The CPU speed-ups of the generator keep its values: the 2x2 phase decomposition of
upsample + 3x3 conv, the channels_last layout from the first layer on, and glibc's freed-memory
reuse (runtime/host_memory.py)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from network.gan import GeneratorA, Upsample2xConv3x3, _phase_kernels

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_decomposition_equals_upsample_then_conv_in_float64(channels_last, bias):
    torch.manual_seed(0)
    conv = Upsample2xConv3x3(5, 7, bias=bias, phase_kernels=True).double()
    x = torch.randn(3, 5, 4, 6, dtype=torch.double, requires_grad=True)  # not square on purpose
    x_in = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    params = [x, *conv.parameters()]
    plain = F.conv2d(F.interpolate(x_in, scale_factor=2), conv.weight, conv.bias, padding=1)
    grad_out = torch.randn_like(plain)
    plain_grads = torch.autograd.grad(plain, params, grad_out)
    phases = conv(x_in)
    phase_grads = torch.autograd.grad(phases, params, grad_out)
    assert phases.shape == plain.shape == (3, 7, 8, 12)
    torch.testing.assert_close(phases, plain, rtol=0, atol=1e-12)
    for got, want in zip(phase_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_decomposition_equals_upsample_then_conv_on_cuda(dtype):
    """The phase kernels must agree on a GPU too before they can be its default: exact in
    float64, fp32 rounding only with TF32 off (TF32 would round both paths to 10 bits)."""
    torch.manual_seed(0)
    conv = Upsample2xConv3x3(16, 8, phase_kernels=True).to("cuda", dtype)
    x = torch.randn(4, 16, 8, 8, device="cuda", dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    allow_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        plain = F.conv2d(F.interpolate(x, scale_factor=2), conv.weight, conv.bias, padding=1)
        grad_out = torch.randn_like(plain)
        plain_grads = torch.autograd.grad(plain, [x, *conv.parameters()], grad_out)
        phases = conv(x)
        phase_grads = torch.autograd.grad(phases, [x, *conv.parameters()], grad_out)
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.testing.assert_close(phases, plain, rtol=0, atol=tol)
    for got, want in zip(phase_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("channels_last", [False, True])
def test_plain_path_is_the_original_upsample_then_conv_bit_for_bit(channels_last):
    """NCHW (auto) or phase_kernels=False (--original_numerics): DAFL's own two ops, so the
    same floats; the state_dict is the original nn.Conv2d's."""
    torch.manual_seed(0)
    layer = Upsample2xConv3x3(6, 4, phase_kernels=False if channels_last else None)
    conv = torch.nn.Conv2d(6, 4, 3, stride=1, padding=1)
    conv.load_state_dict(layer.state_dict(), strict=True)
    x = torch.randn(2, 6, 5, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(layer(x), conv(F.interpolate(x, scale_factor=2)))


def test_phase_kernels_hold_the_3x3_weights_summed_per_phase():
    w = torch.arange(9.0).view(1, 1, 3, 3)  # rows (0 1 2) (3 4 5) (6 7 8)
    k = _phase_kernels(w).view(4, 2, 2)
    # phase (0, 0): rows {0}, {1, 2} and columns {0}, {1, 2}
    assert k[0].tolist() == [[0.0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]]
    # phase (1, 1): rows {0, 1}, {2} and columns {0, 1}, {2}
    assert k[3].tolist() == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8.0]]


def test_generator_a_cpu_channels_last_matches_the_plain_nchw_forward():
    """The engine's layout (channels_last on the CPU) takes the decomposed path; fp32 rounding
    only. Train mode, so BatchNorm's running statistics must match too."""
    torch.manual_seed(0)
    plain = GeneratorA(nz=100, nc=1, img_size=32)
    fast = GeneratorA(nz=100, nc=1, img_size=32)
    fast.load_state_dict(plain.state_dict())
    fast.to(memory_format=torch.channels_last)
    z = torch.randn(16, 100)
    want, got = plain(z), fast(z)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    buffers = zip(plain.named_buffers(), fast.named_buffers(), strict=True)
    for (name, a), (_, b) in buffers:
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    # The state_dict is the 3x3 one: checkpoints do not change.
    assert fast.state_dict()["conv_blocks1.0.weight"].shape == (128, 128, 3, 3)


def test_freed_large_blocks_are_reused_without_page_faults():
    """Run in its own process: glibc's settings are per process."""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc malloc tuning is Linux only")
    code = textwrap.dedent("""
        import resource, sys, torch
        from runtime.host_memory import keep_freed_memory
        on = sys.argv[1] == "on"
        if on:
            assert keep_freed_memory() is True
        faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(12):  # 64 MiB: above glibc's largest mmap threshold; the heap settles
            torch.empty(64 * 2**20 // 4).fill_(1)
        before = faults()
        for _ in range(4):
            torch.empty(64 * 2**20 // 4).fill_(1)
        print((faults() - before) / 4)
    """)
    per_alloc = {}
    for mode in ("on", "off"):
        result = subprocess.run([sys.executable, "-c", code, mode], cwd=REPO, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        per_alloc[mode] = float(result.stdout.strip().splitlines()[-1])
    pages = 64 * 2**20 // 4096
    if per_alloc["off"] < pages / 2:  # e.g. transparent huge pages set to "always"
        pytest.skip(f"only {per_alloc['off']:.0f} page faults per block without the tuning: "
                    "nothing to compare on this machine")
    assert per_alloc["on"] < pages / 20  # reused from the heap, not mapped afresh


def test_opting_out_keeps_glibc_defaults(monkeypatch):
    from runtime.host_memory import keep_freed_memory

    monkeypatch.setenv("DFAD_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
