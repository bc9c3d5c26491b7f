# %% [markdown]
# # Denoising with a small U-Net
#
# **What you will learn**: to train a network to *clean* images (self-supervised: the
# clean image is the target, the noise is made up), to draw a new noise for every batch,
# to build a U-Net from its constraints with a concatenation skip, and to measure an image
# in decibels (PSNR). **Estimated time**: 1 h 30.
#
# Slides: `002_89640e05264e4932.txt`, "Self-supervised training with Auto-Encoders"
# (autoencoders "are used for denoising"), "Shortcut connections and the U-Net
# architecture", and "Denoising Diffusion Probabilistic models" (a denoising network is
# what a diffusion model is built from).
#
# *Where nn departs from the slides*: the slides name denoising as a use of autoencoders
# and U-Nets but give no practical for it: this one is nn's, on Fashion-MNIST (the bundled
# 3 000-image sample when offline).
#
# A network that maps images to images can learn to *clean* them: show it noisy images as
# inputs and the clean ones as targets,
#
#     E = 1/2 sum_pixels (net(x + noise) - x)²
#
# and it learns what clothes look like well enough to tell them from the noise. The noise
# here is Gaussian, of standard deviation ``sigma``, with the result clipped to the range of
# the pixels, [0, 1].
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
# so a U-Net is *nested*: the deeper part of the network is the block, which must give
# back the spatial size it received.
#
# You write:
#
# - ★ ``add_noise(x, sigma, rng)``: the noisy copy of a batch;
# - ★ ``psnr(x, reference)``: the peak signal-to-noise ratio of each image, in dB;
# - ★★ ``unet(channels)``: a one-level U-Net, from its constraints;
# - ★★ ``train_denoiser(net, x, sigma, epochs)``: the training, with a new noise for every
#   batch, so that the network never sees the same noisy image twice.

# %%
import numpy as np

from nn import Network
from nn.layers import Concat, ConvTranspose2D, Conv2D, MaxPool2D, ReLU, Sigmoid
from nn.losses import MSE
from nn.optim import Adam, LinearDecayLR


def add_noise(x, sigma, rng):
    """A noisy copy of ``x``: Gaussian noise of standard deviation ``sigma``, clipped (★).

    Parameters
    ----------
    x : array of pixels in [0, 1], any shape (not modified)
    sigma : float, the noise's standard deviation
    rng : numpy.random.Generator, to draw one independent standard normal value per pixel

    Returns
    -------
    array of the shape and dtype of ``x``: each pixel plus ``sigma`` times its own standard
    normal draw, then kept in the range of the pixels, [0, 1].
    """
    raise NotImplementedError("★ one standard normal draw per pixel from the generator, scaled by sigma and added to the images, clipped to the pixel range, in the dtype of the images")
    return noisy


def psnr(x, reference):
    """The peak signal-to-noise ratio of each image against its reference, in dB (★).

    For pixels in [0, 1] the peak is 1: ``PSNR = 10 log10(1 / MSE)``, where ``MSE`` is the
    mean over the image's pixels of the squared difference with the reference. 10 dB more
    means a 10 times smaller mean squared error; a perfect copy has an infinite PSNR.

    Parameters
    ----------
    x, reference : (N, ...) arrays of the same shape, pixels in [0, 1]

    Returns
    -------
    (N,) float64 array, one PSNR per image (``inf`` where ``x`` equals its reference).
    """
    raise NotImplementedError("★ in float64, the mean squared difference of each image over all its pixels, then ten times the decimal logarithm of its inverse; an error of zero gives an infinite ratio")
    return ratio


def unet(channels=8):
    """A one-level U-Net for ``(N, 1, H, W)`` images (``H``, ``W`` even), same shape out (★★).

    Yours to build, from the constraints (``c = channels``):

    - first, convolutions at the full resolution to ``c`` feature maps, each keeping the
      size (a ``k x k`` kernel of stride 1 needs a padding of ``(k - 1) / 2``);
    - then the skip: a ``Concat`` around the deeper level, so that the ``c`` maps of the
      full resolution are passed on beside what the level gives back. Inside, the level
      halves the size (a pooling or a strided convolution), works there with ``2c`` maps,
      and comes back to the size it received with a transposed convolution (PyTorch's
      size rule: ``(H - 1) s - 2p + k``) to ``c`` maps;
    - after the concatenation, convolutions from the ``2c`` maps back down to one, and an
      output activation that covers the pixels' range, [0, 1];
    - ReLU activations between the layers, with ``init="he"`` on the layers before them.

    Returns
    -------
    nn.Network with loss MSE(); ``channels`` sets its width (more channels, more
    parameters).
    """
    raise NotImplementedError("★★ write the shape after every layer for a 1x28x28 input; the block inside the Concat must give back the size it received, and the layer after the Concat receives the channels of both paths")
    return net


def without_skip(channels=8):
    """The same network with the skip connection cut: the block's output alone goes on.

    Given, for the comparison. ``Conv2D(c, c, 3)`` after the block, since nothing is
    concatenated any more.
    """
    c = channels
    return Network([Conv2D(1, c, 3, padding=1, init="he"), ReLU(),
                    MaxPool2D(2), Conv2D(c, 2 * c, 3, padding=1, init="he"), ReLU(),
                    ConvTranspose2D(2 * c, c, 2, stride=2, init="he"), ReLU(),
                    Conv2D(c, c, 3, padding=1, init="he"), ReLU(),
                    Conv2D(c, 1, 1), Sigmoid()], MSE())


def train_denoiser(net, x, sigma, epochs, seed=0, valid=None, progress=True):
    """Train ``net`` to give back the clean images ``x`` from noisy copies of them (★★).

    Each batch gets a *new* noise (``add_noise``, drawn from one generator seeded with
    ``seed``): over the epochs the network sees every image under many noises, and cannot
    learn one noise by heart. ``Network.fit`` can change every batch just before its
    forward pass, through its ``augment`` argument. Choose the optimiser, its rate and the
    batch size.

    Parameters
    ----------
    net : nn.Network, images to images, loss MSE
    x : (N, 1, H, W) clean training images, pixels in [0, 1]
    sigma : float, the noise's standard deviation
    epochs : int
    seed : int, the same seed gives the same run
    valid : (noisy, clean) pair of image arrays, optional: the loss on them after each epoch
    progress : bool, show the progress bar

    Returns
    -------
    dict, the history ``Network.fit`` returns.

    The test trains a U-Net of its own with it, 2 epochs on 1 000 bundled images with
    sigma 0.3: the PSNR must rise by more than 4 dB.
    """
    raise NotImplementedError("★★ the clean images are the targets; the noise is drawn inside the training, batch by batch, from one generator made once from the seed; Adam near a hundredth, decreasing, with small batches")
    return history


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
# The targets are the clean images; each input batch is a noisy copy drawn just before
# its forward pass. The validation loss is measured on the fixed noisy test images.

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
