# %% [markdown]
# # A generative adversarial network (DCGAN)
#
# **What you will learn**: the GAN's "min-max adversarial game" between a generator and a
# discriminator, how the generator learns through the discriminator's *input* gradient, the
# alternating training step, how to read the two losses (they do not go down together), and
# how to measure mode collapse. **Estimated time**: 1 h 30 (1 h for the step, 30 min for the
# experiment and the questions).
#
# Slides: `002_89640e05264e4932.txt`, the generative models after the autoencoders (the GAN
# and its "min-max adversarial game"); `004_3d9df880d40eb3ff.txt`, generative models in
# brief; the transposed convolution ("Transposed convolution for upsampling") and the
# normalisations of the CNN chapter.
#
# *Where nn departs from the slides*: Fashion-MNIST replaces MNIST; Adam with Radford et
# al.'s settings (rate 2e-4 to 5e-4, first moment 0.5) replaces SGD; the generator
# maximises ``log D(G(z))`` instead of minimising ``log(1 - D(G(z)))`` (the "non-saturating"
# loss of Goodfellow et al.: same fixed point, but a useful gradient when the
# discriminator wins easily, which it does at the start).
#
# Two networks play against each other. The **generator** ``G`` turns random numbers ``z``
# into images; the **discriminator** ``D`` gives the logit of the probability that an image
# is real. ``D`` is trained to tell the real images from ``G``'s (a binary classifier, the
# binary cross-entropy of the CNN chapter, label 1 for real and 0 for generated); ``G`` is
# trained to make ``D`` answer "real" on its images. ``G`` never sees a real image: all it
# learns comes through the gradient of ``D``'s answer with respect to ``D``'s *input*, the
# generated image, which ``Network.backward`` returns.
#
# The networks follow DCGAN (Radford et al. 2016): strided convolutions instead of pooling
# in ``D``, transposed convolutions in ``G``, leaky ReLUs in ``D``, batch normalisation in
# ``G`` and a tanh on its output (the images are scaled to [-1, 1]). ``D`` uses group
# normalisation, which normalises each image on its own: a batch of real images and a
# batch of generated ones then give the same result together or apart.
#
# You write ★★★ ``gan_step(gen, disc, x_real, z, opt_d, opt_g)``, the alternating step. The
# experiment trains the GAN, draws the two losses over time and samples every few epochs,
# and measures the samples: the Fréchet distance, the confident share, and how many classes
# the classifier finds among them (mode collapse), against a plain autoencoder's decoder
# sampled at random.

# %%
import numpy as np

from nn import Network, backends
from nn.layers import (BatchNorm, ConvTranspose2D, Conv2D, Dense, Flatten, GroupNorm,
                       LeakyReLU, ReLU, Tanh, Unflatten)
from nn.losses import BinaryCrossEntropy
from nn.optim import Adam

NOISE = 32                  # the length of the generator's input z


def generator(noise=NOISE):
    """The generator (given): ``(N, noise)`` standard normal numbers to ``(N, 1, 28, 28)``
    images in [-1, 1]. A dense layer to 48 maps of 7x7, then two transposed convolutions
    that double the size (7 -> 14 -> 28), batch normalisation and ReLUs between them."""
    return Network([
        Dense(noise, 48 * 7 * 7, init="he"), BatchNorm(48 * 7 * 7), ReLU(),
        Unflatten((48, 7, 7)),
        ConvTranspose2D(48, 24, 4, stride=2, padding=1, init="he"), BatchNorm(24), ReLU(),
        ConvTranspose2D(24, 1, 4, stride=2, padding=1), Tanh()])


def discriminator():
    """The discriminator (given): ``(N, 1, 28, 28)`` images to ``(N, 1)`` logits of "real",
    with the loss ``BinaryCrossEntropy(from_logits=True)``. Two strided convolutions
    (28 -> 14 -> 7), leaky ReLUs of slope 0.2, group normalisation, one dense output."""
    return Network([
        Conv2D(1, 32, 4, stride=2, padding=1, init="he"), LeakyReLU(0.2),
        Conv2D(32, 64, 4, stride=2, padding=1, init="he"), GroupNorm(8, 64), LeakyReLU(0.2),
        Flatten(), Dense(64 * 7 * 7, 1)], BinaryCrossEntropy(from_logits=True))


