# %% [markdown]
# # Convolution and max-pooling layers by hand, and a CNN trained by your own loop
#
# **What you will learn.** The forward pass of a convolution layer as one matrix product
# (im2col); its backward pass, derived from the matrix form: the gradient of the filters,
# of the biases and of the inputs (the slides' "transposed convolution", which col2im
# computes); what the gradient of a max-pooling is; how to check all of them with finite
# differences; and how a CNN is trained: mini-batches, forward, loss, backward, update with
# momentum, epoch after epoch.
#
# **Estimated time:** 3 h (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt` or `002_89640e05264e4932.txt`),
# "Learning the filters", "The Im2col transformation", "Convolutional layer complete matrix
# formalism" (X the batched inputs, W the filters, a the activation maps, E_a the
# activation errors, E_x the propagated input errors) and "Dimensionality reduction:
# Pooling"; the lecture `003_34b0db9ed1061ff1.txt`, "Pooling" and "Max pooling 1D"; the MLP
# chapter of `004_3d9df880d40eb3ff.txt` for the chain rule and the δ's.
#
# **Forward.** With ``X = im2col(x)``, ``(C*kh*kw, N*OH*OW)``, and the filters as a matrix
# ``W2`` of shape ``(O, C*kh*kw)`` (one filter per row), the whole layer is
#
#     Y = W2 X + b          (O, N*OH*OW), one column per image and output position
#
# then reordered to ``y`` of shape ``(N, O, OH, OW)``. This is the slides' matrix formalism:
# one product for the whole batch.
#
# **Backward** (your derivation). ``conv_backward`` receives ``dy = dL/dy``, the slides'
# E_a, of the shape of ``y``, and returns three gradients: ``dL/dW`` (shape of ``W``),
# ``dL/db`` (shape of ``b``) and ``dL/dx`` (shape of ``x``, the slides' E_x). ``Y = W2 X + b``
# is a product of two matrices plus a bias repeated along the columns, as in a dense layer
# of the MLP chapter, only with ``N*OH*OW`` "examples" (the columns). Derive, with the
# chain rule, ``dL/dW2`` and ``dL/db`` from ``dL/dY`` and ``X``, and ``dL/dX`` from ``W2`` and
# ``dL/dY``; check the shapes of your products. Then get from ``dL/dX`` (the gradient of the
# columns) to ``dL/dx`` (the gradient of the images) with what you built in the im2col
# practical. Mind the layout: ``dy`` must be put in the column order of ``X`` first.
#
# **Max-pooling** keeps the largest value of each ``size x size`` window (moving by
# ``stride``), channel by channel; it has no weights. im2col does the bookkeeping again if
# each channel is treated as an image of its own (``N*C`` images of one channel): every
# window becomes a column. The forward pass keeps, for each window, *which* row of its
# column held the maximum: that is all the backward pass needs. Derive the backward pass:
# how does ``y`` change when one pixel of a window changes a little, if that pixel is the
# window's maximum, and if it is not? What happens to a pixel that is the maximum of two
# overlapping windows (a 3 x 3 pool with stride 2)?
#
# **Ties.** When several pixels of a window hold the same maximum, the derivative does not
# exist (the max has a kink there); by convention the **first** of them in reading order
# (top-left first), the one ``np.argmax`` returns, is the maximum. nn and PyTorch do the
# same, so your layer matches theirs even then.
#
# **Training.** The slides leave the training of a CNN to you: ``train_by_hand`` shuffles
# the training set every epoch, cuts it into mini-batches, and for each one runs the
# forward pass, the loss, the backward pass and the update of every parameter by gradient
# descent with momentum (the slides' LeNet is trained with a momentum α = 0.9). It works on
# any ``nn.Network``, so it trains your layers and nn's alike.
#
# You write ``conv_forward``, ``conv_backward``, ``maxpool_forward``, ``maxpool_backward``
# (CS231n style: each forward returns its output and a ``cache`` of what backward needs) and
# ``train_by_hand``. The layer classes ``ConvByHand`` and ``MaxPoolByHand`` that wrap the
# four functions for ``nn.Network`` are given. The experiment checks the gradients
# numerically, then trains the same small CNN twice on Fashion-MNIST with your loop, once
# with your layers and once with nn's, from the same weights (the slides use MNIST; nn uses
# Fashion-MNIST, or its bundled sample when offline). Everything here imports ``im2col``,
# ``col2im`` and ``conv_output_size`` from your ``im2col.py`` (same folder): finish that
# practical first.

