# %% [markdown]
# # Convolution and max-pooling layers by hand
#
# With ``im2col`` and ``col2im`` from the previous practical, a convolution layer is one
# matrix product forward and two backward. With ``X = im2col(x)`` of shape
# ``(C*kh*kw, N*OH*OW)`` and the filters as a matrix ``W2 = W.reshape(O, C*kh*kw)``:
#
#     forward:   Y = W2 @ X + b            (O, N*OH*OW), reshaped to y (N, O, OH, OW)
#
# Backward receives ``dy = dL/dy``, laid out like ``Y`` as ``dY`` of shape ``(O, N*OH*OW)``
# (transpose ``dy`` to ``(O, N, OH, OW)`` and flatten: the column order of ``X``). Since
# ``Y = W2 @ X`` is an ordinary matrix product, as in a dense layer:
#
#     dW2 = dY @ X.T        the gradient of the filters, reshaped to W's (O, C, kh, kw)
#     db  = dY summed over its columns (every image and position the bias was added to)
#     dX  = W2.T @ dY       the gradient of the columns, (C*kh*kw, N*OH*OW)
#     dx  = col2im(dX)      each column entry back to the pixel it was copied from, summed
#
# The last line is where col2im's sum matters: a pixel under several windows influenced the
# loss through each of them.
#
# **Max-pooling** keeps the largest value of each ``size x size`` window (moving by
# ``stride``), channel by channel. It has no weights, and its gradient is a routing: the
# window's maximum passed its value on, so it gets the window's ``dy``; the other pixels did
# not matter and get 0. Where windows overlap (a 3 x 3 pool with stride 2), a pixel that is
# the maximum of two windows gets both ``dy``. im2col does the bookkeeping again: treat each
# channel as an image of its own (``x.reshape(N*C, 1, H, W)``), so that ``im2col`` gives one
# column per window, ``(size*size, N*C*OH*OW)``; ``argmax`` down each column gives the
# winner, and backward writes ``dy`` at the winners of a zero matrix of the same shape and
# sends it through ``col2im``.
#
# **Ties.** When several pixels of a window hold the same maximum, the derivative does not
# exist (the max has a kink there); by convention the **first** of them in reading order
# (top-left first), the one ``np.argmax`` returns, gets all of ``dy``. nn and PyTorch do the
# same, so your layer matches theirs even then.
#
# You write ``conv_forward``, ``conv_backward``, ``maxpool_forward`` and ``maxpool_backward``
# (CS231n style: each forward returns its output and a ``cache`` of what backward needs). The
# layer classes ``ConvByHand`` and ``MaxPoolByHand`` that wrap them for ``nn.Network`` are
# given. The experiment checks the gradients numerically, then trains the same small CNN
# twice on Fashion-MNIST, once with your layers and once with nn's, from the same weights.
# Everything here imports ``im2col``, ``col2im`` and ``conv_output_size`` from your
# ``im2col.py`` (same folder): finish that practical first.

# %%
import numpy as np

from im2col import col2im, conv_output_size, im2col

from nn import backends
from nn.layers import Layer
from nn.layers.init import SCHEMES, draw


def conv_forward(x, W, b, stride=1, padding=0):
    """Forward pass of a convolution layer: im2col and one matrix product.

    Parameters
    ----------
    x : (N, C, H, W) images
    W : (O, C, kh, kw) filters
    b : (O,) biases
    stride, padding : int, the same on both axes

    Returns
    -------
    y : (N, O, OH, OW), ``y[n, o] = b[o] + sum over c of correlate(x[n, c], W[o, c])``, with
        ``OH = conv_output_size(H, kh, stride, padding)`` (``OW`` with ``W``)
    cache : ``(x.shape, W, cols, stride, padding)`` for :func:`conv_backward`, where
        ``cols = im2col(x, kh, kw, stride, padding)``
    """
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    raise NotImplementedError("cols = im2col(x, ...), W.reshape(O, -1) @ cols + b[:, None] is (O, N*OH*OW): reshape to (O, N, OH, OW) and put N first")
    cache = (x.shape, W, cols, stride, padding)
    return y, cache


