# %% [markdown]
# # Looking inside a CNN: filters, activation maps, occlusion, saliency and filter maximisation
#
# **What you will learn.** How to look at what a trained CNN computes: its first-layer
# filters, the activation maps of its layers, which parts of an image its decision depends
# on (occlusion maps, and saliency maps: the gradient of a class score with respect to the
# input image), and which input image excites one chosen filter most (activation
# maximisation, the slides' "filter maximization"). The last two use backpropagation in a
# new way: not to change the weights, but to change the *image*, through the network's own
# backward pass.
#
# **Estimated time:** 2 h 30 (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt` or `002_89640e05264e4932.txt`),
# "Pattern recognition with several filters", "Examples of filter maximization" ("input
# images that maximize specific filters activation at different depth in a classification
# network": edges, then patterns, then objects) and "Explaining a model decision with
# occlusion analysis".
#
# The LeNet of the previous practical classifies Fashion-MNIST; here we look at *how*:
#
# 1. **The first-layer filters.** The 6 kernels of 5x5 weights of the first convolution are
#    small images themselves. To show signed weights with one grey scale, each filter is
#    mapped to [0, 1] so that **0 stays mid-grey**, white for the largest positive weight of
#    that filter, black for the largest negative one.
# 2. **Activation maps.** The output of the first ``n`` layers is, for each channel, an image:
#    where in the picture that filter responded.
# 3. **Occlusion maps** (Zeiler & Fergus, 2014; the slides' occlusion analysis). Hide a part
#    of the image under a patch of noise and watch the network's probability for the **true
#    class**: if it drops, the hidden part mattered. Sliding the patch over the image, with
#    its top-left corner at ``(i * stride, j * stride)``, gives a map
#
#        map[i, j] = p_label(image) - p_label(image with the patch at (i, j) replaced by noise)
#
#    with ``p`` the softmax of the logits. All the occluded images are built first and sent
#    through the network in large batches: one forward call per position would be hundreds
#    of tiny, slow calls.
# 4. **Saliency maps** (Simonyan, Vedaldi & Zisserman, 2014). The class score ``z_c`` (the
#    logit of class ``c``, before the softmax) is a function of every pixel of the input.
#    Its gradient with respect to the image says how much a small change of each pixel
#    would change the score: the pixels the decision is most sensitive to. Backpropagation
#    computes it in one backward pass: ``Network.backward(dy)`` returns ``dL/dx`` for any
#    upstream gradient ``dy`` you give it. Which ``dy`` makes the "loss" the class score of
#    each image? The saliency map shows, for each pixel, the largest ``|gradient|`` over the
#    channels.
# 5. **Filter maximisation** (Erhan et al., 2009; Olah et al., 2017). Start from a faint
#    noise image and climb the gradient of the mean activation of one channel of one layer,
#    *with respect to the image*: the image becomes what that filter looks for. Left alone,
#    the climb produces high-frequency noise that excites the filter without looking like
#    anything, so two regularisations are added: an **L2 penalty** on the image (subtract
#    ``(l2 / 2) * sum x²`` from the objective: no pixel grows without bound) and **jitter**
#    (at every step the image is shifted by a few random pixels, circularly, before the
#    forward pass, and the gradient shifted back: a pattern must excite the filter wherever
#    it sits). To reach an intermediate layer, run only the first ``k`` layers
#    (``net.layers[:k]``) forward and backpropagate through the same layers in reverse order.
#
# You write ``normalise_filters``, ``activation_maps``, ``occlusion_map``,
# ``input_gradient`` and ``maximise_filter``. The trained network comes from
# ``models/lenet_fashion_mnist.npz``, written by the ``lenet`` practical; without it this
# practical trains a LeNet for a couple of epochs first (on Fashion-MNIST, or on its sample
# bundled with nn when offline; the slides' examples come from a large ImageNet network).

# %%
import numpy as np

from lenet import train_lenet
from nn import backends


