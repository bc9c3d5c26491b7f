# %% [markdown]
# # GPU and mixed precision: CPU against GPU, float16 training, loss scaling, 8-bit weights
#
# The same network, the same code, four ways of running it:
#
# | backend | precision | activations, products | weights, updates |
# |---|---|---|---|
# | `numpy` (CPU) | `fp32` | float32 | float32 |
# | `numpy` (CPU) | `mixed` | float16, emulated | float32 |
# | `cupy` (GPU) | `fp32` | float32 | float32 |
# | `cupy` (GPU) | `mixed` | float16, tensor cores | float32 |
#
# `nn.use("cupy", "mixed")` is the only line that changes: layers never import NumPy or
# CuPy, they ask the backend for its array module and its matrix product. On a GPU, a
# float16 matrix product runs on the tensor cores with float32 accumulation (cuBLAS), many
# times faster than float32. On the CPU the same arithmetic is *emulated* (numbers stored in
# float16, multiplied in float32): slower than float32, but it gives the same results, so
# the effects of reduced precision can be studied on a laptop.
#
# float16 keeps 11 significant bits (a relative rounding of 2⁻¹¹ ≈ 5·10⁻⁴) and a narrow
# range: its largest value is 65504, its smallest normal number 2⁻¹⁴ ≈ 6·10⁻⁵ and its
# smallest subnormal 2⁻²⁴ ≈ 6·10⁻⁸. Below that, a number becomes **zero**. Gradients are
# often that small, so mixed precision training
#
# 1. keeps a float32 *master* copy of the weights and updates it in float32 (an update of
#    10⁻⁵ on a weight of 1 would vanish in float16);
# 2. multiplies the loss by a large *scale* S (2¹⁵) before backpropagation, which multiplies
#    every gradient by S and lifts them into float16's range; the optimizer divides by S;
# 3. makes S dynamic: a step whose gradients overflow (inf/NaN) is skipped and S halved;
#    after 2000 clean steps S doubles.
#
# You write: the fraction of numbers float16 loses, backpropagation of a scaled loss, the
# dynamic scaling rule, and an 8-bit quantization of a trained network's weights (the
# smaller brother of float16, used to run networks on small devices).

# %%
import copy
import time

import numpy as np

import nn
from nn import backends
from nn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D
from nn.losses import SoftmaxCrossEntropy
from nn.optim import Adam

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14
FP16_MIN_SUBNORMAL = 2.0**-24


def lenet():
    """The course's LeNet-like network for 1x28x28 images and 10 classes."""
    return nn.Network([
        Conv2D(1, 6, 5, padding=2), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(6, 16, 5), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(16, 48, 3), LeakyReLU(0.1), Flatten(),
        Dense(48 * 3 * 3, 1024), Dropout(0.5), Dense(1024, 256), Dropout(0.2), Dense(256, 10),
    ], SoftmaxCrossEntropy())


def seconds_per_step(make_net, x, y, backend, precision, steps=10, batch_size=64):
    """Time of one training step (forward, backward, update) of ``make_net()``.

    The network is built on ``backend`` with ``precision``, warmed up (numba compiles its
    kernels, CuPy its GPU kernels and cuBLAS picks its algorithms on the first calls), then
    trained for ``steps`` batches by ``fit``. ``fit`` reads the loss back from the GPU at
    the end of its epoch, which waits for all the queued GPU work: the clock is read after
    the GPU has really finished.
    """
    x, y = x[:steps * batch_size], y[:steps * batch_size]
    with backends.using(backend, precision, seed=0):
        net = make_net()
        optimizer = Adam(1e-3)
        net.fit(x[:2 * batch_size], y[:2 * batch_size], epochs=1, batch_size=batch_size,
                optimizer=optimizer, progress=False)
        start = time.perf_counter()
        net.fit(x, y, epochs=1, batch_size=batch_size, optimizer=optimizer, progress=False)
        return (time.perf_counter() - start) / steps


def fp16_lost_fraction(values):
    """The fraction of the nonzero ``values`` that become zero when rounded to float16.

    Parameters
    ----------
    values : array of float32 or float64

    Returns
    -------
    float in [0, 1]: among the entries that are not 0, the share that float16 flushes to 0
    (those below half its smallest subnormal, 2⁻²⁵ ≈ 3·10⁻⁸, in magnitude)
    """
    values = np.asarray(values)
    # BEGIN SOLUTION round to float16 and count the nonzero values that became zero, among the nonzero values
    nonzero = values != 0
    lost = (values.astype(np.float16) == 0) & nonzero
    fraction = float(lost.sum() / max(nonzero.sum(), 1))
    # END SOLUTION
    return fraction


