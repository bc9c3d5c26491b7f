# %% [markdown]
# # Depth: vanishing gradients, weight initialisation, ReLU, residual blocks, normalisation
#
# **What you will learn.** Why a deep network of sigmoids hardly trains (the gradient
# shrinks at every layer on its way back to the first ones); how the scale of the initial
# weights decides whether the signal dies out, explodes or survives through twenty layers
# (Xavier's and He's rules); and the three remedies of the slides: the ReLU, the shortcut
# connections of residual networks, and normalisation layers. You measure all of it: the
# gradient norm of every layer, at initialisation and during training, and the histograms
# of every layer's activations.
#
# **Estimated time:** 2 h (★ a few minutes, ★★ up to half an hour, ★★★ an exploration).
#
# Slides: "Vanishing Gradient Issue" and "The Rectified Linear Unit (ReLU)"
# (`002_89640e05264e4932.txt` and `004_3d9df880d40eb3ff.txt`: *the gradient slowly getting
# smaller and smaller as it goes through more layers*; the ReLU's *constant derivative
# reduces vanishing gradient problems*), and the residual blocks (*shortcut connections
# reduce the vanishing gradient issue as the gradient can flow directly to upper parts of
# the network*). The initialisation rules (Glorot & Bengio 2010, He et al. 2015) are not in
# the slides; ``nn.layers.init`` gives them, and you derive why they work below.
#
# The data: two interleaved spirals in 2-D (generated), a problem a shallow network solves,
# so that every difference comes from depth alone. The training uses plain SGD with momentum,
# as the slides do (Adam divides every gradient by its own size and would hide the effect).
#
# You write the width of each initialisation, a forward pass through a deep stack by hand
# (for the histograms), the gradient norm of every layer of an ``nn`` network, and, as an
# exploration, deep networks that still train.

# %%
import numpy as np


def make_spirals(n=600, noise=0.15, seed=0):
    """Two interleaved spirals: ``x (n, 2)`` float64, ``y (n,)`` class ids 0/1."""
    rng = np.random.default_rng(seed)
    half = n // 2
    r = np.sqrt(rng.uniform(0.05, 1.0, n)) * 3.0
    theta = r * 1.6 + np.repeat([0.0, np.pi], [half, n - half])
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    y = np.repeat([0, 1], [half, n - half])
    order = rng.permutation(n)
    return x[order], y[order]


def init_std(scheme, fan_in, fan_out):
    """The standard deviation of the initial weights of a layer under each rule. ★

    - ``"small"``: 0.01 (the course's MLP starts there), ``"large"``: 1;
    - ``"xavier"``: the variance that keeps the variance of the signal the same forwards
      *and* of the gradient backwards through a linear layer, as a compromise between
      ``fan_in`` and ``fan_out`` (Glorot & Bengio: their average appears);
    - ``"he"``: the variance that keeps the variance of the signal through a layer followed
      by a ReLU, which sets half of its inputs to zero (only ``fan_in`` appears).

    Derive the last two: a sum of ``fan_in`` independent products ``w x`` has variance
    ``fan_in var(w) E[x²]``. Check your values against the ``nn.layers.init`` module
    docstring (its Xavier is a uniform law: compare standard deviations).
    """
    raise NotImplementedError("★ the two fixed values, then Xavier's variance (two over the sum of the fans) and He's (two over the fan-in); the answer is a standard deviation, not a variance")
    return float(std)


def stack_activations(x, n_layers, std, activation, seed=0):
    """The activations of every layer of a deep stack at initialisation, by hand. ★★

    The stack: ``n_layers`` fully connected layers of the input's width ``D`` (no bias),
    each followed by ``activation`` (a function of an array, e.g. ``np.tanh``). Draw the
    weights of layer 1, then layer 2, …, each a ``(D, D)`` array from
    ``rng.normal(0, std, ...)`` with ``rng = np.random.default_rng(seed)``.

    Returns
    -------
    list of ``n_layers`` arrays ``(N, D)``: the output of every activation, first layer
    first.
    """
    raise NotImplementedError("★★ one generator; for each layer in turn, its weights, the weighted sums of the previous layer's output, and the activation; keep every output")
    return outputs


