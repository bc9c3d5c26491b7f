# %% [markdown]
# # Looking inside a CNN: filters, activation maps and occlusion
#
# The LeNet of the previous practical classifies Fashion-MNIST; here we look at *how*. Three
# views, from the simplest to the most telling:
#
# 1. **The first-layer filters.** The 6 kernels of 5x5 weights of the first convolution are
#    small images themselves. To show signed weights with one grey scale, each filter is
#    mapped to [0, 1] so that **0 stays mid-grey**: ``0.5 + W / (2 max|W|)``, white for the
#    largest positive weight of that filter, black for the largest negative one.
# 2. **Activation maps.** The output of the first ``n`` layers is, for each channel, an image:
#    where in the picture that filter responded. After the first convolution the maps still
#    look like the garment (edges, flat parts); after the second, at 10x10, they are coarser
#    and more abstract.
# 3. **Occlusion maps** (Zeiler & Fergus, 2014). Hide a part of the image under a patch of
#    noise and watch the network's probability for the **true class**: if it drops, the
#    hidden part mattered. Sliding the patch over the image, with its top-left corner at
#    ``(i * stride, j * stride)``, gives a map
#
#        map[i, j] = p_label(image) - p_label(image with the patch at (i, j) replaced by noise)
#
#    with ``p = softmax(z)``, ``softmax(z)_k = exp(z_k - max z) / sum_l exp(z_l - max z)``
#    (subtracting the largest logit changes nothing mathematically and avoids overflow).
#    There are ``(H - patch) // stride + 1`` rows and as many columns (with ``W``). All the
#    occluded images are built first and sent through the network in large batches: one
#    forward call per position would be hundreds of tiny, slow calls.
#
# You write ``normalise_filters``, ``activation_maps`` and ``occlusion_map``. The trained
# network comes from ``models/lenet_fashion_mnist.npz``, written by the ``lenet`` practical;
# without it this practical trains a LeNet for a couple of epochs first.

# %%
import numpy as np

from lenet import train_lenet
from nn import backends


def normalise_filters(W):
    """Each filter mapped to [0, 1] for display, with 0 at mid-grey: ``0.5 + W / (2 max|W|)``.

    Parameters
    ----------
    W : (O, C, kh, kw) convolution weights

    Returns
    -------
    (O, C, kh, kw) float array in [0, 1]; ``max|W|`` is taken over each filter ``W[o]``
    separately (all its channels), and a filter of zeros becomes all 0.5.
    """
    W = np.asarray(W, dtype=np.float64)
    # BEGIN SOLUTION divide each filter W[o] by twice its largest |weight| (1 where that is 0), add 0.5
    scale = np.abs(W).max(axis=(1, 2, 3), keepdims=True)
    images = 0.5 + W / (2 * np.where(scale > 0, scale, 1.0))
    # END SOLUTION
    return images


def activation_maps(net, x, n_layers):
    """The output of the first ``n_layers`` layers of ``net`` for the images ``x``.

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
    # BEGIN SOLUTION apply layer.forward(a, train=False) for each of net.layers[:n_layers]
    for layer in net.layers[:n_layers]:
        a = layer.forward(a, train=False)
    # END SOLUTION
    return B.to_host(a)


def occlusion_map(net, image, label, patch=6, stride=2, rng=None, batch_size=256):
    """How much the probability of the class ``label`` drops when a patch of noise hides each
    part of ``image``.

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
    # BEGIN SOLUTION stack the image and its occluded copies, softmax of net.predict in batches, p_label(image) - p_label(occluded)
    rows = range(0, H - patch + 1, stride)
    cols = range(0, W - patch + 1, stride)
    low, high = image.min(), image.max()
    images = np.repeat(image[None], 1 + len(rows) * len(cols), axis=0)  # [0] stays intact
    k = 1
    for i in rows:
        for j in cols:
            images[k, :, i:i + patch, j:j + patch] = rng.uniform(low, high, (C, patch, patch))
            k += 1
    z = net.predict(images, batch_size=batch_size).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    scores = p[:, label]
    drop = (scores[0] - scores[1:]).reshape(len(rows), len(cols))
    # END SOLUTION
    return drop


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
    net, _ = train_lenet(norm.transform(x), y, None, epochs, seed=seed)
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