def normalise_filters(W):
    """Each filter mapped to [0, 1] for display, with 0 at mid-grey: ``0.5 + W / (2 max|W|)``.

    Difficulty ★.

    Parameters
    ----------
    W : (O, C, kh, kw) convolution weights

    Returns
    -------
    (O, C, kh, kw) float array in [0, 1]; ``max|W|`` is taken over each filter ``W[o]``
    separately (all its channels), and a filter of zeros becomes all 0.5.
    """
    W = np.asarray(W, dtype=np.float64)
    raise NotImplementedError("★ the largest absolute weight of each filter (over all its channels), each filter divided by twice it and shifted to mid-grey; a filter of zeros must not be divided by zero")
    return images


def activation_maps(net, x, n_layers):
    """The output of the first ``n_layers`` layers of ``net`` for the images ``x``.

    Difficulty ★.

    Parameters
    ----------
    net : nn.Network
    x : (N, C, H, W) images, prepared as for training (standardised)
    n_layers : int, 0 to ``len(net.layers)``; 0 gives ``x`` back

    Returns
    -------
    NumPy array, e.g. ``(N, 6, 28, 28)`` after LeNet's conv1 and its leaky ReLU
    (``n_layers=2``). Layers run in inference mode (``train=False``: no dropout).
    """
    B = backends.current()
    a = B.asarray(x)
    raise NotImplementedError("★ run the first n_layers layers one after the other, in inference mode")
    return B.to_host(a)


def occlusion_map(net, image, label, patch=6, stride=2, rng=None, batch_size=256):
    """How much the probability of the class ``label`` drops when a patch of noise hides each
    part of ``image``.

    Difficulty ★★.

    Parameters
    ----------
    net : nn.Network returning logits (its loss, SoftmaxCrossEntropy, holds the softmax)
    image : (C, H, W) one image
    label : int, the class whose probability is watched (the true class)
    patch, stride : int, the square patch's side and the step between its positions
    rng : numpy.random.Generator; the noise is ``rng.uniform(image.min(), image.max())``,
        drawn afresh for every position
    batch_size : int, occluded images per forward pass

    Returns
    -------
    (n_rows, n_cols) array, ``n_rows = (H - patch) // stride + 1`` (``n_cols`` with ``W``):
    ``map[i, j] = p_label(image) - p_label(occluded)``, the patch's top-left corner at
    ``(i * stride, j * stride)``. Positive where hiding the region hurts the true class.
    """
    rng = np.random.default_rng() if rng is None else rng
    image = np.asarray(image)
    C, H, W = image.shape
    raise NotImplementedError("★★ a stack of the intact image and of one occluded copy per position of the patch (fresh noise each time), their logits in batches, their softmax probabilities of the watched class, and the drops arranged as a map")
    return drop


def input_gradient(net, x, labels):
    """The gradient of each image's class score with respect to the image.

    Difficulty ★★. The score of image ``n`` is its logit ``z[n, labels[n]]`` (before the
    softmax), the network run in inference mode (no dropout). Use the network's own
    backward pass (see point 4 above); nothing is trained.

    Parameters
    ----------
    net : nn.Network returning logits ``(N, K)``
    x : (N, C, H, W) images, prepared as for training
    labels : (N,) int, the class whose score is differentiated, one per image

    Returns
    -------
    (N, C, H, W) NumPy array: ``d z[n, labels[n]] / d x[n]`` for every image ``n``.
    """
    B = backends.current()
    labels = np.asarray(labels)
    raise NotImplementedError("★★ the forward pass in inference mode, an upstream gradient that makes each image's loss its own class score, and the network's backward pass from there")
    return B.to_host(grad)


def saliency_map(gradient):
    """A saliency map from :func:`input_gradient`: the largest ``|gradient|`` over the
    channels, ``(N, C, H, W) -> (N, H, W)``."""
    return np.abs(np.asarray(gradient)).max(axis=1)


