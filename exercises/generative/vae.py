# %% [markdown]
# # A variational autoencoder: a latent space to sample from
#
# **What you will learn**: why a plain autoencoder is a poor generator, how the VAE turns
# the encoder into a *distribution* over codes, the reparameterisation trick that lets a
# gradient pass through a random draw, the two terms of the VAE's loss (reconstruction and
# Kullback-Leibler) and their gradients, and how to generate and interpolate from the prior.
# **Estimated time**: 2 h (30 min for the reparameterisation, 30 min for the KL term, 45 min
# for the training step, 15 min for the interpolation).
#
# Slides: `002_89640e05264e4932.txt`, "Self-supervised training with Auto-Encoders",
# "Visualizing the latent space", "Generated digits from an MNIST AutoEncoder" and the
# generative models that follow (the variational autoencoder); `004_3d9df880d40eb3ff.txt`,
# generative models in brief.
#
# *Where nn departs from the slides*: Fashion-MNIST replaces MNIST (the bundled sample of
# 2 000 + 1 000 images when the full set is missing); Adam replaces SGD with momentum.
#
# The autoencoder practical decoded points of its 2-D latent plane into images, but which
# points? Its codes fill an irregular region, with holes, of a size nobody chose: a point
# drawn at random often decodes to nothing. The **variational autoencoder** (Kingma &
# Welling 2014) fixes the region. The encoder no longer gives one code per image but a
# Gaussian, a mean ``mu`` and a variance ``sigma²`` per latent dimension (it outputs
# ``log sigma²``, which can be any real number); the decoder receives a code *drawn* from
# that Gaussian; and a second term of the loss pulls every Gaussian towards the **prior**
# N(0, 1). After training, codes drawn from N(0, 1) decode to images: a generator.
#
# The loss of one image (the negative of the "evidence lower bound", ELBO) is
#
#     L = reconstruction(x, decoder(z)) + beta KL( N(mu, sigma²) || N(0, 1) ),   z ~ N(mu, sigma²)
#
# with the reconstruction measured by the binary cross-entropy of the pixels (the decoder
# gives logits), summed over the pixels, and the Kullback-Leibler divergence of the
# encoder's Gaussian from the prior, summed over the latent dimensions; both averaged over
# the batch (``beta = 1`` is the VAE; other values, the "beta-VAE", trade sharpness for a
# better-filled prior).
#
# You write:
#
# - ★ ``reparameterize(h, e)`` and ★★ ``reparameterize_backward(dz, h, e)``: the draw
#   ``z ~ N(mu, sigma²)`` written as a function of the encoder's output and a fixed noise,
#   and its gradient;
# - ★ ``kl_divergence(h)`` and ★★ ``kl_gradient(h)``: the second term and its gradient;
# - ★★★ ``vae_step(encoder, decoder, x, optimizer, rng, beta)``: one training step, both
#   terms, both networks;
# - ★ ``interpolate(z_a, z_b, n)``: a straight walk in the latent space.
#
# nn has the same pieces as library code (``nn.layers.Reparameterize``,
# ``nn.losses.GaussianKL``): the tests compare yours with them and with finite differences.
# The experiment trains a VAE with a 2-D latent space, draws its latent plane next to the
# plain autoencoder's, samples from the prior, interpolates, and measures the samples
# against the plain autoencoder's decoder sampled at random.

# %%
import numpy as np

from nn import Network, backends
from nn.functional import sigmoid
from nn.layers import ConvTranspose2D, Conv2D, Dense, Flatten, LeakyReLU, Unflatten
from nn.losses import BinaryCrossEntropy
from nn.optim import Adam

LATENT = 2