def scaled_backward(net, x, y, loss_scale=1.0):
    """Backpropagate one batch from a scaled loss; return the gradients, unscaled.

    Backpropagation starts from ``loss_scale * dL/d(output)`` instead of ``dL/d(output)``,
    so every gradient is multiplied by ``loss_scale`` while it is computed (stored in
    float16 under ``"mixed"``); here they are divided by ``loss_scale`` again, in float64.

    Parameters
    ----------
    net : nn.Network, on the current backend
    x, y : one batch of inputs and class ids
    loss_scale : float

    Returns
    -------
    dys : 1-D float64 host array
        The *activation gradients*: the upstream gradient ``dy`` that enters each layer's
        backward (last layer first), all concatenated, unscaled.
    grads : 1-D float64 host array
        Every parameter's gradient (``net.parameters()`` order), concatenated, unscaled.
    """
    B = backends.current()
    out = net.forward(x, train=False)
    net.loss.forward(out, B.asarray(y))
    dout = net.loss.backward()                      # dL/d(output), float32 under "mixed"
    dys = []
    # BEGIN SOLUTION cast dout * loss_scale with B.cast, then for each layer from the last: append B.to_host(dy) (float64, flattened) to dys and set dy = layer.backward(dy); finally gather every layer.grads[name] the same way; divide both by loss_scale
    dy = B.cast(dout * loss_scale)
    for layer in reversed(net.layers):
        dys.append(B.to_host(dy).astype(np.float64).ravel())
        dy = layer.backward(dy)
    dys = np.concatenate(dys) / loss_scale
    grads = np.concatenate([B.to_host(layer.grads[name]).astype(np.float64).ravel()
                            for layer, name in net.parameters()]) / loss_scale
    # END SOLUTION
    return dys, grads


def update_scale(scale, finite, clean_steps, growth_interval=2000, growth_factor=2.0,
                 backoff_factor=0.5, min_scale=1.0):
    """One step of dynamic loss scaling (Micikevicius et al., 2018).

    Parameters
    ----------
    scale : float
        The loss scale this step used.
    finite : bool
        True when every gradient of the step was finite (no inf, no NaN).
    clean_steps : int
        Consecutive clean steps before this one.

    Returns
    -------
    (new_scale, new_clean_steps, apply) : (float, int, bool)
        On overflow: skip the step (``apply`` False), multiply the scale by
        ``backoff_factor`` (never below ``min_scale``) and restart the count of clean steps.
        Otherwise apply the step and count it; when the count reaches ``growth_interval``,
        multiply the scale by ``growth_factor`` and restart the count.
    """
    # BEGIN SOLUTION on overflow halve the scale (not below min_scale), reset the count and skip; otherwise count the step, grow the scale every growth_interval clean steps, and apply
    if not finite:
        return max(scale * backoff_factor, min_scale), 0, False
    clean_steps += 1
    if clean_steps >= growth_interval:
        scale, clean_steps = scale * growth_factor, 0
    apply = True
    # END SOLUTION
    return scale, clean_steps, apply


def quantize(w, bits=8):
    """Symmetric linear quantization of ``w`` to signed integers of ``bits`` bits.

    With ``L = 2**(bits - 1) - 1`` levels on each side (127 for 8 bits), the step is
    ``s = max|w| / L`` and ``q = round(w / s)``, kept in ``[-L, L]``: the largest weight
    maps to ±L, zero to 0, and every weight moves by at most ``s / 2``.

    Parameters
    ----------
    w : float array (host)
    bits : int, 2 to 8

    Returns
    -------
    q : int8 array shaped like ``w``
    s : float, the step (1.0 when ``w`` is all zeros)
    """
    # BEGIN SOLUTION compute L and the step s = max|w| / L (1.0 for an all-zero w), then q = round(w / s) clipped to [-L, L], as int8
    levels = 2 ** (bits - 1) - 1
    s = float(np.max(np.abs(w))) / levels
    if s == 0.0:
        s = 1.0
    q = np.clip(np.round(w / s), -levels, levels).astype(np.int8)
    # END SOLUTION
    return q, s