def maximise_filter(net, n_layers, channel, shape, steps=200, lr=1.0, l2=0.1, jitter=2,
                    rng=None, x0=None):
    """Activation maximisation: the image that most excites one channel of a layer.

    Difficulty ★★★. Gradient ascent on the image ``x`` of

        f(x) = mean over positions of a[channel]  -  (l2 / 2) * sum of x²

    where ``a`` is the output of ``net.layers[:n_layers]`` (inference mode) for ``x``. Each of
    the ``steps`` steps shifts the image circularly by a random number of pixels (drawn
    from ``rng``, between ``-jitter`` and ``jitter`` on each spatial axis; 0 means no shift),
    computes the gradient of the mean activation through the network's own backward passes
    (see point 5 above), shifts that gradient back, and moves the image by ``lr`` times the
    gradient of ``f`` (a plain gradient-ascent step). The network is not changed.

    Parameters
    ----------
    net : nn.Network
    n_layers : int >= 1, how many layers of ``net`` to run (e.g. 2: LeNet's conv1 and its
        leaky ReLU)
    channel : int, the channel of the layer's output (for a dense output ``(N, K)``, the
        neuron; with all layers of a classifier, the class)
    shape : (C, H, W), the shape of the image
    steps : int; lr : float, the step size; l2 : float >= 0, the weight of the penalty
    jitter : int >= 0, the largest shift in pixels
    rng : numpy.random.Generator for the shifts and the starting image
    x0 : (C, H, W) starting image; by default faint noise, ``0.01`` times standard normal
        values drawn from ``rng``

    Returns
    -------
    (C, H, W) float64 NumPy array, the image after the last step.
    """
    B = backends.current()
    rng = np.random.default_rng() if rng is None else rng
    layers = net.layers[:n_layers]
    x = 0.01 * rng.standard_normal(shape) if x0 is None else np.array(x0, dtype=np.float64)
    raise NotImplementedError("★★★ for every step: a random circular shift of the image, the forward pass through the chosen layers, an upstream gradient that is the derivative of the mean of the chosen channel, the backward pass through the same layers in reverse order, the gradient shifted back, and the ascent step with the penalty's gradient")
    return x


def trained_lenet(folder, source="auto", epochs=2, seed=0):
    """The LeNet saved by the ``lenet`` practical and its standardisation, if both are in
    ``folder``; else a LeNet trained here for ``epochs`` epochs. Returns
    ``net, normaliser, where`` (``where`` says which)."""
    from nn import Network
    from nn.data import Normalizer, Standardize, load_fashion_mnist

    model, stats = folder / "lenet_fashion_mnist.npz", folder / "lenet_fashion_mnist_standardize.npz"
    if model.is_file() and stats.is_file():
        return Network.load(model), Normalizer.load(stats), f"loaded from {model}"
    x, y = load_fashion_mnist("train", source=source)
    norm = Standardize(axis=None).fit(x)
    net, _ = train_lenet(norm.transform(x), y, None, epochs, seed=seed, progress=False)
    return net, norm, (f"{model} not found (run the lenet practical to make it): trained here "
                       f"for {epochs} epochs on {len(x)} images")


# %% [markdown]
# ## The network and the test images
#
# The test images go through the same standardisation as the training images, with the
# training set's mean and standard deviation saved beside the network.

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import models_dir, show
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist

    net, norm, where = trained_lenet(models_dir())
    print(f"LeNet {where}")
    x_test, y_test = load_fashion_mnist("test")
    x_test = norm.transform(x_test)
    z = net.predict(x_test).astype(np.float64)
    p_true = np.exp(z - z.max(axis=1, keepdims=True))
    p_true = p_true[np.arange(len(z)), y_test] / p_true.sum(axis=1)
    predicted = z.argmax(axis=1)
    print(f"test accuracy: {100 * np.mean(predicted == y_test):.1f} % on {len(y_test)} images")
    # for four classes, the first test image classified correctly but without certainty: a
    # probability already at 1.00 barely moves when part of the image is hidden
    chosen = []
    for c in (0, 2, 6, 9):
        right = np.flatnonzero((y_test == c) & (predicted == c))
        unsure = right[p_true[right] < 0.95]
        chosen.append(int(unsure[0] if len(unsure) else right[0]))
    images, labels = x_test[chosen], y_test[chosen]

