"""Convolutional networks: nn's training step and peak memory against PyTorch (CPU).

Each measurement is run by nn and, when PyTorch is installed, by PyTorch in the same
invocation (same thread count), their timing rounds taking turns (a shared machine's speed
drifts; alternating rounds see the same drift) after a rest that lets the other framework's
idle threads stop spinning (``PAUSE``), so the ratios compare like with like:

1. one training step (forward, backward, SGD update), float32, of
   - the course's LeNet-like network, batch 64 of 1x28x28;
   - a 1D network on spectra, batch 32 of 3753 bins;
   - a VGG-ish classifier, batch 32 of 3x64x64 (3x3 convolutions 3 -> 32 -> 64 -> 128 with
     max-pools, global average pooling, dense 10);
   - a 3D network, batch 8 of 1x32x32x32 (two Conv3D k3 p1 with MaxPool3D 2, dense 2);
   - a decoder, batch 64 (Dense -> two ConvTranspose2D k4 s2 p1);
   - the LeNet-like network with BatchNorm, and with GroupNorm, after each convolution;
2. inference (``predict``) of the LeNet-like network, batch 256;
3. nn's emulated mixed precision against nn's own fp32, LeNet-like step;
4. the peak memory of forward + backward for a batch of 256 3x128x128 images through
   conv 3x3 -> 16 (pad 1), leaky ReLU, conv 3x3 -> 32 (pad 1), and of one training step of
   the VGG-ish network. Each framework runs in a fresh child process; the figure is its peak
   resident memory minus the resident memory just before the pass (inputs allocated, network
   built, libraries imported).

It then prints where nn's time goes, layer by layer (forward and backward), for every
training-step workload.

    python benchmarks/conv.py [--steps 30] [--repeat 5] [--only NAME ...] [--no-memory]
                              [--no-profile] [--no-numba] [--no-winograd]

``--no-numba`` runs col2im, max-pooling, the normalisation layers, the rectifier and the
float16 conversions as NumPy array code instead of numba kernels, to see what they bring
(and every convolution through im2col: Winograd's tile transforms are numba kernels).
``--no-winograd`` keeps numba but runs every convolution through im2col.

The benchmark prints the BLAS library and the kernel it runs (threadpoolctl, when installed)
and both frameworks' thread counts. Where ``OPENBLAS_CORETYPE`` is set (it forces older BLAS
kernels on some machines), it runs itself again without it and says so; ``--keep-coretype``
measures with it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import nn
from nn.layers import (BatchNorm, Conv1D, Conv2D, Conv3D, ConvTranspose2D, Dense, Dropout,
                       Flatten, GlobalAvgPool, GroupNorm, LeakyReLU, MaxPool1D, MaxPool2D,
                       MaxPool3D, ReLU, Unflatten)
from nn.layers.conv import ConvND
from nn.losses import MSE, SoftmaxCrossEntropy
from nn.optim import SGD
from nn.training import Trainer

#: the numba kernels (col2im, max-pool); --no-numba runs the NumPy strided slices instead
NUMBA = True
#: seconds of rest before each timing round. After a round, each framework's worker threads
#: keep spinning for a while, waiting for more work: PyTorch's OpenMP threads and the
#: OpenBLAS threads NumPy uses (up to 2**28 cycles). On 2 cores, a round that starts while
#: the other framework's threads spin shares the cores with them: without the rest, nn's
#: LeNet-like step took 10.3 to 18.0 ms from one run to the next (alone: 9.5 to 10.1), and
#: with both spins turned off (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4) 10.1 to
#: 10.6 ms, against PyTorch's 10.7 to 11.3 (which then loses its own spinning). With the
#: rest: nn 9.5 to 10.1 ms, PyTorch 7.2 to 8.1 (alone, in a fresh process: 8.0).
PAUSE = 0.5
LR = 0.01


# -- the networks -----------------------------------------------------------------------------
def lenet_nn():
    return nn.Network([
        Conv2D(1, 6, 5, padding=2), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(6, 16, 5), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(16, 48, 3), LeakyReLU(0.1), Flatten(),
        Dense(48 * 3 * 3, 1024), Dropout(0.5), Dense(1024, 256), Dropout(0.2), Dense(256, 10),
    ], SoftmaxCrossEntropy())


def lenet_torch(torch):
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 6, 5, padding=2), t.LeakyReLU(0.1), t.MaxPool2d(2),
        t.Conv2d(6, 16, 5), t.LeakyReLU(0.1), t.MaxPool2d(2),
        t.Conv2d(16, 48, 3), t.LeakyReLU(0.1), t.Flatten(),
        t.Linear(48 * 3 * 3, 1024), t.Dropout(0.5), t.Linear(1024, 256), t.Dropout(0.2),
        t.Linear(256, 10))


SPECTRA_BINS = 3753
SPECTRA_FLAT = 32 * ((((SPECTRA_BINS - 6) // 4) - 6) // 4)


def spectra_nn():
    return nn.Network([
        Conv1D(1, 16, 7), MaxPool1D(4), Conv1D(16, 32, 7), MaxPool1D(4), Flatten(),
        Dense(SPECTRA_FLAT, 7),
    ], SoftmaxCrossEntropy())


def spectra_torch(torch):
    t = torch.nn
    return t.Sequential(t.Conv1d(1, 16, 7), t.MaxPool1d(4), t.Conv1d(16, 32, 7), t.MaxPool1d(4),
                        t.Flatten(), t.Linear(SPECTRA_FLAT, 7))


def vgg_nn():
    return nn.Network([
        Conv2D(3, 32, 3, padding=1), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, 3, padding=1), ReLU(), MaxPool2D(2),
        Conv2D(64, 128, 3, padding=1), ReLU(), GlobalAvgPool(), Dense(128, 10),
    ], SoftmaxCrossEntropy())


def vgg_torch(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(3, 32, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
                        t.Conv2d(32, 64, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
                        t.Conv2d(64, 128, 3, padding=1), t.ReLU(), t.AdaptiveAvgPool2d(1),
                        t.Flatten(), t.Linear(128, 10))


def cube_nn():
    return nn.Network([
        Conv3D(1, 8, 3, padding=1), ReLU(), MaxPool3D(2),
        Conv3D(8, 16, 3, padding=1), ReLU(), MaxPool3D(2), Flatten(), Dense(16 * 8**3, 2),
    ], SoftmaxCrossEntropy())


def cube_torch(torch):
    t = torch.nn
    return t.Sequential(t.Conv3d(1, 8, 3, padding=1), t.ReLU(), t.MaxPool3d(2),
                        t.Conv3d(8, 16, 3, padding=1), t.ReLU(), t.MaxPool3d(2), t.Flatten(),
                        t.Linear(16 * 8**3, 2))


def decoder_nn():
    return nn.Network([
        Dense(32, 64 * 7 * 7), ReLU(), Unflatten((64, 7, 7)),
        ConvTranspose2D(64, 32, 4, stride=2, padding=1), ReLU(),
        ConvTranspose2D(32, 1, 4, stride=2, padding=1)], MSE())


def decoder_torch(torch):
    t = torch.nn
    return t.Sequential(t.Linear(32, 64 * 7 * 7), t.ReLU(), t.Unflatten(1, (64, 7, 7)),
                        t.ConvTranspose2d(64, 32, 4, stride=2, padding=1), t.ReLU(),
                        t.ConvTranspose2d(32, 1, 4, stride=2, padding=1))


def normed_lenet_nn(kind):
    def norm(c):
        return BatchNorm(c) if kind == "batch" else GroupNorm(2, c)
    return lambda: nn.Network([
        Conv2D(1, 6, 5, padding=2), norm(6), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(6, 16, 5), norm(16), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(16, 48, 3), norm(48), LeakyReLU(0.1), Flatten(),
        Dense(48 * 3 * 3, 1024), Dropout(0.5), Dense(1024, 256), Dropout(0.2), Dense(256, 10),
    ], SoftmaxCrossEntropy())


def normed_lenet_torch(kind):
    def make(torch):
        t = torch.nn

        def norm(c):
            return t.BatchNorm2d(c) if kind == "batch" else t.GroupNorm(2, c)
        return t.Sequential(
            t.Conv2d(1, 6, 5, padding=2), norm(6), t.LeakyReLU(0.1), t.MaxPool2d(2),
            t.Conv2d(6, 16, 5), norm(16), t.LeakyReLU(0.1), t.MaxPool2d(2),
            t.Conv2d(16, 48, 3), norm(48), t.LeakyReLU(0.1), t.Flatten(),
            t.Linear(48 * 3 * 3, 1024), t.Dropout(0.5), t.Linear(1024, 256), t.Dropout(0.2),
            t.Linear(256, 10))
    return make


def batch(shape, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(np.float32),
            rng.integers(0, n_classes, shape[0]).astype(np.int64))


# -- one training step --------------------------------------------------------------------------
def nn_step_timer(net, x, y, lr=LR):
    """The step ``fit`` runs (:meth:`nn.training.Trainer.step`) on a batch already in place."""
    trainer = Trainer(net, SGD(lr))
    B = nn.current()
    xb, yb = B.asarray(x), B.asarray(y)
    return lambda: trainer.step(xb, yb)


def torch_step_timer(torch, model, x, y, lr=LR):
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss = torch.nn.CrossEntropyLoss() if y.dtype == torch.int64 else torch.nn.MSELoss()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        opt.step()
    return step


def seconds_per_call_side_by_side(functions, steps, repeat):
    """Seconds per call of each function: the best of ``repeat`` rounds of ``steps`` calls,
    after warm-up (JIT, allocator), the functions' rounds taking turns.

    On a shared (virtual) machine the speed drifts by tens of percent over a minute; rounds
    that alternate between nn and PyTorch see the same drift, so their ratio keeps still.
    """
    for f in functions:
        for _ in range(3):
            f()
    best = [float("inf")] * len(functions)
    for _ in range(repeat):
        for i, f in enumerate(functions):
            # the other framework's idle threads stop spinning first (see PAUSE)
            time.sleep(PAUSE)
            start = time.perf_counter()
            for _ in range(steps):
                f()
            best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best


STEPS = [  # name, nn network, torch network, batch shape, classes (None: regression target)
    ("LeNet-like, 64x1x28x28", lenet_nn, lenet_torch, (64, 1, 28, 28), 10),
    ("1D spectra, 32x1x3753", spectra_nn, spectra_torch, (32, 1, SPECTRA_BINS), 7),
    ("VGG-ish, 32x3x64x64", vgg_nn, vgg_torch, (32, 3, 64, 64), 10),
    ("3D conv, 8x1x32x32x32", cube_nn, cube_torch, (8, 1, 32, 32, 32), 2),
    ("decoder, 64x32 -> 1x28x28", decoder_nn, decoder_torch, (64, 32), None),
    ("LeNet-like + BatchNorm", normed_lenet_nn("batch"), normed_lenet_torch("batch"),
     (64, 1, 28, 28), 10),
    ("LeNet-like + GroupNorm", normed_lenet_nn("group"), normed_lenet_torch("group"),
     (64, 1, 28, 28), 10),
]


def regression_batch(shape, seed=0):
    """Codes and images in [0, 1] for the decoder (small enough that SGD does not diverge)."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(shape).astype(np.float32),
            rng.random((shape[0], 1, 28, 28)).astype(np.float32))