def vae(latent=LATENT):
    """The VAE's two networks (given): ``(encoder, decoder)``.

    ``encoder``: ``(N, 1, 28, 28)`` images to ``(N, 2 latent)`` = ``[mu, log sigma²]``, the
    plain autoencoder's encoder with twice the outputs. ``decoder``: ``(N, latent)`` codes to
    ``(N, 1, 28, 28)`` pixel *logits* (``sigmoid`` gives the image), with the reconstruction
    loss ``BinaryCrossEntropy(from_logits=True)``: the pixels, in [0, 1], are read as the
    probabilities of a pixel being lit. He initialisation before the leaky ReLUs.
    """
    encoder = Network([
        Conv2D(1, 32, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),     # 28 -> 14
        Conv2D(32, 64, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),    # 14 -> 7
        Flatten(), Dense(64 * 7 * 7, 128, init="he"), LeakyReLU(0.1),
        Dense(128, 2 * latent)])
    decoder = Network([
        Dense(latent, 128, init="he"), LeakyReLU(0.1),
        Dense(128, 64 * 7 * 7, init="he"), LeakyReLU(0.1), Unflatten((64, 7, 7)),
        ConvTranspose2D(64, 32, 4, stride=2, padding=1, init="he"), LeakyReLU(0.1),  # 7 -> 14
        ConvTranspose2D(32, 1, 4, stride=2, padding=1)],                             # 14 -> 28
        BinaryCrossEntropy(from_logits=True))
    return encoder, decoder


def reparameterize(h, e):
    """The reparameterisation trick, forward (★): a draw from ``N(mu, sigma²)`` written as a
    function of the encoder's output and of a noise drawn beforehand.

    Sampling ``z ~ N(mu, sigma²)`` has no gradient with respect to ``mu`` and ``sigma``; a
    standard normal noise ``e``, shifted by the mean and stretched by the standard deviation,
    has the same distribution and is an ordinary function of ``mu`` and ``sigma``.

    Parameters
    ----------
    h : (N, 2D) the encoder's output: ``mu`` in the first ``D`` columns, ``log sigma²`` in
        the last ``D``
    e : (N, D) standard normal noise

    Returns
    -------
    z : (N, D) the codes
    """
    raise NotImplementedError("★ split h into the mean and the log-variance; the standard deviation is the square root of the variance, which the log-variance gives through an exponential")
    return z


def reparameterize_backward(dz, h, e):
    """The reparameterisation trick, backward (★★): ``dL/dh`` from ``dL/dz``.

    Derive it from your forward, one column of ``z`` at a time (the chain rule, as for the
    layers of the MLP chapter's backpropagation): how does ``z`` change with ``mu``, and with
    ``log sigma²``? ``e`` is fixed: it is the noise of the forward pass.

    Parameters
    ----------
    dz : (N, D) ``dL/dz``, from the decoder's backward
    h : (N, 2D) ``[mu, log sigma²]``, the forward's input
    e : (N, D) the forward's noise

    Returns
    -------
    dh : (N, 2D) ``[dL/dmu, dL/d(log sigma²)]``
    """
    raise NotImplementedError("★★ the derivative of z with respect to the mean is one; with respect to the log-variance, differentiate the exponential of half of it, times the noise; each multiplies the incoming gradient element by element")
    return dh


def kl_divergence(h):
    """The VAE's second term (★): ``KL( N(mu, sigma²) || N(0, 1) )`` summed over the latent
    dimensions, averaged over the batch.

    For one dimension, the divergence of a Gaussian of mean ``mu`` and variance ``sigma²``
    from the standard normal is ``1/2 (mu² + sigma² - log sigma² - 1)``: zero exactly when
    the Gaussian is the prior, positive otherwise.

    Parameters
    ----------
    h : (N, 2D) ``[mu, log sigma²]``

    Returns
    -------
    float
    """
    raise NotImplementedError("★ the formula above for every image and dimension, from the two halves of h (the variance is the exponential of the log-variance); sum over the dimensions, mean over the images")
    return kl


def kl_gradient(h):
    """The gradient of :func:`kl_divergence` with respect to ``h`` (★★).

    Differentiate the formula with respect to ``mu`` and to ``log sigma²`` (not to
    ``sigma``: the encoder outputs the log-variance), and do not forget the batch mean.

    Parameters
    ----------
    h : (N, 2D) ``[mu, log sigma²]``

    Returns
    -------
    (N, 2D) ``[dKL/dmu, dKL/d(log sigma²)]``
    """
    raise NotImplementedError("★★ one half of the formula depends on the mean only, the rest on the log-variance only; the mean over the batch divides every derivative by the number of images")
    return grad