def conv_backward(dy, cache):
    """Backward pass of :func:`conv_forward`.

    Parameters
    ----------
    dy : (N, O, OH, OW) upstream gradient ``dL/dy`` (not modified)
    cache : what :func:`conv_forward` returned

    Returns
    -------
    dx : (N, C, H, W) ``col2im(W2.T @ dY)``
    dW : (O, C, kh, kw) ``dY @ cols.T`` reshaped
    db : (O,) ``dY`` summed over its columns

    with ``dY`` = ``dy`` as an ``(O, N*OH*OW)`` matrix (columns in the order of ``cols``)
    and ``W2 = W.reshape(O, -1)``.
    """
    x_shape, W, cols, stride, padding = cache
    O, C, kh, kw = W.shape
    raise NotImplementedError("dY = dy.transpose(1, 0, 2, 3).reshape(O, -1); then dW, db and dx = col2im(...) as in the docstring")
    return dx, dW, db


def maxpool_forward(x, size, stride=None):
    """Max-pooling: the largest value of every ``size x size`` window, channel by channel.

    Parameters
    ----------
    x : (N, C, H, W)
    size : int, the window's side
    stride : int, the step between windows; ``None`` means ``size`` (windows side by side)

    Returns
    -------
    y : (N, C, OH, OW), ``OH = conv_output_size(H, size, stride, 0)`` (no padding)
    cache : ``(x.shape, argmax, size, stride)`` for :func:`maxpool_backward`, where
        ``argmax`` (one int per window, ``N*C*OH*OW`` of them) is the row of the window's
        maximum in ``im2col(x.reshape(N*C, 1, H, W), size, size, stride)``: the first one on
        ties (``np.argmax``)
    """
    stride = size if stride is None else stride
    N, C, H, W = x.shape
    raise NotImplementedError("im2col of x.reshape(N*C, 1, H, W) (one column per window), argmax and max down the columns, reshape to (N, C, OH, OW)")
    cache = (x.shape, argmax, size, stride)
    return y, cache


def maxpool_backward(dy, cache):
    """Backward pass of :func:`maxpool_forward`: each ``dy`` routed to its window's maximum.

    Parameters
    ----------
    dy : (N, C, OH, OW) upstream gradient (not modified)
    cache : what :func:`maxpool_forward` returned

    Returns
    -------
    dx : (N, C, H, W), zero except at the windows' maxima; a pixel that is the maximum of
        several (overlapping) windows gets the sum of their ``dy``.
    """
    x_shape, argmax, size, stride = cache
    N, C, H, W = x_shape
    raise NotImplementedError("a zero (size*size, N*C*OH*OW) matrix with dy.ravel() at row argmax of each column, then col2im to (N*C, 1, H, W) and reshape to x_shape")
    return dx


# %% [markdown]
# ## The layers
#
# Thin wrappers that follow nn's layer contract (``forward``, ``backward`` filling
# ``grads``, ``output_shape``, ``config``), so that they can go into an ``nn.Network`` in
# place of ``Conv2D`` and ``MaxPool2D``. ``ConvByHand`` has the same parameters as
# ``Conv2D`` (``"W"`` of shape ``(O, C, kh, kw)`` and ``"b"`` of shape ``(O,)``), drawn the
# same way, so weights can be copied from one to the other. They compute with NumPy: use
# them on nn's ``"numpy"`` backend, in ``"fp32"`` or ``"fp64"``.

