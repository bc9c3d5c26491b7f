# %% [markdown]
# # Denoising with a small U-Net
#
# A network that maps images to images can learn to *clean* them: show it noisy images as
# inputs and the clean ones as targets,
#
#     E = 1/2 sum_pixels (net(x + noise) - x)²
#
# and it learns what clothes look like well enough to tell them from the noise. The noise
# here is Gaussian, of standard deviation ``sigma``, with the result clipped to the range of
# the pixels, [0, 1]; a new noise is drawn for every batch, so the network never sees the
# same noisy image twice.
#
# An autoencoder squeezes everything through its bottleneck and loses the details. A
# **U-Net** (Ronneberger et al., 2015) keeps them: the features of each level of the
# encoder are passed, by a *skip connection*, straight to the decoder level of the same
# size, and **concatenated** with the upsampled features coming from below. The deep path
# sees a large context (is this a shirt? where is its collar?), the skip brings back where
# exactly the edges are. In ``nn`` the skip is the layer ``Concat(block)``:
#
#     Concat(block)(x) = concat([x, block(x)], channel axis)     (N, C, H, W) -> (N, C + C', H, W)
#
# so a U-Net is *nested*: the deeper part of the network is the block. Ours has one level:
#
#     1x28x28 -> conv 3x3, 8 filters, ReLU                                   8x28x28
#                Concat([max-pool 2, conv 3x3 16 filters, ReLU,             8x14x14, 16x14x14
#                        transposed conv 2x2 stride 2 -> 8 filters, ReLU])   8x28x28
#                                                             concatenated: 16x28x28
#             -> conv 3x3, 8 filters, ReLU -> conv 1x1, 1 filter, sigmoid     1x28x28
#
# The block must give back the spatial size it received (here even sizes: 28 -> 14 -> 28).
#
# You write ``add_noise(x, sigma, rng)`` and ``unet(channels)``. The result is measured by
# the **peak signal-to-noise ratio**, for pixels in [0, 1]:
#
#     PSNR = 10 log10(1 / mean_pixels (x^ - x)²)   in dB;
#
# 10 dB more means 10 times smaller mean squared error.

# %%
import numpy as np

from nn import Network
from nn.layers import Concat, ConvTranspose2D, Conv2D, MaxPool2D, ReLU, Sigmoid
from nn.losses import MSE


def add_noise(x, sigma, rng):
    """``x`` plus Gaussian noise of standard deviation ``sigma``, clipped to [0, 1].

    Parameters
    ----------
    x : array of pixels in [0, 1], any shape (not modified)
    sigma : float, the noise's standard deviation
    rng : numpy.random.Generator, one standard normal draw per pixel

    Returns
    -------
    array of the shape and dtype of ``x``: ``clip(x + sigma * n, 0, 1)``, ``n ~ N(0, 1)``.
    """
    raise NotImplementedError("draw rng.standard_normal(x.shape), add sigma times it to x, clip to [0, 1] and keep the dtype of x")
    return noisy


def unet(channels=8):
    """A one-level U-Net for ``(N, 1, H, W)`` images (``H``, ``W`` even), same shape out.

    Returns
    -------
    nn.Network with loss MSE() and the layers, with ``c = channels``:
    Conv2D(1, c, 3, padding=1), ReLU(),
    Concat([MaxPool2D(2), Conv2D(c, 2c, 3, padding=1), ReLU(),
            ConvTranspose2D(2c, c, 2, stride=2), ReLU()]),
    Conv2D(2c, c, 3, padding=1), ReLU(), Conv2D(c, 1, 1), Sigmoid().
    """
    raise NotImplementedError("build the inner Concat block (pool, conv, ReLU, transposed conv, ReLU), put it between the first conv and the last two, return Network(layers, MSE())")
    return net


def without_skip(channels=8):
    """The same network with the skip connection cut: the block's output alone goes on.

    Given, for the comparison. ``Conv2D(c, c, 3)`` after the block, since nothing is
    concatenated any more.
    """
    c = channels
    return Network([Conv2D(1, c, 3, padding=1), ReLU(),
                    MaxPool2D(2), Conv2D(c, 2 * c, 3, padding=1), ReLU(),
                    ConvTranspose2D(2 * c, c, 2, stride=2), ReLU(),
                    Conv2D(c, c, 3, padding=1), ReLU(), Conv2D(c, 1, 1), Sigmoid()], MSE())