def vae_step(encoder, decoder, x, optimizer, rng, beta=1.0):
    """One step of gradient descent on the VAE's loss (★★★); returns the two terms.

    The loss is ``reconstruction + beta KL`` on the batch ``x`` (see the introduction). The
    gradient reaches the encoder along two paths: through the decoder and the
    reparameterisation (the reconstruction term), and directly (the KL term, which depends
    on ``h`` only). Both networks are updated in the same optimizer step.

    What nn gives: ``net.forward(x, train=True)`` keeps what the backward needs;
    ``decoder.loss`` (binary cross-entropy on logits, summed over the pixels, batch mean)
    has ``forward(logits, target)`` and ``backward()`` (its gradient with respect to the
    logits); ``net.backward(dy)`` returns ``dL/d(input)`` and leaves the gradients of the
    parameters in the layers (``net.backward(dy, input_grad=False)`` when the input's
    gradient is not needed); ``optimizer.step(params)`` updates the parameters of a list of
    ``(layer, name)`` pairs, what ``net.parameters()`` returns.

    Parameters
    ----------
    encoder, decoder : nn.Network, as :func:`vae` builds them
    x : (N, 1, 28, 28) a batch of images in [0, 1]
    optimizer : nn.optim optimizer
    rng : numpy.random.Generator: draw the standard normal noise of the codes from it, one
        ``(N, D)`` array with ``rng.standard_normal`` (the tests replay it)
    beta : float, the weight of the KL term

    Returns
    -------
    (reconstruction, kl) : two floats, the batch's two terms before the step (the KL term
    without ``beta``), logged apart
    """
    B = backends.current()
    raise NotImplementedError("★★★ forward: the encoder's Gaussians, a noise, the codes, the decoder's logits and the reconstruction term; backward: the decoder gives the codes' gradient, your backward takes it to h, where the KL term's gradient (weighted) joins it; then through the encoder and one update of all parameters")
    return reconstruction, kl


def interpolate(z_a, z_b, n):
    """``n`` codes evenly spaced on the segment from ``z_a`` to ``z_b``, both included (★).

    Parameters
    ----------
    z_a, z_b : (D,) two codes
    n : int >= 2

    Returns
    -------
    (n, D) array, ``z_a`` first and ``z_b`` last
    """
    raise NotImplementedError("★ n fractions from 0 to 1, both ends included, and for each the point that far along the way from the first code to the second")
    return codes


def train_vae(encoder, decoder, x, epochs, batch_size=64, lr=2e-3, beta=1.0, seed=0,
              progress=True):
    """Given: the epochs loop around your ``vae_step``; returns the history, the mean of
    each term over every epoch's batches (``reconstruction``, ``kl``)."""
    from tqdm.auto import tqdm

    backends.current().seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = Adam(lr)
    history = {"reconstruction": [], "kl": []}
    for epoch in tqdm(range(epochs), desc="VAE", disable=not progress):
        order = rng.permutation(len(x))
        sums = np.zeros(2)
        for start in range(0, len(x), batch_size):
            batch = x[order[start:start + batch_size]]
            sums += np.array(vae_step(encoder, decoder, batch, optimizer, rng, beta)) * len(batch)
        history["reconstruction"].append(sums[0] / len(x))
        history["kl"].append(sums[1] / len(x))
    return history


def decode_images(decoder, z):
    """Given: images in [0, 1] from codes (the decoder gives logits)."""
    return sigmoid(decoder.predict(np.asarray(z, dtype=np.float32)))


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
# ## The data and the training
#
# Fashion-MNIST, pixels in [0, 1]: ``N_TRAIN`` training images (all 60 000 make a better
# VAE, at four times the time), the test images to measure. The two terms of the loss are
# logged apart: the reconstruction falls as the decoder learns; the KL term first *rises*
# from 0 (at the start every Gaussian is near the prior, and the codes carry nothing), as the
# encoder learns to spend information on the images, and settles where the two terms balance.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist

    SEED, EPOCHS, N_TRAIN, N_SAMPLES = 0, 8, 20000, 500
    backends.use(seed=SEED)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_fit = x_train[:N_TRAIN]
    print(f"{len(x_fit)} training and {len(x_test)} test images")

    start = time.perf_counter()
    encoder, decoder = vae()
    history = train_vae(encoder, decoder, x_fit, EPOCHS, seed=SEED)
    print(f"VAE: {time.perf_counter() - start:.0f} s for {EPOCHS} epochs; last epoch: "
          f"reconstruction {history['reconstruction'][-1]:.1f}, KL {history['kl'][-1]:.2f} "
          "(per image)")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, EPOCHS + 1)
    axes[0].plot(epochs, history["reconstruction"])
    axes[0].set(xlabel="epoch", ylabel="binary cross-entropy (sum over pixels)",
                title="reconstruction term")
    axes[1].plot(epochs, history["kl"], color="C1")
    axes[1].set(xlabel="epoch", ylabel="KL (sum over the latent dimensions)", title="KL term")
    show(fig, "loss_terms")