def gan_step(gen, disc, x_real, z, opt_d, opt_g):
    """One alternating step of the GAN (★★★): first the discriminator, then the generator.

    1. The discriminator's step lowers its loss, the binary cross-entropy on the real images
       (target 1) plus the binary cross-entropy on the generated images ``gen(z)`` (target
       0), each a batch mean; only the discriminator's parameters move.
    2. The generator's step then lowers ``disc.loss`` of the *updated* discriminator's
       answer on ``gen(z)`` with target 1 (the non-saturating loss); only the generator's
       parameters move. Its gradient starts at the discriminator's output and goes back
       through the discriminator to its input, the generated images, then through the
       generator.

    What nn gives: ``net.forward(x, train=True)`` keeps what the backward needs (and runs
    batch normalisation on the batch); ``disc.loss.forward(logits, targets)`` and
    ``disc.loss.backward()``; ``net.backward(dy)`` returns ``dL/d(input)`` and *replaces*
    the gradients stored in the layers (``layer.grads[name]``, for the pairs ``(layer,
    name)`` of ``net.parameters()``) by those of this backward; ``opt.step(params)``
    updates the parameters of such a list of pairs from their stored gradients.

    Parameters
    ----------
    gen, disc : nn.Network, the generator and the discriminator (loss binary
        cross-entropy on logits)
    x_real : (N, ...) a batch of real images, scaled as the generator's output
    z : (N, noise) the generator's input for this step, used in both halves
    opt_d, opt_g : the two networks' optimizers

    Returns
    -------
    (d_loss, g_loss) : floats; the discriminator's loss (the sum of its two terms) before
    its step, the generator's loss before its step (after the discriminator's)
    """
    B = backends.current()
    # BEGIN SOLUTION ★★★ the discriminator must see both kinds of images before its step, and one backward replaces the gradients of the other: either keep and add them, or pass the two kinds as one batch and mind the batch means; the generator's step needs the gradient with respect to the discriminator's input, and must leave the discriminator as its own step left it
    x_real, z = B.asarray(x_real), B.asarray(z)
    n = len(x_real)
    fake = gen.forward(z, train=True)
    both = B.xp.concatenate([x_real, fake], axis=0)
    targets = B.xp.concatenate([B.xp.ones((n, 1)), B.xp.zeros((n, 1))]).astype(both.dtype)
    # one batch of 2N images: its mean is half the sum of the two means, hence the 2
    d_loss = 2 * disc.loss.forward(disc.forward(both, train=True), targets)
    disc.backward(2 * disc.loss.backward(), input_grad=False)
    opt_d.step(disc.parameters())
    g_loss = disc.loss.forward(disc.forward(fake, train=True), targets[:n])
    gen.backward(disc.backward(disc.loss.backward()), input_grad=False)
    opt_g.step(gen.parameters())
    # END SOLUTION
    return d_loss, g_loss