def dense_layers(net):
    """The ``Dense`` layers of an ``nn`` network, inputs first, those inside blocks included."""
    from nn.layers import Dense

    seen, out = set(), []
    for _, layer, _ in net.named_parameters():
        if isinstance(layer, Dense) and id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
    return out


def gradient_norms(net, x, y):
    """The norm of the gradient of the loss with respect to each Dense layer's weights. ★★

    One forward pass of the batch (in training mode), the loss of ``net`` on it, and the
    backward pass through the network; then, for every Dense layer (:func:`dense_layers`
    lists them, inputs first), the Euclidean norm of its weight gradient ``W`` (all its
    elements together). The weights are not changed (a BatchNorm's running statistics
    move a little, as in any training-mode pass).

    Returns
    -------
    (L,) float64 array, one norm per Dense layer, the first layer first.
    """
    raise NotImplementedError("★★ the three passes (forward, loss, backward from the loss's gradient); then the norm of each Dense layer's weight gradient, read from its gradients after the backward")
    return norms


KINDS = ("sigmoid", "relu", "residual", "norm")


def deep_network(kind, depth=20, width=32, seed=0):
    """A deep classifier of the spirals (2 inputs, 2 classes) of ``depth`` hidden layers. ★★★

    An exploration, graded by what the networks achieve; the architectures are yours.

    - ``"sigmoid"``: ``depth`` hidden layers of ``width`` sigmoids, Xavier initialisation,
      the network the slides warn about;
    - ``"relu"``: the same depth with ReLU activations (and the initialisation they need);
    - ``"residual"``: the ReLU layers grouped in shortcut blocks (``nn.layers.Residual``), at
      least ``depth`` Dense layers in all;
    - ``"norm"``: the sigmoid network of the first item with a normalisation layer before
      every activation (``nn.layers`` has BatchNorm, LayerNorm, GroupNorm: try them; the
      slides normalise a batch of examples).

    Every network ends with one Dense layer to 2 logits and the loss
    ``SoftmaxCrossEntropy()``. Seed the weight generator with ``seed`` first
    (``nn.backends.current().seed(seed)``) so that equal seeds give equal networks.

    The test asks: at initialisation, the first layer's gradient norm over the last layer's
    is below 1 % for ``"sigmoid"`` (vanishing) and above 10 % for the three others; after
    the test's short training (15 epochs of SGD with momentum on 400 spiral points), every
    network but ``"sigmoid"`` reaches 85 % training accuracy (measured with the solution:
    ratios 1.4e-13, 0.16, 0.28 and 10; 100 % for the three).
    """
    raise NotImplementedError("★★★ the four families above; for each, a stack of hidden layers of the given width, the right initialisation before each activation, the output layer and the loss")
    return net


def train_watching_gradients(net, x, y, epochs=60, lr=0.03, momentum=0.9, batch_size=32,
                             seed=0):
    """``net`` trained with SGD and momentum; returns the history of ``fit`` with
    ``"grad_norms"``, the per-layer gradient norms on the whole training set before the
    first epoch and after each (an ``(epochs + 1, L)`` array)."""
    from nn.optim import SGD

    norms = [gradient_norms(net, x, y)]

    def watch(epoch, history):
        norms.append(gradient_norms(net, x, y))

    history = net.fit(x, y, epochs=epochs, batch_size=batch_size,
                      optimizer=SGD(lr=lr, momentum=momentum), seed=seed, callback=watch,
                      progress=False)
    history["grad_norms"] = np.array(norms)
    return history