# %%
import numpy as np

from im2col import col2im, conv_output_size, im2col

from nn import backends
from nn.layers import Layer
from nn.layers.init import SCHEMES, draw


def conv_forward(x, W, b, stride=1, padding=0):
    """Forward pass of a convolution layer: im2col and one matrix product.

    Difficulty ★★.

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
    raise NotImplementedError("★★ the columns of x, the filters as a matrix times the columns plus the bias of each filter, then the result reordered from one column per image and position to images first")
    cache = (x.shape, W, cols, stride, padding)
    return y, cache


def conv_backward(dy, cache):
    """Backward pass of :func:`conv_forward` (your derivation: see "Backward" above).

    Difficulty ★★★.

    Parameters
    ----------
    dy : (N, O, OH, OW) upstream gradient ``dL/dy``, the slides' E_a (not modified)
    cache : what :func:`conv_forward` returned

    Returns
    -------
    dx : (N, C, H, W) ``dL/dx``, the error propagated to the inputs (the slides' E_x)
    dW : (O, C, kh, kw) ``dL/dW``
    db : (O,) ``dL/db``
    """
    x_shape, W, cols, stride, padding = cache
    O, C, kh, kw = W.shape
    raise NotImplementedError("★★★ put dy in the column order of the forward product, then the three gradients you derived from the matrix form; the gradient of the columns goes back to the images through the adjoint of im2col")
    return dx, dW, db


def maxpool_forward(x, size, stride=None):
    """Max-pooling: the largest value of every ``size x size`` window, channel by channel.

    Difficulty ★★.

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
    raise NotImplementedError("★★ every channel seen as an image of one channel, so that its columns are the windows; the row of each column's maximum (the first on ties), the maxima themselves, and the output in the shape of the docstring")
    cache = (x.shape, argmax, size, stride)
    return y, cache


def maxpool_backward(dy, cache):
    """Backward pass of :func:`maxpool_forward` (your derivation: see "Max-pooling" above).

    Difficulty ★★★.

    Parameters
    ----------
    dy : (N, C, OH, OW) upstream gradient ``dL/dy`` (not modified)
    cache : what :func:`maxpool_forward` returned

    Returns
    -------
    dx : (N, C, H, W) ``dL/dx``
    """
    x_shape, argmax, size, stride = cache
    N, C, H, W = x_shape
    raise NotImplementedError("★★★ the gradient of the columns of the forward pass, from what you derived about the maximum and the other pixels of a window, then back to the images with the adjoint of im2col")
    return dx


def train_by_hand(net, x, y, epochs, batch_size=32, lr=0.01, momentum=0.9, seed=0):
    """Train ``net`` by mini-batch gradient descent with momentum, written by hand.

    Difficulty ★★★ (the procedure the slides leave to you).

    Every epoch visits the examples in a new random order (drawn from
    ``np.random.default_rng(seed)``), in mini-batches of ``batch_size`` (the last one may be
    smaller). For each mini-batch: the forward pass in training mode (dropout on), the loss
    ``net.loss`` (mean over the batch), its gradient sent back through the network (which
    fills ``layer.grads`` for every ``(layer, name)`` of ``net.parameters()``), and the
    update of every parameter ``w`` with its own velocity ``v`` (zero at the start)::

        v <- momentum * v - lr * dL/dw          w <- w + v

    Parameters
    ----------
    net : nn.Network with a loss that takes class ids (e.g. ``SoftmaxCrossEntropy``)
    x : (N, ...) inputs; y : (N,) class ids
    epochs, batch_size : int
    lr, momentum : float, the slides' η and α
    seed : int

    Returns
    -------
    dict of two lists, one value per epoch: ``"loss"``, the mean loss over the epoch's
    examples (each batch's loss weighted by its size), and ``"accuracy"``, the fraction of
    the epoch's examples whose largest output is their class (both measured on the batches
    as they were trained on, before each update).
    """
    history = {"loss": [], "accuracy": []}
    raise NotImplementedError("★★★ one velocity per parameter; for every epoch a fresh permutation of the examples, then for every mini-batch the forward pass in training mode, the loss and its gradient backpropagated, the momentum update of every parameter, and the sums that give the epoch's mean loss and accuracy")
    return history


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
    parameters and initialisation schemes as ``nn.layers.Conv2D`` (``"auto"`` is Xavier;
    ``"he"`` for a layer followed by a ReLU).
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
    max-pool 3, stride 2 (overlapping) -> dense 10 (16 * 4 * 4 = 256 inputs). The
    convolutions are followed by a ReLU, so their weights are drawn with He's scale
    (``init="he"``): Xavier's keeps the variance of a linear layer, and a ReLU halves it at
    every layer.
    """
    from nn import Network
    from nn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
    from nn.losses import SoftmaxCrossEntropy

    conv, pool = (ConvByHand, MaxPoolByHand) if by_hand else (Conv2D, MaxPool2D)
    return Network([conv(1, 8, 5, padding=2, init="he"), ReLU(), pool(2),   # 8x28x28 -> 8x14x14
                    conv(8, 16, 5, init="he"), ReLU(), pool(3, 2),          # 16x10x10 -> 16x4x4
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
# ## Training a CNN with your layers and your loop
#
# The same small CNN twice (``small_cnn``): with ``ConvByHand`` / ``MaxPoolByHand``, and with
# nn's ``Conv2D`` / ``MaxPool2D``, starting from the same weights (copied), both trained by
# your ``train_by_hand`` with the same seed (same batches), in float32. The two learning
# curves should lie on each other: they differ only by float32 rounding, which the order of
# the sums changes. nn's layers are faster (numba kernels for col2im and max-pooling, and
# the ``argmax`` of a pool computed without copying windows); yours compute the same thing.
# (The slides train with plain gradient descent and momentum, as here; the later practicals
# use Adam through ``Network.fit``.)

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, Standardize, load_fashion_mnist
    from nn.metrics import print_confusion

    SEED, EPOCHS, N_TRAIN, LR, MOMENTUM = 0, 3, 20_000, 0.01, 0.9
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
        histories[name] = train_by_hand(net, x_train, y_train, EPOCHS, batch_size=32, lr=LR,
                                        momentum=MOMENTUM, seed=SEED)
        seconds = time.perf_counter() - start
        results[name] = net.evaluate(x_test, y_test)
        print(f"{name:9s}: test accuracy {100 * results[name]['accuracy']:.2f} %, "
              f"{EPOCHS * len(x_train) / seconds:.0f} images/s in training "
              f"({seconds:.0f} s for {EPOCHS} epochs of {len(x_train)} images)")
    print_confusion(results["by hand"]["confusion"], FASHION_MNIST_CLASSES,
                    title="\nby-hand layers, Fashion-MNIST test set")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, EPOCHS + 1)
    for name, style in (("by hand", "-o"), ("nn layers", "--x")):
        axes[0].plot(epochs, histories[name]["loss"], style, label=name)
        axes[1].plot(epochs, 100 * np.array(histories[name]["accuracy"]), style, label=name)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="training loss", xticks=epochs)
    axes[1].set(xlabel="epoch", ylabel="%", title="training accuracy", xticks=epochs)
    axes[1].legend()
    fig.tight_layout()
    show(fig, "learning_curves")
