# %% [markdown]
# # A convolutional autoencoder with a 2-D latent space
#
# An autoencoder learns to copy its input through a narrow passage. The **encoder** ``f``
# compresses an image ``x`` into a few numbers ``z = f(x)``, the *latent* code; the
# **decoder** ``g`` rebuilds an image ``x^ = g(z)`` from them. Both are trained together to
# minimise the reconstruction error, with the image itself as the target:
#
#     E = 1/2 sum_pixels (g(f(x)) - x)²        (nn.losses.MSE, per image, mean over a batch)
#
# No label is used: the network must find on its own what distinguishes the images. Here
# the latent code has only **2** values, so that it can be drawn: every Fashion-MNIST image
# becomes a point of a plane.
#
# The encoder is a small CNN. Convolutions of **stride 2** halve the image at each step
# (instead of a max-pool): with a 3x3 kernel and padding 1, ``28 -> 14 -> 7``. A dense layer
# then takes the 32x7x7 features down to the 2 latent values, with no activation: the
# latent values may be any real numbers.
#
# The decoder goes the other way. Dense layers take the 2 values up to 32x7x7 = 1568
# values, which are **reshaped** into 32 feature maps of 7x7 (the layer ``Unflatten``,
# the inverse of ``Flatten``). **Transposed convolutions** then double the size at
# each step. A transposed convolution is the backward pass of a convolution used as a layer:
# each input pixel *spreads* a ``k x k`` copy of the kernel, weighted by its value, into the
# output, with the copies ``stride`` pixels apart. Its output size is
#
#     H_out = (H - 1) stride - 2 padding + kernel
#
# so kernel 4, stride 2, padding 1 gives ``7 -> 14 -> 28``. A final sigmoid keeps the
# pixels in (0, 1), like the images.
#
# You write four functions:
#
# - ``encoder()`` and ``decoder()``: the two lists of layers. The training network is
#   ``Network(encoder_layers + decoder_layers, MSE())``; since it holds the *same layer
#   objects*, ``Network(encoder_layers)`` encodes with the trained weights and
#   ``Network(decoder_layers)`` decodes (see ``autoencoder()``);
# - ``reconstruction_error(net, x)``: the mean squared error of each image;
# - ``polar_grid(radii, n_angles)``: points of the latent plane on circles, to decode.
#
# The experiment trains on Fashion-MNIST, measures the reconstruction error on the test
# set, shows reconstructions, the latent plane coloured by class (which the network never
# saw), and images generated from points of the plane that no image was encoded to.

# %%
import numpy as np

from nn import Network
from nn.layers import ConvTranspose2D, Conv2D, Dense, Flatten, LeakyReLU, Sigmoid, Unflatten
from nn.losses import MSE

LATENT = 2


def encoder():
    """The layers that map ``(N, 1, 28, 28)`` images to ``(N, 2)`` latent codes.

    Returns
    -------
    list of nn layers, in order: Conv2D(1, 16, 3, stride=2, padding=1) -> 16x14x14,
    LeakyReLU(0.1), Conv2D(16, 32, 3, stride=2, padding=1) -> 32x7x7, LeakyReLU(0.1),
    Flatten() -> 1568, Dense(1568, 64), LeakyReLU(0.1), Dense(64, 2) (no activation).
    """
    # BEGIN SOLUTION list the layers of the docstring: two stride-2 convolutions with leaky ReLUs, Flatten, Dense to 64, leaky ReLU, Dense to LATENT
    layers = [
        Conv2D(1, 16, 3, stride=2, padding=1), LeakyReLU(0.1),     # 28x28 -> 14x14
        Conv2D(16, 32, 3, stride=2, padding=1), LeakyReLU(0.1),    # 14x14 -> 7x7
        Flatten(),
        Dense(32 * 7 * 7, 64), LeakyReLU(0.1),
        Dense(64, LATENT),
    ]
    # END SOLUTION
    return layers