def selected(name, args):
    return not args.only or any(word.lower() in name.lower() for word in args.only)


def compare_steps(args, torch):
    print(f"training step (forward + backward + SGD), float32")
    print(f"{'network':<28}{'nn ms':>9}{'nn img/s':>10}{'torch ms':>10}{'torch img/s':>13}"
          f"{'nn / torch':>12}")
    for name, make_nn, make_torch, shape, n_classes in STEPS:
        if not selected(name, args):
            continue
        x, y = batch(shape, n_classes) if n_classes else regression_batch(shape)
        # nn's MSE sums over the pixels (the course's 1/2 sum), PyTorch's averages: a small
        # rate keeps both decoders from diverging (a diverged step computes with inf and NaN)
        lr = LR if n_classes else 1e-5
        nn.use("numpy", "fp32", seed=0, numba=NUMBA)
        steps = [nn_step_timer(make_nn(), x, y, lr)]
        if torch is not None:
            torch.manual_seed(0)
            steps.append(torch_step_timer(torch, make_torch(torch), x, y, lr))
        t_nn, *t_torch = seconds_per_call_side_by_side(steps, args.steps, args.repeat)
        row = f"{name:<28}{t_nn * 1e3:9.2f}{shape[0] / t_nn:10.0f}"
        if t_torch:
            t_torch = t_torch[0]
            row += f"{t_torch * 1e3:10.2f}{shape[0] / t_torch:13.0f}{t_nn / t_torch:12.2f}"
        print(row, flush=True)