# %% [markdown]
# ## The first-layer filters
#
# Trained filters of the first layer often look like small edge and blob detectors: a
# bright band next to a dark one responds to an edge of that orientation.

# %%
if __name__ == "__main__":
    W1 = backends.current().to_host(net.layers[0].params["W"])
    filters = normalise_filters(W1)
    fig, axes = plt.subplots(1, len(filters), figsize=(1.6 * len(filters), 1.9))
    for k, ax in enumerate(axes):
        ax.imshow(filters[k, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"filter {k}", fontsize=9)
        ax.axis("off")
    fig.suptitle("conv1 filters (grey = 0)")
    show(fig, "filters")

# %% [markdown]
# ## Activation maps
#
# LeNet's layers are conv1, leaky ReLU, pool, conv2, leaky ReLU, ...: ``n_layers=2`` gives
# the 6 maps of conv1 (28x28), ``n_layers=5`` the 16 maps of conv2 (10x10). Bright means a
# strong response.

# %%
if __name__ == "__main__":
    for n_layers, name in ((2, "conv1"), (5, "conv2")):
        maps = activation_maps(net, images, n_layers)
        n_maps = maps.shape[1]
        fig, axes = plt.subplots(len(images), n_maps + 1, figsize=(0.9 * (n_maps + 1), 1.0 * len(images)))
        for r in range(len(images)):
            axes[r, 0].imshow(images[r, 0], cmap="gray")
            axes[r, 0].set_title(FASHION_MNIST_CLASSES[labels[r]], fontsize=7)
            for k in range(n_maps):
                axes[r, k + 1].imshow(maps[r, k], cmap="viridis")
            for ax in axes[r]:
                ax.axis("off")
        fig.suptitle(f"activation maps after {name} and its leaky ReLU, {maps.shape[2]}x{maps.shape[3]}")
        show(fig, f"activations_{name}")

# %% [markdown]
# ## Occlusion maps
#
# A 6x6 patch of noise moved in steps of 2 pixels: 12x12 positions per image, 144 occluded
# images sent through the network in one batch. Red: hiding that part lowers the true
# class's probability; blue: it raises it (the part pointed to another class). The images
# are ones the network classifies correctly but with a probability below 0.95: a
# probability of 1.00 barely moves, whatever is hidden.

# %%
if __name__ == "__main__":
    import time

    PATCH, STRIDE = 6, 2
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(2, len(images), figsize=(3 * len(images), 6))
    start = time.perf_counter()
    for k, (image, label) in enumerate(zip(images, labels)):
        drop = occlusion_map(net, image, label, patch=PATCH, stride=STRIDE, rng=rng)
        z = net.predict(image[None]).astype(np.float64)[0]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        axes[0, k].imshow(image[0], cmap="gray")
        axes[0, k].set_title(f"{FASHION_MNIST_CLASSES[label]}: p = {p[label]:.2f}")
        limit = max(np.abs(drop).max(), 1e-3)
        # each cell of the map drawn at the centre of its patch, in the image's pixels
        low = PATCH / 2 - STRIDE / 2
        extent = (low, low + STRIDE * drop.shape[1], low + STRIDE * drop.shape[0], low)
        shown = axes[1, k].imshow(drop, cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent)
        axes[1, k].set(xlim=(0, 28), ylim=(28, 0))
        axes[1, k].set_title("drop of p(true class)")
        fig.colorbar(shown, ax=axes[1, k], fraction=0.046)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    print(f"{len(images)} occlusion maps of {drop.shape[0]}x{drop.shape[1]} positions in "
          f"{time.perf_counter() - start:.2f} s")
    show(fig, "occlusion")

# %% [markdown]
# ## Saliency maps
#
# For the same four images, the gradient of the true class's score with respect to the
# pixels (``input_gradient``), shown as its absolute value. Where the occlusion map asks
# "what if this region were gone?", the saliency map asks "what if this pixel changed a
# little?": the first is a large, slow, finite change; the second an infinitesimal one,
# computed for every pixel at once by one backward pass. The raw gradient is noisy: the
# leaky ReLUs and max-poolings make the score a piecewise-linear function whose slope jumps
# from one pixel to the next. The bottom row averages the gradients of 32 copies of the
# image with a little noise added (SmoothGrad, Smilkov et al. 2017: 32 images in one batch,
# still one backward pass). On this small network both stay speckled, background included:
# the score is sensitive to single pixels everywhere (a bright dot on the black background
# changes it), which is true, but hard to read; occlusion, which asks about regions, is the
# clearer answer here. On large networks and photographs, saliency maps are sharper.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    gradient = input_gradient(net, images, labels)
    print(f"saliency of {len(images)} images in {1000 * (time.perf_counter() - start):.0f} ms "
          "(one forward and one backward pass)")
    rng = np.random.default_rng(0)
    copies = np.repeat(images, 32, axis=0)
    noisy = (copies + rng.normal(0, 0.3, copies.shape)).astype(images.dtype)
    smooth = input_gradient(net, noisy, np.repeat(labels, 32)).reshape(len(images), 32, *images.shape[1:])
    rows = [("raw |d score / d pixel|", saliency_map(gradient)),
            ("SmoothGrad (32 noisy copies)", saliency_map(smooth.mean(axis=1)))]
    fig, axes = plt.subplots(3, len(images), figsize=(3 * len(images), 9))
    for k in range(len(images)):
        axes[0, k].imshow(images[k, 0], cmap="gray")
        axes[0, k].set_title(FASHION_MNIST_CLASSES[labels[k]])
        for r, (title, maps) in enumerate(rows, start=1):
            shown = axes[r, k].imshow(maps[k], cmap="hot")
            axes[r, k].set_title(title, fontsize=9)
            fig.colorbar(shown, ax=axes[r, k], fraction=0.046)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    show(fig, "saliency")

# %% [markdown]
# ## Filter maximisation
#
# The image that excites each filter most, at three depths, as on the slides: the 6 filters
# of conv1 (after its leaky ReLU, ``n_layers=2``), the first 8 of the 16 of conv2
# (``n_layers=5``) and of the 48 of conv3 (``n_layers=8``), and last the ten class scores
# (all the layers: "what does the network think a sneaker looks like?"). The first layers
# are nearly linear in the image, so their optimum is about (gradient / l2): the step size
# and the penalty are chosen per depth so that the images come out with a spread of about
# one standardised unit, like the data, with ``lr * l2 = 0.1`` (the penalty halves a pixel
# that no filter wants in about 7 steps). Deeper filters respond to larger and more
# specific patterns (conv1: oriented stripes and flat fields; conv2 and conv3: stripes in
# one part of the image, textures). On 28x28 garments there are no "objects" to find as in
# the slides' ImageNet network, and the class images are no recognisable garments: a
# score can be raised by many patterns that no real image contains (the same weakness
# that adversarial examples exploit); the slides' pictures use far stronger regularisation
# (blurring, transformations, a learnt image prior).

# %%
if __name__ == "__main__":
    depths = [("conv1", 2, range(6), 1e-3), ("conv2", 5, range(8), 4e-3),
              ("conv3", 8, range(8), 1e-2), ("classes", len(net.layers), range(10), 1e-1)]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    fig, axes = plt.subplots(len(depths), 10, figsize=(13, 1.5 * len(depths) + 0.5))
    for row, (name, n_layers, channels, l2) in zip(axes, depths):
        for ax in row:
            ax.axis("off")
        for ax, channel in zip(row, channels):
            image = maximise_filter(net, n_layers, channel, (1, 28, 28), steps=200, lr=0.1 / l2,
                                    l2=l2, jitter=2, rng=rng)
            limit = max(np.abs(image).max(), 1e-6)
            ax.imshow(image[0], cmap="gray", vmin=-limit, vmax=limit)
            label = FASHION_MNIST_CLASSES[channel] if name == "classes" else f"{name} #{channel}"
            ax.set_title(label, fontsize=7)
    print(f"{sum(len(d[2]) for d in depths)} images maximised in {time.perf_counter() - start:.1f} s")
    fig.suptitle("images that maximise a filter (grey = 0)")
    show(fig, "filter_maximisation")