def train_gan(gen, disc, x, epochs, batch_size=64, lr=5e-4, seed=0, every=2, n_show=40,
              progress=True):
    """Given: the epochs loop around your ``gan_step``, with Adam (first moment 0.5) for
    both networks. Returns the history: ``d_loss`` and ``g_loss`` of every step, and
    ``samples``, ``(epoch, images)`` pairs of the same ``n_show`` codes decoded after the
    first epoch and every ``every`` epochs."""
    from tqdm.auto import tqdm

    B = backends.current()
    B.seed(seed)
    rng = np.random.default_rng(seed)
    opt_d, opt_g = Adam(lr, betas=(0.5, 0.999)), Adam(lr, betas=(0.5, 0.999))
    z_show = rng.standard_normal((n_show, gen.layers[0].in_features)).astype(np.float32)
    history = {"d_loss": [], "g_loss": [], "samples": []}
    bar = tqdm(total=epochs * (len(x) // batch_size), desc="GAN", disable=not progress)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):   # full batches only
            z = rng.standard_normal((batch_size, gen.layers[0].in_features)).astype(np.float32)
            d_loss, g_loss = gan_step(gen, disc, x[order[start:start + batch_size]], z,
                                      opt_d, opt_g)
            history["d_loss"].append(float(d_loss))
            history["g_loss"].append(float(g_loss))
            bar.update()
        if epoch == 0 or (epoch + 1) % every == 0 or epoch == epochs - 1:
            history["samples"].append((epoch + 1, gen.predict(z_show)))
        bar.set_postfix(d_loss=f"{np.mean(history['d_loss'][-50:]):.3f}",
                        g_loss=f"{np.mean(history['g_loss'][-50:]):.3f}")
    bar.close()
    return history


def generate(gen, n, rng):
    """Given: ``n`` images in [0, 1] from the generator (inference: batch normalisation with
    its running estimates)."""
    z = rng.standard_normal((n, gen.layers[0].in_features)).astype(np.float32)
    return (gen.predict(z) + 1) / 2


# %% [markdown]
# ## Given: the quality measure shared by the chapter
#
# The same measure for the three generative practicals, in ``nn/course/quality.py`` (read it:
# it is short). A classifier's last hidden layer describes an image by a few hundred numbers
# that say *what* it shows; the **Fréchet distance** (``nn.metrics.frechet_distance``) between
# the Gaussians fitted to these features of the generated images and of real test images is
# 0 when the two sets look alike to the classifier, and grows when the samples are blurred,
# strange or all of one kind (Heusel et al.'s FID uses Inception's features; here the course's
# LeNet plays that role). The **confident share** is the part of the samples the classifier
# gives a class with probability at least 0.9: a garment it recognises. The **classes found**
# count the classes of the confident samples: a generator that makes only shoes scores a low
# number (mode collapse). The classifier is the ``lenet`` practical's, when it has been run
# (it saves its network in ``models/``); otherwise a small classifier is trained in a minute
# or two, saved and reused by the other practicals of the chapter. The baseline generator is a
# plain autoencoder's decoder fed random codes.

# %%
from nn.course.quality import baseline_autoencoder, print_quality, quality, quality_classifier

# %% [markdown]
# ## Training
#
# Fashion-MNIST scaled to [-1, 1] (the generator's tanh). The two losses do not go down
# together: they are the two sides of one game. A discriminator that guesses (probability
# 1/2 everywhere) has the loss ``2 log 2 = 1.39`` and gives the generator ``log 2 = 0.69``;
# the game stays healthy while both hover near there. A discriminator loss that falls to 0
# while the generator's climbs means the discriminator won and the generator learns nothing
# any more; wild swings of both, a generator chasing a discriminator that chases it back.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist

    SEED, EPOCHS, N_TRAIN, N_SAMPLES = 0, 8, 12000, 500
    backends.use(seed=SEED)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_fit = 2 * x_train[:N_TRAIN] - 1
    print(f"{len(x_fit)} training images, scaled to [-1, 1]")

    gen, disc = generator(), discriminator()
    print(f"generator: {gen.n_params()} parameters, discriminator: {disc.n_params()}")
    start = time.perf_counter()
    history = train_gan(gen, disc, x_fit, EPOCHS, seed=SEED)
    print(f"GAN: {time.perf_counter() - start:.0f} s for {EPOCHS} epochs")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    steps = np.arange(1, len(history["d_loss"]) + 1)
    smooth = np.ones(25) / 25
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        ax.plot(steps, history[key], alpha=0.25)
        ax.plot(steps[24:], np.convolve(history[key], smooth, "valid"), label=label,
                color=ax.lines[-1].get_color())
    ax.axhline(2 * np.log(2), ls=":", color="C0")
    ax.axhline(np.log(2), ls=":", color="C1")
    ax.set(xlabel="step", ylabel="binary cross-entropy", title="the two losses over time")
    ax.legend()
    show(fig, "losses")

# %% [markdown]
# ## Samples as training goes
#
# The same codes ``z`` decoded after the first epoch and every few epochs: first blobs of
# the mean garment, then shapes, then details. Compare the rows: does one code keep its
# garment from one epoch to the next, or does the generator move the whole population?

# %%
if __name__ == "__main__":
    shown = history["samples"]
    fig, axes = plt.subplots(len(shown), 16, figsize=(16, len(shown) + 0.3))
    axes = np.atleast_2d(axes)
    for row, (epoch, images) in zip(axes, shown):
        for ax, image in zip(row, images):
            ax.imshow((image[0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"epoch {epoch}", fontsize=8)
    show(fig, "samples_over_time")

    rng = np.random.default_rng(SEED)
    samples = generate(gen, N_SAMPLES, rng)
    fig, axes = plt.subplots(8, 12, figsize=(10.8, 7.6))
    for ax, image in zip(axes.flat, samples):
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("GAN samples after training")
    show(fig, "samples")

# %% [markdown]
# ## Quality and mode collapse
#
# A GAN's generator is rewarded for fooling the discriminator, not for covering every kind
# of image: it may settle on the few garments the discriminator accepts best (*mode
# collapse*). The classifier counts how many samples of each class it recognises
# confidently; a collapsed generator shows a few tall bars. The baseline is the plain
# autoencoder's decoder fed random codes (trained here, or loaded when the VAE practical
# trained it).
#
# Measured on the default run (8 epochs of 12 000 images, 5 min on 2 cores): the GAN is
# *behind* the baseline (Fréchet distance about 520 against 410, 28 % of its samples
# recognised against 58 %), its samples mostly tops with a grainy texture. A GAN needs
# many more steps than a VAE: DCGAN's samples become sharp after tens of epochs of the
# full set (raise ``EPOCHS`` and ``N_TRAIN`` if you have the time, and watch the bars).

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    classifier = quality_classifier(x_train, y_train, seed=SEED, progress=True)
    _, _, ae_sample = baseline_autoencoder(x_train, seed=SEED, progress=True)
    print(f"quality measured with {classifier[2]} ({time.perf_counter() - start:.0f} s "
          "to train or load it and the baseline)")
    real = quality(classifier, x_train[-N_SAMPLES:], x_test)
    ours = quality(classifier, samples, x_test)
    base = quality(classifier, ae_sample(N_SAMPLES, rng), x_test)
    print_quality("real training images", real)
    print_quality("GAN", ours)
    print_quality("plain autoencoder, random codes", base)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.27
    for k, (q, label) in enumerate(((real, "real"), (ours, "GAN"), (base, "autoencoder"))):
        ax.bar(np.arange(10) + (k - 1) * width, q["counts"], width, label=label)
    ax.set_xticks(np.arange(10), FASHION_MNIST_CLASSES, rotation=30, fontsize=8)
    ax.set(ylabel=f"confident samples (of {N_SAMPLES})",
           title="which classes the samples are (mode collapse: a few tall bars)")
    ax.legend()
    show(fig, "classes")