def dequantize(q, s):
    """The float32 weights that the integers ``q`` with step ``s`` stand for: ``q * s``."""
    # BEGIN SOLUTION multiply q by s, in float32
    w = q.astype(np.float32) * np.float32(s)
    # END SOLUTION
    return w


def quantized_copy(net, bits=8):
    """A copy of ``net`` whose weights ``W`` went through :func:`quantize` and back.

    The biases stay in float32, as in the usual 8-bit schemes (they are few, and are added
    to 32-bit sums). The network computes in floating point as before: this *emulates*
    what an 8-bit accelerator would compute, to measure the accuracy it costs.
    """
    B = backends.current()
    twin = copy.deepcopy(net)
    for layer, name in twin.parameters():
        if name == "W":
            q, s = quantize(B.to_host(layer.params[name]), bits)
            layer.params[name] = B.param(dequantize(q, s))
    return twin


# %% [markdown]
# ## The data and the devices
#
# A subset of Fashion-MNIST (28×28 grey images of clothes, 10 classes) keeps the CPU runs
# short. `backends.available("cupy")` says whether this machine has CuPy and a GPU; without
# one, everything below runs on NumPy only.

# %%
if __name__ == "__main__":
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist

    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_train, y_train = x_train[:8000], y_train[:8000]
    x_test, y_test = x_test[:2000], y_test[:2000]
    GPU = backends.available("cupy")
    DEVICE = "cupy" if GPU else "numpy"
    print(f"{len(x_train)} training and {len(x_test)} test images {x_train.shape[1:]}; "
          f"classes: {', '.join(FASHION_MNIST_CLASSES)}")
    print("GPU:", "yes, CuPy" if GPU else "no (CuPy or a CUDA device missing): NumPy only")

# %% [markdown]
# ## 1. One training step on each backend
#
# On the CPU, `mixed` is *slower* than `fp32`: NumPy has no float16 arithmetic, so every
# product converts its operands to float32 first. On a GPU it is faster: half the bytes to
# move, and tensor cores.

# %%
if __name__ == "__main__":
    runs = [("numpy", "fp32"), ("numpy", "mixed")]
    if GPU:
        runs += [("cupy", "fp32"), ("cupy", "mixed")]
    times = {}
    print(f"{'backend':<8}{'precision':<11}{'ms / step':>10}{'images / s':>12}")
    for backend, precision in runs:
        t = seconds_per_step(lenet, x_train, y_train, backend, precision, steps=10)
        times[backend, precision] = t
        print(f"{backend:<8}{precision:<11}{1e3 * t:10.1f}{64 / t:12.0f}")
    if GPU:
        print(f"GPU speed-up over the CPU, fp32: {times['numpy', 'fp32'] / times['cupy', 'fp32']:.1f}x;"
              f" mixed over fp32 on the GPU: {times['cupy', 'fp32'] / times['cupy', 'mixed']:.2f}x")

# %% [markdown]
# ## 2. Training in fp32 and in mixed precision
#
# Three epochs each, same seed, same data. `fit` reports the loss scale and the number of
# steps it skipped because their gradients overflowed.

# %%
if __name__ == "__main__":
    results, nets = {}, {}
    for precision in ("fp32", "mixed"):
        nn.use(DEVICE, precision, seed=0)
        net = lenet()
        start = time.perf_counter()
        history = net.fit(x_train, y_train, epochs=3, batch_size=64, optimizer=Adam(1e-3),
                          valid=(x_test, y_test), seed=0, progress=False)
        seconds = time.perf_counter() - start
        results[precision] = history
        nets[precision] = net
        extra = ""
        if precision == "mixed":
            extra = (f", loss scale {history['loss_scale'][-1]:g}, skipped steps "
                     f"{history['skipped_steps']}")
        print(f"{DEVICE}/{precision}: test accuracy {history['valid_accuracy'][-1]:.3f}, "
              f"{seconds / 3:.1f} s per epoch{extra}")
    nn.use(DEVICE, "fp32")

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt
    from nn.course import show

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for precision, history in results.items():
        epochs = np.arange(1, len(history["train_loss"]) + 1)
        axes[0].plot(epochs, history["train_loss"], "o-", label=precision)
        axes[1].plot(epochs, history["valid_accuracy"], "o-", label=precision)
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].set(xlabel="epoch", ylabel="test accuracy")
    axes[0].legend()
    show(fig, "fp32_vs_mixed")