def compare_inference(args, torch):
    """``predict`` of the LeNet-like network on a batch of 256 (train=False, no gradient)."""
    if not selected("predict", args):
        return
    x, _ = batch((256, 1, 28, 28), 10)
    nn.use("numpy", "fp32", seed=0, numba=NUMBA)
    net = lenet_nn()
    calls = [lambda: net.predict(x, batch_size=256)]
    if torch is not None:
        model = lenet_torch(torch).eval()
        tx = torch.from_numpy(x)

        def infer():
            with torch.inference_mode():
                return model(tx).numpy()
        calls.append(infer)
    t_nn, *t_torch = seconds_per_call_side_by_side(calls, args.steps, args.repeat)
    row = f"{'LeNet-like predict, 256':<28}{t_nn * 1e3:9.2f}{256 / t_nn:10.0f}"
    if t_torch:
        t_torch = t_torch[0]
        row += f"{t_torch * 1e3:10.2f}{256 / t_torch:13.0f}{t_nn / t_torch:12.2f}"
    print(f"\ninference (predict)\n{row}", flush=True)


def compare_precisions(args):
    """nn's emulated mixed precision against nn's own fp32, LeNet-like step."""
    if not selected("mixed", args):
        return
    x, y = batch((64, 1, 28, 28), 10)
    calls = []
    for precision in ("fp32", "mixed"):
        B = nn.use("numpy", precision, seed=0, numba=NUMBA)
        step = nn_step_timer(lenet_nn(), x, y)

        def call(B=B, step=step):       # each round runs under its own precision
            with nn.backends.using(B):
                step()
        calls.append(call)
    fp32, mixed = seconds_per_call_side_by_side(calls, max(3, args.steps // 5), args.repeat)
    times = {"fp32": fp32, "mixed": mixed}
    print(f"\nemulated mixed precision on the CPU, LeNet-like step: fp32 "
          f"{times['fp32'] * 1e3:.1f} ms, mixed {times['mixed'] * 1e3:.1f} ms, mixed / fp32 "
          f"{times['mixed'] / times['fp32']:.1f}", flush=True)


# -- where the time goes --------------------------------------------------------------------------
def profile(net, x, y, steps, lr=LR):
    """Median forward and backward milliseconds of each layer over ``steps`` training steps."""
    loss, opt, params = net.loss, SGD(lr), net.parameters()
    fwd = np.zeros((steps + 2, len(net.layers)))
    bwd = np.zeros((steps + 2, len(net.layers)))
    for step in range(steps + 2):          # the first two are warm-up, dropped below
        h = nn.current().asarray(x)
        for i, layer in enumerate(net.layers):
            start = time.perf_counter()
            h = layer.forward(h, train=True)
            fwd[step, i] = time.perf_counter() - start
        loss.forward(h, y)
        dh = loss.backward()
        for i in reversed(range(len(net.layers))):
            start = time.perf_counter()
            # as training does: the first layer skips dL/dx (the input needs no gradient)
            dh = net.layers[i].backward(dh, input_grad=False) if i == 0 else \
                net.layers[i].backward(dh)
            bwd[step, i] = time.perf_counter() - start
        opt.step(params)
    return np.median(fwd[2:], axis=0) * 1e3, np.median(bwd[2:], axis=0) * 1e3


def print_profile(args):
    """The per-layer profile of every training-step workload selected (``--only``)."""
    for name, make, _, shape, n_classes in STEPS:
        if not selected(name, args):
            continue
        nn.use("numpy", "fp32", seed=0, numba=NUMBA)
        net = make()
        x, y = batch(shape, n_classes) if n_classes else regression_batch(shape)
        fwd, bwd = profile(net, x, y, args.steps, LR if n_classes else 1e-5)
        print(f"\nnn per-layer profile, {name} (median ms per step)")
        print(f"{'layer':<48}{'forward':>9}{'backward':>10}")
        for layer, f, b in zip(net.layers, fwd, bwd):
            # which algorithm the convolution ran: Winograd's, direct or im2col
            label = repr(layer) + (" W" if getattr(layer, "winograd_saved", None) else
                                   " D" if layer.__dict__.get("layout") == "direct" else "")
            print(f"{label:<48}{f:9.3f}{b:10.3f}")
        print(f"{'total':<48}{fwd.sum():9.3f}{bwd.sum():10.3f}")
        print("(W: Winograd's F(m, 3), nn/backends/winograd.py; D: direct, one input channel, "
              "nn/backends/direct.py; other convolutions: im2col)")


# -- peak memory --------------------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The process's peak resident memory (since the last :func:`reset_peak_rss`)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux


def reset_peak_rss() -> bool:
    """Start the peak over from the current resident memory (Linux >= 4.0); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(framework: str, workload: str) -> dict:
    """Run one pass of ``workload`` here; return the peak RSS increase over the pass.

    ``"conv"``: forward + backward of the 3x128x128 test (the layers of ``MEMORY_LAYERS``);
    ``"vgg"``: one training step (forward, backward, SGD) of the VGG-ish network, batch 32.
    """
    if framework == "torch":
        import torch
        torch.set_num_threads(threads())
    else:
        nn.use("numpy", "fp32", seed=0, numba=NUMBA)
        torch = None
    if workload == "vgg":
        x, y = batch((32, 3, 64, 64), 10)
        step = (nn_step_timer(vgg_nn(), x, y) if torch is None
                else torch_step_timer(torch, vgg_torch(torch), x, y))
        before = rss_bytes()
        step()               # warm-up: JIT compilation, first-use allocations of both libraries
        # the peak of the second step, over the memory before the first: what a step holds
        # between steps (nn keeps each layer's inputs and columns) counts too
        if not reset_peak_rss():
            return {"peak": float("nan"), "before": before}
        step()
        return {"peak": peak_rss_bytes() - before, "before": before}
    x = np.random.default_rng(0).standard_normal((256, 3, 128, 128)).astype(np.float32)
    if torch is None:
        layers = [Conv2D(3, 16, 3, padding=1), LeakyReLU(0.1), Conv2D(16, 32, 3, padding=1)]
        before = rss_bytes()
        h = x
        for layer in layers:
            h = layer.forward(h, train=True)
        dh = np.ones_like(h)
        for layer in reversed(layers):
            dh = layer.backward(dh)
    else:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.LeakyReLU(0.1),
                                    torch.nn.Conv2d(16, 32, 3, padding=1))
        tx = torch.from_numpy(x).requires_grad_(True)
        before = rss_bytes()
        out = model(tx)
        out.backward(torch.ones_like(out))
    return {"peak": peak_rss_bytes() - before, "before": before}


MEMORY_TESTS = [  # workload, title
    ("conv", "forward + backward, batch 256x3x128x128, conv 3->16, leaky ReLU, conv 16->32 "
             "(the activations alone: {:.0f} MiB)".format(256 * 128 * 128 * (3 + 16 + 16 + 32) * 4
                                                          / 2**20)),
    ("vgg", "one training step of the VGG-ish network, batch 32x3x64x64, after a first step"),
]


def compare_memory(torch, args):
    for workload, title in MEMORY_TESTS:
        print(f"\npeak memory (float32) of {title}")
        results = {}
        for framework in ["nn"] + (["torch"] if torch is not None else []):
            flags = ["--no-numba"] * args.no_numba + ["--no-winograd"] * args.no_winograd
            out = subprocess.run([sys.executable, __file__, "--memory-child", framework, workload,
                                  *flags], capture_output=True, text=True, check=True)
            results[framework] = json.loads(out.stdout.splitlines()[-1])["peak"]
            print(f"  {framework:<6}{results[framework] / 2**20:8.0f} MiB")
        if "torch" in results:
            print(f"  nn / torch: {results['nn'] / results['torch']:.2f}", flush=True)


# -- main ------------------------------------------------------------------------------------------
def threads() -> int:
    return len(os.sched_getaffinity(0))


def rerun_without_coretype(args):
    """``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) force older BLAS kernels: run again in a
    process without them, unless asked to keep them."""
    forced = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    if not forced or args.keep_coretype:
        if forced:
            print(f"(measuring with {', '.join(f'{k}={os.environ[k]}' for k in forced)} as set)")
        return
    env = {k: v for k, v in os.environ.items() if k not in forced}
    print(f"({', '.join(forced)} set here: measuring in a process without them; "
          "--keep-coretype measures with them)", flush=True)
    sys.exit(subprocess.call([sys.executable, __file__, *sys.argv[1:]], env=env))


def print_machine(torch):
    """The BLAS library and its kernel, and the thread counts, where they can be read."""
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            print(f"{pool.get('internal_api')} {pool.get('version')}: "
                  f"{pool.get('architecture')} kernel, {pool.get('num_threads')} threads "
                  f"({pool.get('filepath', '').split('/')[-1]})")
    except ImportError:
        print("(pip install threadpoolctl to see the BLAS library and its kernel)")
    line = f"nn: NumPy {np.__version__}, {threads()} cores available"
    if torch is not None:
        line += f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
    print(line, flush=True)


def import_torch():
    try:
        import torch
    except ImportError:
        print("(PyTorch is not installed: nn's figures only)")
        return None
    torch.set_num_threads(threads())
    return torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-numba", action="store_true",
                        help="NumPy strided slices instead of the numba kernels")
    parser.add_argument("--no-winograd", action="store_true",
                        help="every convolution through im2col (no Winograd)")
    parser.add_argument("--only", nargs="*", default=[],
                        help="run only the workloads whose name contains one of these words")
    parser.add_argument("--keep-coretype", action="store_true",
                        help="measure with OPENBLAS_CORETYPE as set (default: run without it)")
    parser.add_argument("--memory-child", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global NUMBA
    NUMBA = not args.no_numba
    if args.no_winograd:
        ConvND.winograd_min_channels = 2**62
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child)))
        return
    rerun_without_coretype(args)
    torch = import_torch()
    print_machine(torch)
    compare_steps(args, torch)
    compare_inference(args, torch)
    compare_precisions(args)
    if not args.no_memory:
        compare_memory(torch, args)
    if not args.no_profile:
        print_profile(args)


if __name__ == "__main__":
    main()