def psnr(x, reference):
    """Peak signal-to-noise ratio of each image, in dB, for pixels in [0, 1]:
    ``10 log10(1 / mean_pixels (x - reference)²)``; ``(N, ...) -> (N,)``."""
    mse = ((np.asarray(x, dtype=np.float64) - reference) ** 2).reshape(len(x), -1).mean(axis=1)
    return 10 * np.log10(1.0 / mse)


def train_denoiser(net, x, sigma, epochs, batch_size=64, lr=5e-3, seed=0, valid=None,
                   progress=True):
    """Train ``net`` to map noisy images to ``x``, with new noise at every batch (Adam, the
    learning rate decreasing linearly to ``lr / 20``). Returns the history of ``fit``."""
    from nn.optim import Adam, LinearDecayLR

    rng = np.random.default_rng(seed)
    return net.fit(x, x, epochs=epochs, batch_size=batch_size,
                   optimizer=Adam(LinearDecayLR(lr, lr / 20, epochs)), seed=seed, valid=valid,
                   augment=lambda xb, yb: (add_noise(xb, sigma, rng), yb), progress=progress)


# %% [markdown]
# ## The data
#
# Fashion-MNIST, a random subset of the training images to keep the run short; the test
# images get their noise once, with a fixed seed, so that every network is measured on the
# same noisy images.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn import backends
    from nn.course import show
    from nn.data import load_fashion_mnist

    SEED, SIGMA, N_TRAIN, EPOCHS = 0, 0.3, 20_000, 5
    backends.use(seed=SEED)
    x_all, _ = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("test")
    x_train = x_all[np.random.default_rng(SEED).permutation(len(x_all))[:N_TRAIN]]
    noisy_test = add_noise(x_test, SIGMA, np.random.default_rng(SEED + 1))
    print(f"{len(x_train)} training and {len(x_test)} test images, noise sigma = {SIGMA}")

    net = unet()
    print(net.summary((1, 28, 28)))

# %% [markdown]
# ## Training
#
# ``fit(x, x, augment=...)``: the targets are the clean images, and the ``augment``
# function replaces each input batch by a noisy copy just before the forward pass.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    train_denoiser(net, x_train, SIGMA, EPOCHS, seed=SEED, valid=(noisy_test, x_test))
    seconds = time.perf_counter() - start
    denoised = net.predict(noisy_test)
    before, after = psnr(noisy_test, x_test).mean(), psnr(denoised, x_test).mean()
    print(f"training: {seconds:.0f} s for {EPOCHS} epochs")
    print(f"test PSNR: noisy input {before:.2f} dB, denoised {after:.2f} dB "
          f"(+{after - before:.2f} dB)")

# %% [markdown]
# ## Noisy, denoised, clean
#
# The noise is gone and the shapes are back; fine textures (knit, prints) that the noise
# had drowned come back smoothed: the network can only guess them.

# %%
if __name__ == "__main__":
    n_show = 8
    rows = {"noisy": noisy_test[:n_show], "denoised": denoised[:n_show], "clean": x_test[:n_show]}
    fig, axes = plt.subplots(3, n_show, figsize=(n_show * 1.2, 4))
    for i, (label, images) in enumerate(rows.items()):
        for j, image in enumerate(images):
            axes[i, j].imshow(image[0], cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(label)
    show(fig, "examples")

# %% [markdown]
# ## What the skip connection brings
#
# The same layers without the concatenation: everything now goes through the 14x14
# bottleneck, and the last layers must rebuild the image from upsampled features only.
# Same data, same noise, same training. With a single level, whose bottleneck is only half
# the image's size, little is lost on the way and the skip gains only a few tenths of a dB
# here; in the deep U-Nets of image segmentation (four or five levels, down to 1/16 or 1/32
# of the size) the skips make the difference between sharp and blurred outputs.

# %%
if __name__ == "__main__":
    plain = without_skip()
    start = time.perf_counter()
    train_denoiser(plain, x_train, SIGMA, EPOCHS, seed=SEED)
    plain_after = psnr(plain.predict(noisy_test), x_test).mean()
    print(f"without the skip: denoised {plain_after:.2f} dB (+{plain_after - before:.2f} dB), "
          f"trained in {time.perf_counter() - start:.0f} s; with it: {after:.2f} dB")