# %%
class ConvByHand(Layer):
    """A 2D convolution made of :func:`conv_forward` and :func:`conv_backward`.

    ``ConvByHand(in_channels, out_channels, kernel_size, stride=1, padding=0, init="auto")``
    with an int or ``(kh, kw)`` ``kernel_size`` and int ``stride`` and ``padding``; the same
    parameters and initialisation as ``nn.layers.Conv2D`` (Xavier, or He when a Network sees
    a ReLU after it).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="auto"):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = (int(kh), int(kw)), int(stride), int(padding)
        if init not in SCHEMES:
            raise ValueError(f"ConvByHand: unknown init {init!r}: choose one of {SCHEMES}")
        self.init = init
        self.reset_parameters()

    def reset_parameters(self, scheme=None, alpha=0.0):
        """Fresh weights drawn as ``Conv2D`` draws them (``scheme`` overrides ``init`` once)."""
        B = backends.current()
        O, C, (kh, kw) = self.out_channels, self.in_channels, self.kernel_size
        W = draw(scheme or self.init, (O, C, kh, kw), C * kh * kw, O * kh * kw, B.host_rng, alpha)
        self.params = {"W": B.param(W), "b": B.xp.zeros(O, dtype=B.param_dtype)}
        self.grads = {}

    def forward(self, x, train=False):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise self._bad_shape(f"(N, {self.in_channels}, H, W)", x.shape)
        y, self.cache = conv_forward(x, self.params["W"], self.params["b"], self.stride, self.padding)
        return y

    def backward(self, dy):
        dx, dW, db = conv_backward(dy, self.cache)
        self.grads = {"W": dW, "b": db}
        return dx

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (kh, kw), s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_output_size(H, kh, s, p), conv_output_size(W, kw, s, p))

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": self.stride,
                "padding": self.padding, "init": self.init}

    def __repr__(self):
        kh, kw = self.kernel_size
        return (f"ConvByHand({self.in_channels}->{self.out_channels}, kernel={kh}x{kw}, "
                f"stride={self.stride}, pad={self.padding})")


class MaxPoolByHand(Layer):
    """Max-pooling made of :func:`maxpool_forward` and :func:`maxpool_backward`.

    ``MaxPoolByHand(size, stride=None)``: square windows; ``stride`` defaults to ``size``.
    """

    def __init__(self, size, stride=None):
        super().__init__()
        self.size = int(size)
        self.stride = self.size if stride is None else int(stride)

    def forward(self, x, train=False):
        if x.ndim != 4:
            raise self._bad_shape("(N, C, H, W)", x.shape)
        y, self.cache = maxpool_forward(x, self.size, self.stride)
        return y

    def backward(self, dy):
        return maxpool_backward(dy, self.cache)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C, conv_output_size(H, self.size, self.stride, 0),
                conv_output_size(W, self.size, self.stride, 0))

    def config(self):
        return {"size": self.size, "stride": self.stride}

    def __repr__(self):
        stride = "" if self.stride == self.size else f", stride={self.stride}"
        return f"MaxPoolByHand({self.size}{stride})"


def small_cnn(by_hand):
    """A small CNN for 1x28x28 images, with the by-hand layers or nn's.

    conv 5x5, 8 filters, padding 2 -> ReLU -> max-pool 2 -> conv 5x5, 16 filters -> ReLU ->
    max-pool 3, stride 2 (overlapping) -> dense 10 (16 * 4 * 4 = 256 inputs).
    """
    from nn import Network
    from nn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
    from nn.losses import SoftmaxCrossEntropy

    conv, pool = (ConvByHand, MaxPoolByHand) if by_hand else (Conv2D, MaxPool2D)
    return Network([conv(1, 8, 5, padding=2), ReLU(), pool(2),          # 8x28x28 -> 8x14x14
                    conv(8, 16, 5), ReLU(), pool(3, 2),                 # 16x10x10 -> 16x4x4
                    Flatten(), Dense(16 * 4 * 4, 10)], SoftmaxCrossEntropy())


def copy_weights(source, target):
    """Copy every parameter of the Network ``source`` into ``target`` (same architecture)."""
    for (key, layer, name), (_, other, other_name) in zip(source.named_parameters(),
                                                          target.named_parameters()):
        if layer.params[name].shape != other.params[other_name].shape:
            raise ValueError(f"copy_weights: parameter {key} has shape "
                             f"{layer.params[name].shape} here and {other.params[other_name].shape} there")
        other.params[other_name] = layer.params[name].copy()


# %% [markdown]
# ## Gradient check
#
# In float64, against centred finite differences of ``f = sum(y * dy)`` for a random ``dy``
# (``nn.gradcheck.numerical_gradient``): the relative errors must be far below 1e-6. The
# max-pool input holds distinct values (a permutation, scaled), spaced far more than the
# finite-difference step, so no step changes which pixel wins a window. Then ``nn.gradcheck.check_layer`` runs the same
# check on the layer classes, and the forward passes are compared with nn's layers.

# %%
if __name__ == "__main__":
    import nn
    from nn.gradcheck import check_layer, numerical_gradient, rel_error
    from nn.layers import Conv2D, MaxPool2D

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    W, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y, cache = conv_forward(x, W, b, stride=2, padding=1)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = conv_backward(dy, cache)
    numeric = [numerical_gradient(lambda v: np.sum(conv_forward(v, W, b, 2, 1)[0] * dy), x.copy()),
               numerical_gradient(lambda v: np.sum(conv_forward(x, v, b, 2, 1)[0] * dy), W.copy()),
               numerical_gradient(lambda v: np.sum(conv_forward(x, W, v, 2, 1)[0] * dy), b.copy())]
    print("conv, kernel 3x2, stride 2, padding 1: relative errors "
          + ", ".join(f"{name} {rel_error(a, n):.1e}" for name, a, n in zip(("dx", "dW", "db"), (dx, dW, db), numeric)))

    x_pool = (rng.permutation(486).reshape(2, 3, 9, 9) - 243) / 486     # distinct values
    yp, cache = maxpool_forward(x_pool, 3, 2)
    dyp = rng.standard_normal(yp.shape)
    numeric = numerical_gradient(lambda v: np.sum(maxpool_forward(v, 3, 2)[0] * dyp), x_pool.copy())
    print(f"max-pool 3x3, stride 2: relative error dx {rel_error(maxpool_backward(dyp, cache), numeric):.1e}")

    errors = check_layer(ConvByHand(3, 5, (3, 4), stride=2, padding=1), (2, 3, 8, 9))
    print("check_layer(ConvByHand):", {k: f"{v:.1e}" for k, v in errors.items()})
    errors = check_layer(MaxPoolByHand(2), (2, 3, 8, 6), x=(rng.permutation(288).reshape(2, 3, 8, 6) - 144) / 288)
    print("check_layer(MaxPoolByHand):", {k: f"{v:.1e}" for k, v in errors.items()})

    with nn.backends.using("numpy", "fp64"):
        lib_conv, mine = Conv2D(3, 4, (3, 2), stride=2, padding=1), ConvByHand(3, 4, (3, 2), stride=2, padding=1)
        mine.params = {k: v.copy() for k, v in lib_conv.params.items()}
        print(f"forward vs nn.layers.Conv2D:    largest difference "
              f"{np.abs(mine.forward(x) - lib_conv.forward(x)).max():.1e}")
        print(f"forward vs nn.layers.MaxPool2D: largest difference "
              f"{np.abs(MaxPoolByHand(3, 2).forward(x_pool) - MaxPool2D(3, 2).forward(x_pool)).max():.1e}")

# %% [markdown]
# ## Training a CNN with your layers
#
# The same small CNN twice (``small_cnn``): with ``ConvByHand`` / ``MaxPoolByHand``, and with
# nn's ``Conv2D`` / ``MaxPool2D``, starting from the same weights (copied), trained with the
# same seed (same batches), in float32. The two learning curves should lie on each other:
# they differ only by float32 rounding, which the order of the sums changes. nn's layers
# are faster (numba kernels for im2col, col2im and pooling, and the ``argmax`` of a pool
# computed without copying windows); yours compute the same thing.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, Standardize, load_fashion_mnist
    from nn.metrics import print_confusion
    from nn.optim import Adam

    SEED, EPOCHS, N_TRAIN = 0, 3, 20_000
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_train, y_train = x_train[:N_TRAIN], y_train[:N_TRAIN]
    norm = Standardize(axis=None).fit(x_train)
    x_train, x_test = norm.transform(x_train), norm.transform(x_test)

    nn.backends.use("numpy", "fp32", seed=SEED)
    networks = {"by hand": small_cnn(by_hand=True), "nn layers": small_cnn(by_hand=False)}
    copy_weights(networks["nn layers"], networks["by hand"])
    print(networks["by hand"].summary((1, 28, 28)))
    histories, results = {}, {}
    for name, net in networks.items():
        start = time.perf_counter()
        histories[name] = net.fit(x_train, y_train, epochs=EPOCHS, batch_size=64,
                                  optimizer=Adam(1e-3), valid=(x_test, y_test), seed=SEED,
                                  progress=False)
        seconds = time.perf_counter() - start
        results[name] = net.evaluate(x_test, y_test)
        print(f"{name:9s}: test accuracy {100 * results[name]['accuracy']:.2f} %, "
              f"{EPOCHS * len(x_train) / seconds:.0f} images/s in training "
              f"({seconds:.0f} s for {EPOCHS} epochs of {len(x_train)} images, with the test "
              "set after each)")
    print_confusion(results["by hand"]["confusion"], FASHION_MNIST_CLASSES,
                    title="\nby-hand layers, Fashion-MNIST test set")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, EPOCHS + 1)
    for name, style in (("by hand", "-o"), ("nn layers", "--x")):
        for key, label, color in (("train", "training", "C0"), ("valid", "test", "C1")):
            axes[0].plot(epochs, histories[name][f"{key}_loss"], style, color=color,
                         label=f"{name}, {label}")
            axes[1].plot(epochs, 100 * np.array(histories[name][f"{key}_accuracy"]), style,
                         color=color, label=f"{name}, {label}")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss", xticks=epochs)
    axes[1].set(xlabel="epoch", ylabel="%", title="accuracy", xticks=epochs)
    axes[1].legend()
    fig.tight_layout()
    show(fig, "learning_curves")