def decoder():
    """The layers that map ``(N, 2)`` latent codes to ``(N, 1, 28, 28)`` images in (0, 1).

    Returns
    -------
    list of nn layers, in order: Dense(2, 64), LeakyReLU(0.1), Dense(64, 1568),
    LeakyReLU(0.1), Unflatten((32, 7, 7)), ConvTranspose2D(32, 16, 4, stride=2,
    padding=1) -> 16x14x14, LeakyReLU(0.1), ConvTranspose2D(16, 1, 4, stride=2, padding=1)
    -> 1x28x28, Sigmoid().
    """
    # BEGIN SOLUTION mirror the encoder: Dense layers up to 32 * 7 * 7, Unflatten((32, 7, 7)), two transposed convolutions (kernel 4, stride 2, padding 1), Sigmoid
    layers = [
        Dense(LATENT, 64), LeakyReLU(0.1),
        Dense(64, 32 * 7 * 7), LeakyReLU(0.1),
        Unflatten((32, 7, 7)),
        ConvTranspose2D(32, 16, 4, stride=2, padding=1), LeakyReLU(0.1),    # 7x7 -> 14x14
        ConvTranspose2D(16, 1, 4, stride=2, padding=1), Sigmoid(),          # 14x14 -> 28x28
    ]
    # END SOLUTION
    return layers


def reconstruction_error(net, x):
    """The mean squared error of each image's reconstruction, ``mean_pixels (x^ - x)²``.

    Parameters
    ----------
    net : nn.Network mapping images to images of the same shape
    x : (N, C, H, W) images

    Returns
    -------
    (N,) array: for image ``n``, the mean over its ``C*H*W`` pixels of
    ``(net.predict(x)[n] - x[n])²``. (The MSE loss is ``C*H*W / 2`` times this.)
    """
    # BEGIN SOLUTION predict the reconstructions with net.predict, square the differences with x, average over every axis but the first
    x = np.asarray(x)
    errors = ((net.predict(x) - x) ** 2).reshape(len(x), -1).mean(axis=1)
    # END SOLUTION
    return errors


def polar_grid(radii, n_angles):
    """Points of the plane on circles around the origin, in polar coordinates.

    Parameters
    ----------
    radii : sequence of R radii
    n_angles : number of points on each circle, at angles ``theta_j = 2 pi j / n_angles``,
        ``j = 0 .. n_angles - 1`` (counter-clockwise from the first axis)

    Returns
    -------
    (R * n_angles, 2) array: row ``i * n_angles + j`` is
    ``(r_i cos theta_j, r_i sin theta_j)`` (one circle after the other).
    """
    # BEGIN SOLUTION make the n_angles angles, take every (radius, angle) pair radius by radius, and return r cos(theta), r sin(theta) as two columns
    radii = np.asarray(radii, dtype=np.float64)
    theta = 2 * np.pi * np.arange(n_angles) / n_angles
    r, theta = np.repeat(radii, n_angles), np.tile(theta, len(radii))
    points = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    # END SOLUTION
    return points


def autoencoder():
    """The autoencoder and its two halves: ``(net, encode, decode)``.

    ``net = Network(encoder() + decoder(), MSE())`` is trained; ``encode`` and ``decode`` are
    networks made of the *same* layer objects, so they use the weights ``net`` learns.
    """
    enc, dec = encoder(), decoder()
    return Network(enc + dec, MSE()), Network(enc), Network(dec)


# %% [markdown]
# ## The data and the network
#
# Fashion-MNIST, pixels in [0, 1] as they are (the sigmoid output must be able to match
# them, so no standardisation): the 60 000 training images to train, the 10 000 test images
# to measure. Without the full set, ``load_fashion_mnist`` falls back on the bundled sample
# (2 000 + 1 000 images), with a warning; everything still runs, with worse figures.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn import backends
    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist
    from nn.optim import Adam, LinearDecayLR

    SEED, EPOCHS = 0, 8
    backends.use(seed=SEED)                   # the same initial weights at every run
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    print(f"{len(x_train)} training and {len(x_test)} test images")

    net, encode, decode = autoencoder()
    print(net.summary((1, 28, 28)))