# %% [markdown]
# ## 3. Gradient underflow, and its repair by loss scaling
#
# The *activation gradients* (the `dy` that flows from layer to layer, stored in float16
# under `mixed`) of the trained network for one batch, computed exactly in float64, against
# the range of float16. Everything left of the red line becomes zero in float16, and
# between the red and the orange lines (subnormal numbers) fewer than 11 bits are left.
# Scaled by S = 2¹⁵, the whole distribution moves right by log₁₀ S ≈ 4.5 decades.

# %%
if __name__ == "__main__":
    net = nets["fp32"]
    xb, yb = x_train[:256], y_train[:256]
    with backends.using(DEVICE, "fp64"):
        exact_dys, exact_grads = scaled_backward(net, xb, yb)
    nonzero = exact_dys != 0
    print(f"exact activation gradients that float16 rounds to zero: "
          f"{fp16_lost_fraction(exact_dys):.1%}; after scaling by 2**15: "
          f"{fp16_lost_fraction(exact_dys * 2.0**15):.1%}")
    with backends.using(DEVICE, "mixed"):
        for scale in (1.0, 2.0**15):
            dys, grads = scaled_backward(net, xb, yb, loss_scale=scale)
            small = np.abs(exact_dys[nonzero]) * scale < FP16_MIN_NORMAL
            error = np.linalg.norm(grads - exact_grads) / np.linalg.norm(exact_grads)
            print(f"mixed backward, scale {scale:>7g}: {np.mean(dys[nonzero] == 0):5.1%} of the "
                  f"activation gradients are zero, {np.mean(small):5.1%} subnormal; weight "
                  f"gradients within {error:.1e} of float64")
    nn.use(DEVICE, "fp32")

# %%
if __name__ == "__main__":
    fig, ax = plt.subplots(figsize=(8, 3.5))
    logs = np.log10(np.abs(exact_dys[nonzero]))
    bins = np.linspace(-14, 6, 81)
    ax.hist(logs, bins=bins, alpha=0.6, label="|dy|")
    ax.hist(logs + np.log10(2.0**15), bins=bins, alpha=0.6, label="|dy| × 2¹⁵")
    ax.axvline(np.log10(FP16_MIN_SUBNORMAL / 2), color="r", label="rounds to 0 below")
    ax.axvline(np.log10(FP16_MIN_NORMAL), color="orange", ls="--", label="smallest normal")
    ax.axvline(np.log10(FP16_MAX), color="k", label="largest float16")
    ax.set(xlabel="log10 |activation gradient|", ylabel="count")
    ax.legend(fontsize=8)
    show(fig, "gradient_underflow")

# %% [markdown]
# ## 4. The dynamic loss scale
#
# Your `update_scale` on a made-up run: overflows at steps 3, 4 and 40, otherwise clean
# steps, with a growth interval of 10 (2000 in practice). The library's
# `nn.backends.LossScaler` does the same on the device, without ever reading the overflow
# flag back to the host.

# %%
if __name__ == "__main__":
    scale, clean, trace, skipped = 2.0**15, 0, [], 0
    for step_number in range(60):
        finite = step_number not in (3, 4, 40)
        scale, clean, apply = update_scale(scale, finite, clean, growth_interval=10)
        skipped += not apply
        trace.append(scale)
    print(f"skipped {skipped} steps; the scale ends at {scale:g}")
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.step(np.arange(60), np.log2(trace), where="post")
    ax.set(xlabel="step", ylabel="log2 of the loss scale")
    show(fig, "dynamic_scale")

# %% [markdown]
# ## 5. 8-bit weights
#
# Post-training quantization: the trained float32 weights are replaced by 8-bit integers
# times one step per tensor. Memory and bandwidth shrink fourfold; how much accuracy does
# it cost? Fewer bits, for comparison.

# %%
if __name__ == "__main__":
    net = nets["fp32"]
    base = net.evaluate(x_test, y_test)["accuracy"]
    print(f"float32 weights: test accuracy {base:.3f}")
    accuracies = {}
    for bits in (8, 6, 4, 3, 2):
        accuracies[bits] = quantized_copy(net, bits).evaluate(x_test, y_test)["accuracy"]
        print(f"{bits}-bit weights: test accuracy {accuracies[bits]:.3f} "
              f"(drop {100 * (base - accuracies[bits]):.1f} points)")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(list(accuracies), list(accuracies.values()), "o-")
    ax.axhline(base, color="k", ls="--", label="float32")
    ax.set(xlabel="bits per weight", ylabel="test accuracy")
    ax.legend()
    show(fig, "quantization")