# %% [markdown]
# ## The latent plane, against the plain autoencoder's
#
# The VAE's means ``mu`` of the test images, coloured by class, next to the codes of a plain
# autoencoder of the same shape (trained here, or loaded when another practical of the
# chapter trained it). The plain codes spread over a region whose size and shape nothing
# chose (several units on one axis, fewer on the other), dense arms with empty wedges
# between them; the VAE's gather in a cloud of radius about 2 around the origin (the
# prior's), with fewer holes: a point drawn from N(0, 1) lands near some image's code. The
# price: the KL term pulls the codes together, and neighbouring classes overlap more.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    ae_encode, ae_decode, ae_sample = baseline_autoencoder(x_train, seed=SEED, progress=True)
    print(f"plain autoencoder: {time.perf_counter() - start:.0f} s (trained or loaded)")
    mu = encoder.predict(x_test)[:, :LATENT]
    plain = ae_encode.predict(x_test)

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    colours = plt.get_cmap("tab10")
    for ax, codes, title in ((axes[0], plain, "plain autoencoder: codes"),
                             (axes[1], mu, "VAE: means mu (the prior is N(0, 1))")):
        for c, name in enumerate(FASHION_MNIST_CLASSES):
            ax.scatter(*codes[y_test == c].T, s=2, color=colours(c), label=name)
        ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
    axes[1].add_patch(plt.Circle((0, 0), 2, fill=False, ls="--", color="black"))
    legend = axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    for handle in legend.legend_handles:
        handle.set_sizes([30])
    show(fig, "latent_planes")

# %% [markdown]
# ## Samples from the prior, the latent manifold, an interpolation
#
# Codes drawn from N(0, 1), decoded; then a regular grid of the plane from -2 to 2 on each
# axis (the decoder's "map" of the garments); then straight walks between the codes of two
# test images of different classes, which pass through plausible images all the way.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(SEED)
    samples = decode_images(decoder, rng.standard_normal((N_SAMPLES, LATENT)))

    def image_grid(images, rows, cols, name, title):
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4))
        for ax, image in zip(axes.flat, images):
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(title)
        show(fig, name)

    image_grid(samples, 8, 12, "samples", "VAE: codes drawn from the prior N(0, 1)")
    axis = np.linspace(-2, 2, 12)
    grid = np.array([(a, b) for b in axis[::-1] for a in axis])
    image_grid(decode_images(decoder, grid), 12, 12, "manifold",
               "VAE: the decoded plane, z from -2 to 2")
    pairs = [(0, 1), (5, 7), (2, 9), (3, 8)]          # classes to walk between
    walks = []
    for a, b in pairs:
        ia, ib = np.flatnonzero(y_test == a)[0], np.flatnonzero(y_test == b)[0]
        walks.append(decode_images(decoder, interpolate(mu[ia], mu[ib], 10)))
    image_grid(np.concatenate(walks), len(pairs), 10, "interpolation",
               "VAE: straight walks in the latent space")

# %% [markdown]
# ## How good are the samples?
#
# The chapter's measure (above): the Fréchet distance to the test images and the share of
# samples the classifier recognises, for real training images (the best one can do with
# this many images), the VAE's samples from the prior, and the baseline: the plain
# autoencoder's decoder with codes drawn at random. A 2-D latent space is a strong
# bottleneck: the VAE's images are blurred prototypes; with ``LATENT = 16`` they get
# sharper, but there is no plane to draw any more.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    classifier = quality_classifier(x_train, y_train, seed=SEED, progress=True)
    print(f"quality measured with {classifier[2]} ({time.perf_counter() - start:.0f} s)")
    print_quality("real training images", quality(classifier, x_train[-N_SAMPLES:], x_test))
    print_quality("VAE, codes from the prior", quality(classifier, samples, x_test))
    print_quality("plain autoencoder, random codes",
                  quality(classifier, ae_sample(N_SAMPLES, rng), x_test))