# %% [markdown]
# ## Training
#
# The targets are the inputs: ``fit(x, x)``. Adam, with a learning rate that decreases
# linearly. The validation loss is the MSE loss (half the *sum* of the squared errors of an
# image); ``reconstruction_error`` gives the mean per pixel.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    history = net.fit(x_train, x_train, epochs=EPOCHS, batch_size=64,
                      optimizer=Adam(LinearDecayLR(2e-3, 1e-4, EPOCHS)), seed=SEED,
                      valid=(x_test, x_test))
    seconds = time.perf_counter() - start
    print(f"training: {seconds:.0f} s for {EPOCHS} epochs, "
          f"{EPOCHS * len(x_train) / seconds:.0f} images/s")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.arange(1, EPOCHS + 1)
    ax.plot(epochs, history["train_loss"], label="training")
    ax.plot(epochs, history["valid_loss"], label="test")
    ax.set(xlabel="epoch", ylabel="MSE loss (1/2 sum of squares per image)", title="loss")
    ax.legend()
    show(fig, "loss")

# %% [markdown]
# ## Reconstruction error
#
# To judge the number, compare it with the simplest "autoencoder", which ignores its input
# and always answers the mean training image. Two numbers per image are far too few to
# keep the details (prints, buttons, texture): the reconstructions are blurred, class-like
# prototypes. The error differs between classes: trousers and sneakers, of nearly fixed
# shapes, are rebuilt best; bags (of every shape, with handles or not) and sandals (thin
# straps) worst.

# %%
if __name__ == "__main__":
    errors = reconstruction_error(net, x_test)
    mean_image = x_train.mean(axis=0)
    baseline = np.mean((x_test - mean_image) ** 2)
    print(f"test reconstruction error (mean squared error per pixel): {errors.mean():.4f}")
    print(f"predicting the mean training image instead:               {baseline:.4f}")
    for c, name in enumerate(FASHION_MNIST_CLASSES):
        print(f"  {name:>12}: {errors[y_test == c].mean():.4f}")

    fig, axes = plt.subplots(2, 10, figsize=(12, 2.8))
    examples = [np.flatnonzero(y_test == c)[0] for c in range(10)]
    rebuilt = net.predict(x_test[examples])
    for c, index in enumerate(examples):
        axes[0, c].imshow(x_test[index, 0], cmap="gray", vmin=0, vmax=1)
        axes[1, c].imshow(rebuilt[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[0, c].set_title(FASHION_MNIST_CLASSES[c], fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("rebuilt")
    show(fig, "reconstructions")

# %% [markdown]
# ## The latent plane
#
# Each test image is a point ``z = f(x)``, coloured by its class. The network never saw the
# labels, yet images of a class gather: they look alike, and looking alike is all the
# encoder was trained on. Classes that look alike (pullover, coat, shirt) overlap; shoes,
# sandals and sneakers sit together, apart from the clothes.

# %%
if __name__ == "__main__":
    z = encode.predict(x_test)
    centre, spread = z.mean(axis=0), z.std(axis=0)
    RADII, N_ANGLES = np.array([0.5, 1.0, 1.5, 2.0]), 12
    grid = centre + polar_grid(RADII, N_ANGLES) * spread     # circles stretched to the spread

    fig, ax = plt.subplots(figsize=(8, 7))
    colours = plt.get_cmap("tab10")
    for c, name in enumerate(FASHION_MNIST_CLASSES):
        points = z[y_test == c]
        ax.scatter(points[:, 0], points[:, 1], s=2, color=colours(c), label=name)
    ax.scatter(grid[:, 0], grid[:, 1], s=60, marker="+", color="black", label="decoded below")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="test images in the latent plane")
    legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    for handle in legend.legend_handles:
        handle.set_sizes([30])                # legend markers larger than the points
    show(fig, "latent")

# %% [markdown]
# ## Generating images from the plane
#
# The decoder turns *any* point of the plane into an image, also points where no image was
# encoded. Points on circles around the centre of the codes (one row per radius, in units
# of the codes' standard deviation on each axis; one column per angle) show how the images
# change smoothly from one kind of garment to the next as we go around, and become
# stranger far from the centre, where the decoder saw few codes.

# %%
if __name__ == "__main__":
    images = decode.predict(grid)
    fig, axes = plt.subplots(len(RADII), N_ANGLES, figsize=(N_ANGLES, len(RADII) + 0.5))
    for ax, image in zip(axes.flat, images):
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    for i, r in enumerate(RADII):
        axes[i, 0].set_ylabel(f"r = {r:g}")
    for j in range(N_ANGLES):
        axes[0, j].set_title(f"{360 * j // N_ANGLES}°", fontsize=9)
    show(fig, "generated")
