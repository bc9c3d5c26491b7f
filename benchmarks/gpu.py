"""GPU: float16 against float32 matrix products, and two CNN training steps next to PyTorch.

Three measurements on the CuPy backend, each next to PyTorch on the same GPU when PyTorch
with CUDA is installed:

1. the throughput of a 4096 x 4096 x 4096 matrix product through the backend's ``matmul``,
   under ``"fp32"`` and under ``"mixed"`` (float16 operands, float32 accumulation on the
   tensor cores), against the GPU's dense float16 tensor-core peak;
2. one training step (forward, backward, loss scaling, SGD with momentum) of the course's
   LeNet-like network, batch 256 of 1x28x28;
3. the same for the course's 128x128 VGG-like PASCAL cut-out classifier (3x3 convolutions
   16-32-64-128-256 with max-pooling, then 512, 1024, 1024, a 1x1 convolution to the 20
   classes and global average pooling), batch 32.

nn's step is the one ``Network.fit`` runs (``nn.training.Trainer.step``, no host round-trip);
PyTorch's uses ``torch.autocast(float16)`` and a ``GradScaler`` under mixed precision, and
no TF32 in float32 (nn's float32 uses none either). The batch is on the device already for
both, and the clock is read after synchronising the device.

Targets (reported, not asserted): float16 GEMM >= 60 % of the dense float16 peak; nn's
mixed-precision step <= 1.5x PyTorch autocast's.

    python benchmarks/gpu.py [--steps 20] [--repeat 5] [--peak-tflops X] [--profile]
    python benchmarks/gpu.py --cpu        # a small smoke test on the CPU (NumPy backend)

``--profile`` adds, for each network, where the GPU time of one step goes: the kernels
launched per step (counted by PyTorch's profiler, which sees every CUDA kernel of the
process, CuPy's included), the GPU time they add up to against the wall-clock time of the
step (a step whose kernels add up to much less than its wall-clock time waits for Python
to launch them), and the kernels that take the most time.

Without a GPU (and without ``--cpu``) it says so and exits with status 0.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nn
from nn.training import LossScaler, Trainer
from nn.layers import Conv2D, GlobalAvgPool, LeakyReLU, MaxPool2D
from nn.losses import SoftmaxCrossEntropy
from nn.optim import SGD

from conv import lenet_nn, lenet_torch  # the same LeNet-like network as the CPU benchmark

LR = 0.01
VOC_CLASSES = 20

#: dense float16 tensor-core peak with float32 accumulation, TFLOP/s (vendor data sheets);
#: the first name found in the device name wins, so the longer names come first
FP16_PEAK_TFLOPS = [
    ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4),
    ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("A30", 165.0),
    ("A10G", 70.0), ("A10", 125.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("V100", 125.0), ("T4", 65.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
    ("RTX A6000", 154.8),
]


# -- the networks -------------------------------------------------------------------------------
VGG_WIDTHS = (16, 32, 64, 128, 256)      # each followed by a 2x2 max-pool: 128 -> 4
VGG_HEAD = (512, 1024, 1024)             # 3x3 convolutions at the smallest resolution


def vgg_nn():
    layers, c = [], 3
    for width in VGG_WIDTHS:
        layers += [Conv2D(c, width, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2)]
        c = width
    for width in VGG_HEAD:
        layers += [Conv2D(c, width, 3, padding=1), LeakyReLU(0.1)]
        c = width
    layers += [Conv2D(c, VOC_CLASSES, 1), GlobalAvgPool()]
    return nn.Network(layers, SoftmaxCrossEntropy())


def vgg_torch(torch):
    t = torch.nn
    layers, c = [], 3
    for width in VGG_WIDTHS:
        layers += [t.Conv2d(c, width, 3, padding=1), t.LeakyReLU(0.1), t.MaxPool2d(2)]
        c = width
    for width in VGG_HEAD:
        layers += [t.Conv2d(c, width, 3, padding=1), t.LeakyReLU(0.1)]
        c = width
    layers += [t.Conv2d(c, VOC_CLASSES, 1), t.AdaptiveAvgPool2d(1), t.Flatten()]
    return t.Sequential(*layers)


# -- timing ---------------------------------------------------------------------------------------
def seconds_per_call(f, sync, steps, repeat):
    """Best of ``repeat`` mean times over ``steps`` calls, after warm-up, device synchronised."""
    for _ in range(3):
        f()
    sync()
    best = math.inf
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            f()
        sync()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def device_sync(B):
    if B.name == "cupy":
        return B.xp.cuda.get_current_stream().synchronize
    return lambda: None


def nn_gemm(backend, precision, n, steps, repeat):
    """TFLOP/s of an n x n x n product through ``B.matmul``."""
    B = nn.use(backend, precision, seed=0)
    rng = np.random.default_rng(0)
    a, b = (B.asarray(rng.standard_normal((n, n))) for _ in range(2))
    t = seconds_per_call(lambda: B.matmul(a, b), device_sync(B), steps, repeat)
    return 2 * n**3 / t / 1e12


def torch_gemm(torch, device, dtype, n, steps, repeat):
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = seconds_per_call(lambda: a @ b, sync, steps, repeat)
    return 2 * n**3 / t / 1e12


def nn_step(backend, precision, make, x, y):
    """One ``fit`` training step on a batch already on the device."""
    B = nn.use(backend, precision, seed=0)
    net = make()
    trainer = Trainer(net, SGD(LR, momentum=0.9), LossScaler() if B.mixed else None)
    xb, yb = B.asarray(x), B.asarray(y)
    return (lambda: trainer.step(xb, yb)), device_sync(B)


def torch_step(torch, device, amp, make, x, y):
    model = make(torch).to(device)
    model.train()
    xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    if hasattr(torch.amp, "GradScaler"):
        scaler = torch.amp.GradScaler(device, enabled=amp)
    else:                                   # PyTorch < 2.3
        scaler = torch.cuda.amp.GradScaler(enabled=amp)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(xb), yb)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return step, sync


# -- profile --------------------------------------------------------------------------------------
def kernel_profile(torch, step, sync, steps=5):
    """The CUDA kernels that ``steps`` calls of ``step`` launch: (count per step, GPU
    microseconds per step, [(name, calls per step, microseconds per step)] by time)."""
    from torch.profiler import ProfilerActivity, profile
    for _ in range(3):
        step()
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        sync()
    kernels = {}
    for event in prof.events():
        if str(event.device_type).rsplit(".", 1)[-1] != "CUDA":
            continue
        calls, us = kernels.get(event.name, (0, 0.0))
        kernels[event.name] = (calls + 1, us + event.time_range.elapsed_us())
    count = sum(calls for calls, _ in kernels.values()) / steps
    busy = sum(us for _, us in kernels.values()) / steps
    ranked = sorted(((name, calls / steps, us / steps) for name, (calls, us) in kernels.items()),
                    key=lambda k: -k[2])
    return count, busy, ranked


def print_profile(label, torch, step, sync, wall_s, top=8):
    try:
        count, busy, ranked = kernel_profile(torch, step, sync)
    except Exception as exc:                  # a profiler that cannot run here: say so
        print(f"  {label}: no profile ({type(exc).__name__}: {exc})")
        return
    print(f"  {label}: {count:.0f} kernels per step, {busy / 1e3:.2f} ms of GPU time in a "
          f"{1e3 * wall_s:.2f} ms step ({100 * busy / 1e6 / wall_s:.0f} % busy)")
    for name, calls, us in ranked[:top]:
        short = name if len(name) <= 70 else name[:67] + "..."
        print(f"      {us:8.1f} us  {calls:5.1f}x  {short}")


# -- report ---------------------------------------------------------------------------------------
def describe_gpu():
    """Name, compute capability and versions of the GPU in use (CuPy)."""
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        from cupy._core import _routines_linalg as linalg
        compute = linalg.compute_type_to_str(linalg.get_compute_type(np.float16))
    except Exception as exc:   # private API: say so rather than fail
        compute = f"unknown ({type(exc).__name__})"
    print(f"GPU: {name}, compute capability {props['major']}.{props['minor']}, "
          f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}; "
          f"CuPy float16 compute type: {compute} (DEFAULT = float32 accumulation on tensor cores)")
    return name


def peak_of(name, override):
    if override:
        return override
    for key, peak in FP16_PEAK_TFLOPS:
        if key in name:
            return peak
    return None


def import_torch(device):
    try:
        import torch
    except ImportError:
        print("(PyTorch is not installed: nn's figures only)")
        return None
    if device == "cuda" and not torch.cuda.is_available():
        print(f"(PyTorch {torch.__version__} sees no CUDA device: nn's figures only)")
        return None
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False      # nn's float32 uses no TF32 either
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense float16 tensor-core peak of this GPU, if not in the table")
    parser.add_argument("--profile", action="store_true",
                        help="kernels per step and GPU busy time of each step (needs PyTorch "
                             "with CUDA)")
    parser.add_argument("--cpu", action="store_true",
                        help="a small smoke test on the CPU (NumPy backend, emulated float16)")
    args = parser.parse_args(argv)

    if args.cpu:
        backend, device, name, peak = "numpy", "cpu", "CPU (NumPy backend)", None
        n, lenet_batch, vgg_shape = 256, 16, (2, 3, 32, 32)
        print("--cpu: small sizes, float16 emulated by NumPy (slower than float32 on a CPU)")
    else:
        if not nn.backends.available("cupy"):
            try:
                nn.use("cupy")
            except nn.backends.BackendUnavailableError as exc:
                print(f"no GPU here, nothing to measure: {exc}")
            print("(python benchmarks/gpu.py --cpu runs a small smoke test on the CPU)")
            return 0
        backend, device = "cupy", "cuda"
        name = describe_gpu()
        peak = peak_of(name, args.peak_tflops)
        n, lenet_batch, vgg_shape = 4096, 256, (32, 3, 128, 128)
    torch = import_torch(device)

    print(f"\nmatrix product {n} x {n} x {n} through the backend's matmul, TFLOP/s")
    fp32 = nn_gemm(backend, "fp32", n, args.steps, args.repeat)
    fp16 = nn_gemm(backend, "mixed", n, args.steps, args.repeat)
    line = f"  nn fp32 {fp32:8.1f}    nn mixed (float16) {fp16:8.1f}    ratio {fp16 / fp32:5.1f}x"
    if peak:
        line += f"    {100 * fp16 / peak:.0f} % of the {peak:g} TFLOP/s float16 peak (target >= 60 %)"
    print(line)
    if torch is not None and device == "cuda":
        t16 = torch_gemm(torch, device, torch.float16, n, args.steps, args.repeat)
        t32 = torch_gemm(torch, device, torch.float32, n, args.steps, args.repeat)
        print(f"  torch fp32 {t32:6.1f}    torch float16 {t16:8.1f}")

    print("\ntraining step (forward, backward, SGD momentum), ms")
    print(f"{'network':<34}{'nn fp32':>9}{'nn mixed':>10}{'torch fp32':>12}{'torch amp':>11}"
          f"{'mixed / amp':>13}")
    rng = np.random.default_rng(0)
    cases = [(f"LeNet-like, {lenet_batch}x1x28x28", lenet_nn, lenet_torch,
              (lenet_batch, 1, 28, 28), 10),
             (f"VGG-like, {'x'.join(map(str, vgg_shape))}", vgg_nn, vgg_torch, vgg_shape,
              VOC_CLASSES)]
    profiles = []
    for label, make_nn, make_torch, shape, n_classes in cases:
        x = rng.random(shape, dtype=np.float32)
        y = rng.integers(0, n_classes, shape[0]).astype(np.int64)
        times, steps = {}, {}
        for precision in ("fp32", "mixed"):
            step, sync = nn_step(backend, precision, make_nn, x, y)
            times["nn", precision] = seconds_per_call(step, sync, args.steps, args.repeat)
            steps["nn", precision] = step, sync, nn.backends.current()
        row = f"{label:<34}{1e3 * times['nn', 'fp32']:9.2f}{1e3 * times['nn', 'mixed']:10.2f}"
        if torch is not None:
            for amp in ([False, True] if device == "cuda" else [False]):
                step, sync = torch_step(torch, device, amp, make_torch, x, y)
                times["torch", amp] = seconds_per_call(step, sync, args.steps, args.repeat)
                steps["torch", amp] = step, sync, None
            row += f"{1e3 * times['torch', False]:12.2f}"
            if ("torch", True) in times:
                ratio = times["nn", "mixed"] / times["torch", True]
                row += f"{1e3 * times['torch', True]:11.2f}{ratio:13.2f}"
        print(row)
        profiles.append((label, times, steps))
    if args.profile and device == "cuda" and torch is not None:
        print("\nwhere the GPU time of one step goes (PyTorch's profiler, all CUDA kernels)")
        for label, times, steps in profiles:
            print(label)
            for key, name in [(("nn", "fp32"), "nn fp32"), (("nn", "mixed"), "nn mixed"),
                              (("torch", False), "torch fp32"), (("torch", True), "torch amp")]:
                if key in steps:
                    step, sync, B = steps[key]
                    with nn.backends.using(B or nn.backends.current()):   # the step's own
                        print_profile(name, torch, step, sync, times[key])

    elif args.profile:
        print("\n(--profile needs a GPU and PyTorch with CUDA)")
    if device == "cuda":
        print("targets: float16 GEMM >= 60 % of peak; nn mixed / torch autocast <= 1.5")
    nn.use("numpy", "fp32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
