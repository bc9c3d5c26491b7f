# %% [markdown]
# # GPU and mixed precision: CPU against GPU, tensor cores, float16 training, loss scaling, low-bit weights
#
# **What you will learn**: what a GPU's tensor core computes and why it adds in float32;
# what float16 loses; why mixed-precision training keeps float32 master weights and scales
# the loss (you derive it from the chain rule); the dynamic loss scale; and what weights of
# 8, 4 or 2 bits cost in accuracy, and how to make 2-bit weights work. **Estimated time**:
# 2 h 30 (the exploration: 45 min).
#
# Slides: `001_597c6f3b4d88b483.txt` and `002_89640e05264e4932.txt`, "What about computing
# on GPU?", "Nvidia H100 GPU spec-sheet" (FP16 204.9 TFLOPS against FP32 51.2: 4:1), "GPU
# architecture", "Nvidia Tensor Cores", "Nvidia Tensor Cores reduced quantization",
# "Quantization effect on AI model accuracy" and "Mixed precision training".
#
# *Where nn departs from the slides*: the course's framework, CIANNA, scales the loss by a
# fixed factor (``TC_scale_factor``, 16 in the course's notebooks); nn, like PyTorch,
# adapts the scale during training (dynamic loss scaling); without a GPU, nn emulates the
# float16 arithmetic on the CPU; the data are Fashion-MNIST (the bundled sample offline).
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
# often that small: the slide "Mixed precision training" names the two remedies that you
# will write, a float32 copy of the weights and a scaled loss.
#
# You write:
#
# - ★ ``fp16_lost_fraction``: the share of numbers float16 flushes to zero;
# - ★★ ``tensor_core_product``: a tensor core's matrix product, emulated;
# - ★★★ ``scaled_backward``: backpropagation of a scaled loss, derived from the slide;
# - ★ ``master_weight_updates``: small updates on a float16 weight, with and without a
#   float32 master copy;
# - ★★ ``update_scale``: the dynamic loss-scaling rule;
# - ★★ ``quantize`` and ★ ``dequantize``: 8-bit (or fewer) weights;
# - ★★★ ``low_bit_copy``, the exploration: 2-bit weights that keep the accuracy.

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
    """The course's LeNet-like network for 1x28x28 images and 10 classes (He weights before
    the leaky ReLUs)."""
    return nn.Network([
        Conv2D(1, 6, 5, padding=2, init="he"), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(6, 16, 5, init="he"), LeakyReLU(0.1), MaxPool2D(2),
        Conv2D(16, 48, 3, init="he"), LeakyReLU(0.1), Flatten(),
        Dense(48 * 3 * 3, 1024, init="he"), LeakyReLU(0.1), Dropout(0.5),
        Dense(1024, 256, init="he"), LeakyReLU(0.1), Dropout(0.2),
        Dense(256, 10),
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
    """The fraction of the nonzero ``values`` that become zero when rounded to float16 (★).

    Parameters
    ----------
    values : array of float32 or float64

    Returns
    -------
    float in [0, 1]: among the entries that are not 0, the share that float16 flushes to 0
    (those below half its smallest subnormal, 2⁻²⁵ ≈ 3·10⁻⁸, in magnitude); 0.0 when no
    entry is nonzero.
    """
    values = np.asarray(values)
    raise NotImplementedError("★ round to float16 and count the nonzero values that became zero, among the nonzero values")
    return fraction


def tensor_core_product(a, b, accumulate=np.float32):
    """The matrix product ``a @ b`` as a tensor core computes it (★★).

    Slide "Nvidia Tensor Cores": *FP16 storage/input, full precision product, sum with FP32
    accumulator, convert to FP32 result*. Emulate each of these four steps with NumPy:

    - the inputs are stored in float16 (rounded to the nearest float16);
    - the product of two float16 numbers is computed exactly (11 + 11 significant bits fit
      in the 24 of a float32);
    - the ``K`` products of an output element are added one after the other, ``k = 0, 1,
      ..., K - 1``, into an accumulator of dtype ``accumulate``, rounded to that dtype
      after every addition (float32 on tensor cores; float16 to see why not);
    - the result is given in float32.

    Parameters
    ----------
    a : (M, K) float array
    b : (K, N) float array
    accumulate : np.float32 or np.float16, the accumulator's dtype

    Returns
    -------
    (M, N) float32 array
    """
    raise NotImplementedError("★★ the slide's four steps in order; float32 holds the product of two float16 numbers exactly, so only the sums depend on the accumulator's dtype: round after each one")
    return product


def scaled_backward(net, x, y, loss_scale=1.0):
    """The gradients of the loss ``L`` for one batch, computed by backpropagating the
    scaled loss ``S L`` (``S = loss_scale``) in the backend's arithmetic (★★★).

    Why: under ``"mixed"`` the activation gradients (each layer's ``dy``, the slides'
    δ's) are stored in float16, and many are below its smallest subnormal, 2⁻²⁴: they
    become 0 and the weights they should correct stop learning. Slide "Mixed precision
    training": "a scaling is applied on the output loss. All propagated values are
    naturally scaled so they are more likely to be in the proper range. At weight update
    time the correction is scaled down by the same factor."

    Derive it before you write it: backpropagation multiplies the δ of the output by the
    derivatives of each layer (the chain rule). What do the δ's of every layer, and the
    gradients of every weight, become when the loss is multiplied by ``S``? Where must
    ``S`` enter the backward pass, and where must it be divided out again, and in which
    precision, so that nothing is lost but the underflow?

    Then: one forward pass of ``x`` (not training: no dropout), the loss against ``y`` and
    the backward pass of ``S L`` through the layers, last layer first. What enters the
    first backward must be in the backend's activation dtype (``B.cast``: float16 under
    ``"mixed"``), as in a real mixed-precision step.

    Parameters
    ----------
    net : nn.Network with a loss, on the current backend ``B``
    x, y : one batch of inputs and class ids
    loss_scale : float, ``S``

    Returns
    -------
    dys : 1-D float64 host array
        The activation gradients of ``L``: the ``dy`` that enters each layer's backward,
        last layer first, flattened and concatenated.
    grads : 1-D float64 host array
        Every parameter's gradient of ``L``, in ``net.parameters()`` order, flattened and
        concatenated.
    """
    B = backends.current()
    raise NotImplementedError("★★★ answer the docstring's questions first: where the scale enters the backward pass, and where and in which precision it leaves; the layers' own backward does the rest, from the last layer")
    return dys, grads


def master_weight_updates(w, updates):
    """A weight corrected many times in small steps, with and without a float32 master
    copy (★).

    Slide "Mixed precision training": "This problem can first be mitigated by preserving
    an FP32 copy of the weights for accumulating the updates." A float16 weight near 1 moves
    in steps of 2⁻¹⁰ ≈ 10⁻³: a correction smaller than half of that rounds away.

    Parameters
    ----------
    w : float array, the initial weights
    updates : (T, *w.shape) array, the ``T`` corrections added to ``w`` one after the other
        (``-eta dE/dw`` of each step), float16 values

    Returns
    -------
    alone : float16 array of ``w``'s shape
        ``w`` kept in float16 only: each correction added to it, the sum rounded to float16
        after every step.
    master : float16 array of ``w``'s shape
        The float16 copy (what a float16 forward pass uses) of a float32 master copy of
        ``w`` to which every correction was added in float32.
    """
    raise NotImplementedError("★ one copy of the weights in float16 and one in float32; add each correction to both, rounding each sum to its copy's dtype; give the float16 copy and the float32 master copy rounded to float16")
    return alone, master


def update_scale(scale, finite, clean_steps, growth_interval=2000, growth_factor=2.0,
                 backoff_factor=0.5, min_scale=1.0):
    """One step of dynamic loss scaling (Micikevicius et al., 2018) (★★).

    Too small a scale leaves gradients below float16's range; too large a one makes them
    overflow to inf. The dynamic rule tries large scales and backs off when they overflow.

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
    raise NotImplementedError("★★ on overflow back off the scale (not below its minimum), reset the count and skip; otherwise count the step, grow the scale every growth_interval clean steps, and apply")
    return scale, clean_steps, apply


def quantize(w, bits=8):
    """Symmetric linear quantization of ``w`` to signed integers of ``bits`` bits (★★).

    Slides "Nvidia Tensor Cores reduced quantization" and "Quantization effect on AI model
    accuracy" (post-training quantization, INT8). Each weight becomes an integer ``q``
    times one step ``s`` shared by the tensor. The scheme is symmetric: ``L = 2**(bits-1) -
    1`` levels on each side of 0 (127 for 8 bits), the integers run from ``-L`` to ``L``,
    zero stays exactly 0, the weight of largest magnitude lands on ``±L``, and every weight
    goes to its nearest level (so moves by at most ``s / 2``). Find ``s`` and ``q`` from
    these constraints.

    Parameters
    ----------
    w : float array (host)
    bits : int, 2 to 8

    Returns
    -------
    q : int8 array shaped like ``w``
    s : float, the step (1.0 when ``w`` is all zeros)
    """
    raise NotImplementedError("★★ which step puts the weight of largest magnitude exactly on the last level; then each weight goes to its nearest level, kept within the levels, as int8; mind a tensor of zeros")
    return q, s


def dequantize(q, s):
    """The float32 weights that the integers ``q`` with step ``s`` stand for (★)."""
    raise NotImplementedError("★ each integer times the step, in float32")
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


def low_bit_copy(net, bits, x, y):
    """Exploration (★★★, graded by what it reaches): weights of very few bits that keep
    the accuracy.

    With 2 bits, ``quantized_copy`` leaves three levels, ``-s, 0, s``, with ``s`` the largest
    weight of the tensor: nearly every weight rounds to 0, and a small Fashion-MNIST MLP
    falls from 83 % to 20-40 %. Do better, with the same budget: in every weight tensor,
    each output neuron's weights (a column of a Dense ``W``, ``W[:, j]``; for a convolution
    ``W[o]``) may take at most ``2**bits - 1`` distinct values (a ``bits``-bit integer
    each, plus a few floats per neuron). Which step? Must the largest weight be
    represented exactly? One step per tensor or per neuron? You may use the training data
    ``x, y`` to choose (a calibration), or to retrain; the slides' "quantization aware
    training" goes further.

    Parameters
    ----------
    net : trained nn.Network (not modified)
    bits : int, 2 to 8
    x, y : training inputs and class ids, for calibration

    Returns
    -------
    nn.Network: a copy of ``net``, biases unchanged, every ``W`` within the budget.

    Graded on a 784-64-10 ReLU MLP trained on the bundled Fashion-MNIST sample: its 2-bit
    copy must keep at least 65 % test accuracy (float32: 83 %; ``quantized_copy``: 22 %).
    """
    raise NotImplementedError("★★★ look at how a neuron's weights spread compared with its largest one, and at which of them round to zero; the training data can tell which of your choices works best")
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
# ## 2. What a tensor core adds, and in what
#
# Your ``tensor_core_product`` on sums of ``K`` products of numbers in [0, 1], against the
# exact product of the same float16 inputs (float64). With a float16 accumulator the sum
# soon outgrows its 11 bits: once it reaches 2048, float16's step is 2 and adding a
# product below 1 changes nothing. The float32 accumulator of the tensor cores keeps the
# error near float32's rounding, whatever ``K``. nn's ``"mixed"`` matrix product (float16
# operands, float32 sums) then stores its result in float16, the dtype of the next layer's
# input: its error is that one rounding of the result (at most 2⁻¹¹ ≈ 5·10⁻⁴), whatever
# ``K``.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print(f"{'K':>6}{'float16 sums':>15}{'float32 sums':>15}{'nn mixed':>12}   (relative error)")
    tc_errors = {}
    for K in (16, 64, 256, 1024, 4096):
        a, b = rng.uniform(size=(8, K)), rng.uniform(size=(K, 8))
        exact = a.astype(np.float16).astype(np.float64) @ b.astype(np.float16).astype(np.float64)
        rel = {acc: np.abs(tensor_core_product(a, b, acc) - exact).max() / np.abs(exact).max()
               for acc in (np.float16, np.float32)}
        with backends.using("numpy", "mixed"):
            B = backends.current()
            mixed = B.to_host(B.matmul(B.asarray(a), B.asarray(b))).astype(np.float64)
        rel["nn"] = np.abs(mixed - exact).max() / np.abs(exact).max()
        tc_errors[K] = rel
        print(f"{K:6d}{rel[np.float16]:15.1e}{rel[np.float32]:15.1e}{rel['nn']:12.1e}")

# %% [markdown]
# ## 3. Training in fp32 and in mixed precision
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
# ## 4. Gradient underflow, and its repair by loss scaling
#
# The *activation gradients* (the `dy` that flows from layer to layer, stored in float16
# under `mixed`) of the trained network for one batch, computed exactly in float64, against
# the range of float16. Everything left of the red line becomes zero in float16, and
# between the red and the orange lines (subnormal numbers) fewer than 11 bits are left.
# Scaled by S = 2¹⁵, the whole distribution moves right by log₁₀ S ≈ 4.5 decades.
#
# In this small LeNet the rescued activation gradients were too small to weigh in the
# weight gradients, whose error, set by float16's rounding of the activations, is the same
# with or without the scale. In deeper networks, and late in training when the gradients
# shrink, the underflow reaches the weights (the tests' small network with small weights
# loses many of its weight gradients without scaling).

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
            kept = exact_grads != 0
            error = np.median(np.abs(grads[kept] - exact_grads[kept]) / np.abs(exact_grads[kept]))
            print(f"mixed backward, scale {scale:>7g}: {np.mean(dys[nonzero] == 0):5.1%} of the "
                  f"activation gradients are zero, {np.mean(small):5.1%} subnormal; weight "
                  f"gradients within {error:.1e} of float64 (median relative error)")
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
# ## 5. The float32 master copy of the weights
#
# A thousand corrections of -10⁻⁴ (a learning rate of 10⁻³ times a gradient of 0.1) on a
# weight of 1, on one of 0.01 and on one of 100. Kept in float16 alone, the weights near 1
# and 100 never move: each correction is below half of float16's step there; the one near
# 0.01 moves, but its rounding errors pile up. The float32 master copy accumulates them
# all, and its float16 copy shows the result.

# %%
if __name__ == "__main__":
    w0 = np.array([1.0, 0.01, 100.0])
    corrections = np.full((1000, 3), -1e-4).astype(np.float16)
    alone, master = master_weight_updates(w0, corrections)
    for start, a, m in zip(w0, alone, master):
        print(f"w = {start:g}: float16 alone {float(a):.5g}, float32 master {float(m):.5g} "
              f"(exact {start + corrections[:, 0].astype(np.float64).sum():.5g})")

# %% [markdown]
# ## 6. The dynamic loss scale
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
# ## 7. 8-bit weights, and fewer
#
# Post-training quantization: the trained float32 weights are replaced by 8-bit integers
# times one step per tensor. Memory and bandwidth shrink fourfold; how much accuracy does
# it cost? Fewer bits, for comparison, with ``quantized_copy`` and with your
# ``low_bit_copy`` (calibrated on 2 000 training images).

# %%
if __name__ == "__main__":
    net = nets["fp32"]
    base = net.evaluate(x_test, y_test)["accuracy"]
    print(f"float32 weights: test accuracy {base:.3f}")
    accuracies, explored = {}, {}
    for bits in (8, 6, 4, 3, 2):
        accuracies[bits] = quantized_copy(net, bits).evaluate(x_test, y_test)["accuracy"]
        explored[bits] = low_bit_copy(net, bits, x_train[:2000],
                                      y_train[:2000]).evaluate(x_test, y_test)["accuracy"]
        print(f"{bits}-bit weights: test accuracy {accuracies[bits]:.3f} "
              f"(drop {100 * (base - accuracies[bits]):.1f} points); "
              f"low_bit_copy {explored[bits]:.3f} (drop {100 * (base - explored[bits]):.1f})")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(list(accuracies), list(accuracies.values()), "o-", label="quantized_copy")
    ax.plot(list(explored), list(explored.values()), "s-", label="low_bit_copy")
    ax.axhline(base, color="k", ls="--", label="float32")
    ax.set(xlabel="bits per weight", ylabel="test accuracy")
    ax.legend()
    show(fig, "quantization")