# %% [markdown]
# ## The signal through twenty layers, at initialisation
#
# A batch of standardised inputs of width 256 through 20 layers, for four scales of the
# initial weights and two activations (tanh, symmetric like the sigmoid, and ReLU). Each
# row of the figure is one initialisation, each column of a panel one layer: too small and
# the activations collapse to zero within a few layers; too large and every tanh saturates
# at ±1 (its derivative, and so the gradient, is then zero); Xavier keeps the tanh layers
# alive, He the ReLU layers (Xavier under ReLU halves the variance at every layer).

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show

    D, N_LAYERS = 256, 20
    x_wide = np.random.default_rng(0).normal(size=(500, D))
    relu = lambda h: np.maximum(h, 0.0)          # noqa: E731
    fig, axes = plt.subplots(4, 2, figsize=(12, 10), sharex="col")
    for row, scheme in enumerate(("small", "large", "xavier", "he")):
        std = init_std(scheme, D, D)
        for col, (name, f) in enumerate((("tanh", np.tanh), ("ReLU", relu))):
            acts = stack_activations(x_wide, N_LAYERS, std, f)
            ax = axes[row, col]
            ax.violinplot([a.ravel()[::20] for a in acts], showextrema=False)
            ax.set(title=f"{name}, {scheme} init (std {std:.3g})", ylabel="activation")
            print(f"{name:>4} {scheme:>6}: std of the activations, layer 1 "
                  f"{acts[0].std():.3g}, layer 10 {acts[9].std():.3g}, layer 20 "
                  f"{acts[-1].std():.3g}")
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    show(fig, "activations")

# %% [markdown]
# ## Gradient norms per layer: at initialisation and during training
#
# The four networks of :func:`deep_network`, 20 hidden layers each, on the spirals. Left:
# the norm of each layer's weight gradient at initialisation (log scale): the sigmoid
# network's first layer receives a gradient about 10^13 times smaller than its last one
# (each sigmoid multiplies it by at most 1/4, and 0.25^20 is 10^-12). Right: the training accuracy along 60 epochs.

# %%
if __name__ == "__main__":
    x, y = make_spirals()
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    runs = {}
    for kind in KINDS:
        start = time.perf_counter()
        net = deep_network(kind)
        runs[kind] = train_watching_gradients(net, x, y)
        norms = runs[kind]["grad_norms"]
        print(f"{kind:>9}: first/last layer gradient at init {norms[0, 0] / norms[0, -1]:.2g}, "
              f"training accuracy {100 * runs[kind]['train_accuracy'][-1]:.1f} % "
              f"({time.perf_counter() - start:.1f} s)")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind, h in runs.items():
        line, = axes[0].plot(np.arange(1, h["grad_norms"].shape[1] + 1), h["grad_norms"][0],
                             "o-", ms=3, label=kind)
        axes[1].plot(h["train_accuracy"], color=line.get_color(), label=kind)
    axes[0].set(xlabel="Dense layer (input first)", ylabel="|dE/dW|", yscale="log",
                title="gradient norm per layer at initialisation")
    axes[1].set(xlabel="epoch", ylabel="training accuracy", title="training (SGD, momentum)")
    axes[1].legend()
    show(fig, "gradients")

    fig, axes = plt.subplots(1, len(KINDS), figsize=(16, 4), sharey=True)
    for ax, (kind, h) in zip(axes, runs.items()):
        image = ax.imshow(np.log10(h["grad_norms"].T + 1e-30), aspect="auto", origin="lower",
                          cmap="magma", vmin=-8, vmax=0)
        ax.set(title=kind, xlabel="epoch")
    axes[0].set_ylabel("Dense layer (input first)")
    fig.colorbar(image, ax=axes, label="log10 |dE/dW|")
    show(fig, "gradients_training")

# %% [markdown]
# What to see: the sigmoid network's first layers stay frozen and it stays at chance
# (50 %) for all 60 epochs; ReLU with He initialisation keeps gradients of the same order
# in every layer; the shortcut blocks pass the gradient straight down (``dx = dy + …``);
# normalising before every sigmoid keeps each one in its steep central part, and the
# normalisation's own backward divides the gradient by the (small) spread of its inputs,
# which makes up for the sigmoid's slope of at most 1/4. (LayerNorm, which normalises each
# example over its 32 neurons instead of each neuron over the batch, does not rescue this
# sigmoid network here: try it.) Try 40 layers, or the ReLU network with ``init="xavier"``
# or ``"uniform"`` (the course's ±0.01): what do the gradient norms become?
