# %% [markdown]
# # A denoising diffusion model (DDPM) on a small U-Net
#
# **What you will learn**: the forward diffusion that turns an image into noise in many
# small steps and its closed form, why a network that predicts the noise is all a
# generator needs ("a DDPM can be built from any denoising network architecture"), the
# reverse step, sampling with the full chain and with far fewer steps (DDIM), and the moving
# average of the weights. **Estimated time**: 2 h (30 min for the noising, 30 min for the
# training batches, 45 min for the reverse step, the rest for the experiment).
#
# Slides: `002_89640e05264e4932.txt`, the denoising autoencoder ("Denoising Auto-Encoders")
# and the diffusion models that follow it ("a DDPM can be built from any denoising network
# architecture"), the U-Net with its concatenations; `004_3d9df880d40eb3ff.txt`, generative
# models in brief. The course's own diffusion notebooks use a cosine noise schedule, a U-Net
# with concatenations, the noise level given as an input channel and a moving average of
# the weights: so does this practical.
#
# *Where nn departs from the slides*: Fashion-MNIST replaces MNIST; Adam replaces SGD; the
# U-Net is tiny and trained for minutes on a CPU, where the course's notebooks train for
# hours on a GPU: expect recognisable garments, not sharp ones.
#
# **The forward process** adds Gaussian noise in ``T`` steps of variances ``beta_t``:
# ``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) e_t``. Gaussians compose, so every step
# can be drawn from the clean image at once, with ``alpha_t = 1 - beta_t`` and
# ``abar_t = alpha_0 alpha_1 ... alpha_t``:
#
#     x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) e,        e ~ N(0, 1)
#
# (steps are numbered ``t = 0 .. T-1`` in nn). ``abar`` falls from nearly 1 to nearly 0:
# the last ``x_t`` is pure noise. **A network learns to predict the noise** ``e`` from
# ``x_t`` and the noise level (mean squared error): a denoiser that works at every noise
# level. **The reverse process** starts from pure noise and removes a little of it at each
# step, with the network's estimate: Ho et al. (2020) derive, from the Gaussian posterior
# ``q(x_{t-1} | x_t, x_0)`` with ``x_0`` replaced by its estimate from the predicted noise,
#
#     x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) e_theta(x_t, t)) + sigma_t z
#
# with ``z ~ N(0, 1)`` and ``sigma_t² = beta_t (1 - abar_{t-1}) / (1 - abar_t)`` (the
# posterior's variance), and no noise at the last step. ``nn.diffusion.NoiseSchedule`` has
# the schedules and the steps (and DDIM's jumps over many steps at once); you write the two
# steps yourself and the tests compare them with it.
#
# You write:
#
# - ★ ``noise_images(x0, t, noise, alpha_bar)``: the forward process in closed form;
# - ★★ ``diffusion_batch(x0, rng, schedule)``: a training batch, the network's inputs and
#   targets;
# - ★★ ``reverse_step(xt, t, noise_pred, schedule, z)``: one step of the reverse chain.

# %%
import numpy as np

from nn import Network, backends
from nn.diffusion import NoiseSchedule
from nn.layers import (Concat, ConvTranspose2D, Conv2D, GroupNorm, LeakyReLU)
from nn.losses import MSE
from nn.optim import Adam, LinearDecayLR

T = 200                     # diffusion steps (the course's notebooks: 1000; fewer sample faster)
MAX_BETA = 0.2              # the cap of the cosine schedule's betas (see the experiment)


def unet():
    """The noise-predicting network (given): a small U-Net built from ``Concat`` skips.

    Input ``(N, 2, 28, 28)``: the noisy image ``x_t`` and a second channel filled with its
    noise level (:func:`with_noise_level`); output ``(N, 1, 28, 28)``, the predicted noise
    (no activation: the noise is any real number). Each ``Concat`` keeps its input and
    appends what its block computes at half the resolution, brought back up by a transposed
    convolution: the input goes straight across to the last convolution, which sees it
    next to what the coarser levels (14x14 and 7x7 maps) made of it; full-resolution layers
    are few because they cost the most on a CPU. He initialisation before the leaky ReLUs; group normalisation in the middle
    (it normalises each image on its own).
    """
    inner = Concat([                                                     # 14x14 -> 7x7 and back
        Conv2D(32, 64, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
        Conv2D(64, 64, 3, padding=1, init="he"), GroupNorm(8, 64), LeakyReLU(0.1),
        ConvTranspose2D(64, 32, 4, stride=2, padding=1, init="he"), LeakyReLU(0.1)])
    outer = Concat([                                                     # 28x28 -> 14x14 and back
        Conv2D(2, 32, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
        inner,                                                           # 32 + 32 channels
        Conv2D(64, 32, 3, padding=1, init="he"), LeakyReLU(0.1),
        ConvTranspose2D(32, 8, 4, stride=2, padding=1, init="he"), LeakyReLU(0.1)])
    return Network([outer,                                               # 2 + 8 channels
                    Conv2D(10, 1, 3, padding=1)], MSE())


def with_noise_level(xt, t, schedule):
    """The network's input (given): ``x_t (N, 1, H, W)`` and a second channel filled with
    each image's noise level, the standard deviation of its noise ``sqrt(1 - abar_t)``
    (between 0 and 1, whatever ``T``), as the course's notebooks give it.

    ``t``: an int, or ``(N,)`` ints. Returns ``(N, 2, H, W)``, of ``xt``'s dtype.
    """
    xt = np.asarray(xt)
    level = np.sqrt(1 - schedule.alpha_bar[np.asarray(t)])
    level = np.broadcast_to(np.reshape(level, (-1, 1, 1, 1)), (len(xt), 1) + xt.shape[2:])
    return np.concatenate([xt, level.astype(xt.dtype)], axis=1)


def noise_images(x0, t, noise, alpha_bar):
    """The forward process in one jump (★): ``x_t`` from the clean images.

    Parameters
    ----------
    x0 : (N, C, H, W) clean images, scaled to [-1, 1]
    t : int, or (N,) ints: each image's step, in ``[0, T)``
    noise : (N, C, H, W) standard normal noise
    alpha_bar : (T,) the schedule's ``abar_t``

    Returns
    -------
    (N, C, H, W) ``x_t``, of ``x0``'s dtype
    """
    raise NotImplementedError("★ the closed form of the introduction; the factors depend on each image's step, so shape them to broadcast over the image's channels and pixels")
    return xt


def diffusion_batch(x0, rng, schedule):
    """A training batch of the noise predictor (★★): what goes in, what must come out.

    Every image gets its own step ``t``, drawn uniformly among the ``T`` steps, and its own
    standard normal noise (from ``rng``, a ``numpy.random.Generator``); the network sees the
    noisy image with its noise level (:func:`with_noise_level`) and must answer the noise.
    This is the ``augment`` function of ``Network.fit``: called on every batch, so the same
    image is seen at a new step with a new noise every time.

    Parameters
    ----------
    x0 : (N, 1, H, W) clean images, scaled to [-1, 1]
    rng : numpy.random.Generator
    schedule : nn.diffusion.NoiseSchedule (``schedule.T`` steps, ``schedule.alpha_bar``)

    Returns
    -------
    (inputs, noise) : ``(N, 2, H, W)`` and ``(N, 1, H, W)``, both of ``x0``'s dtype
    """
    raise NotImplementedError("★★ one step per image among all T, one noise per pixel, your closed form, and the network's two input channels; the targets are what the network must predict")
    return inputs, noise


def reverse_step(xt, t, noise_pred, schedule, z):
    """One step of the reverse chain (★★): ``x_{t-1}`` from ``x_t`` and the predicted noise.

    The DDPM step of the introduction, with the posterior's variance ``sigma_t²``; at
    ``t = 0`` the step gives the clean image's estimate and adds no noise.

    Parameters
    ----------
    xt : (N, C, H, W) the current images
    t : int, the current step, in ``[0, T)``
    noise_pred : (N, C, H, W) the network's estimate of the noise in ``xt``
    schedule : nn.diffusion.NoiseSchedule: ``betas``, ``alphas``, ``alpha_bar``,
        ``alpha_bar_prev`` (``abar_{t-1}``, 1 at ``t = 0``), arrays of length ``T``
    z : (N, C, H, W) standard normal noise for this step (unused at ``t = 0``)

    Returns
    -------
    (N, C, H, W) ``x_{t-1}``
    """
    raise NotImplementedError("★★ the mean removes the scaled noise estimate and undoes the step's shrinking; the posterior's standard deviation scales the fresh noise, except at the last step")
    return x


def predict_noise(net, schedule):
    """Given: the function ``(x_t, t) -> predicted noise`` that the samplers call (``t`` one
    int for the whole batch), on the host."""
    def predict(xt, t):
        xt = backends.to_host(xt)
        return net.predict(with_noise_level(xt, np.full(len(xt), t), schedule), batch_size=500)
    return predict


def sample_ddpm(net, schedule, n, seed=0, keep=()):
    """Given: ``n`` images from pure noise with the full reverse chain of your
    ``reverse_step`` (``T`` network evaluations). Returns the images and the ``x_t`` of the
    steps listed in ``keep`` (a dict)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    predict = predict_noise(net, schedule)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    kept = {}
    for t in tqdm(range(schedule.T - 1, -1, -1), desc="DDPM sampling", leave=False):
        if t in keep:
            kept[t] = x.copy()
        z = rng.standard_normal(x.shape).astype(np.float32)
        x = reverse_step(x, t, predict(x, t), schedule, z).astype(np.float32)
    return x, kept


def to_images(x):
    """Given: samples in [-1, 1] (clipped) to images in [0, 1]."""
    return (np.clip(x, -1, 1) + 1) / 2


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
# ## The forward process, step by step
#
# The cosine schedule (Nichol & Dhariwal 2021, the course's notebooks) destroys the image
# evenly over the steps: ``abar_t`` follows a squared cosine from 1 to 0. Its last betas
# grow towards 1; they are capped here at ``MAX_BETA = 0.2`` (Nichol & Dhariwal cap them at
# 0.999 and clip the estimated clean image at every reverse step instead: without that
# clipping, a last beta of 0.999 multiplies the network's error by ``1/sqrt(alpha_t)``, 30,
# at the first reverse step, and the samples saturate). Each row is one test image noised
# by your ``noise_images`` at growing steps; the last column is noise.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import load_fashion_mnist

    SEED, EPOCHS, N_TRAIN, N_SAMPLES, N_FULL = 0, 4, 15000, 500, 96
    backends.use(seed=SEED)
    schedule = NoiseSchedule.cosine(T, max_beta=MAX_BETA)
    print(schedule)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_fit = 2 * x_train[:N_TRAIN] - 1

    rng = np.random.default_rng(SEED)
    shown_t = np.linspace(0, T - 1, 9).round().astype(int)
    examples = 2 * x_test[:4] - 1
    fig, axes = plt.subplots(len(examples), len(shown_t), figsize=(len(shown_t), 4.4))
    for row, x0 in zip(axes, examples):
        e = rng.standard_normal(x0[None].shape).astype(np.float32)
        for ax, t in zip(row, shown_t):
            ax.imshow(to_images(noise_images(x0[None], t, e, schedule.alpha_bar))[0, 0],
                      cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, t in zip(axes[0], shown_t):
        ax.set_title(f"t = {t}\nabar = {schedule.alpha_bar[t]:.2f}", fontsize=8)
    show(fig, "forward")

# %% [markdown]
# ## Training, with a moving average of the weights
#
# ``fit`` with your ``diffusion_batch`` as its ``augment``: every batch gets fresh steps and
# noises (the targets given to ``fit`` are replaced by the noises). The loss is the MSE of
# the predicted noise. It falls fast and then slowly: at large ``t`` nobody can predict the
# noise well (the image is nearly gone), at small ``t`` it is easy. ``ema=0.995`` keeps an
# exponential moving average of the weights (``nn.training.EMA``), the course's notebooks'
# trick: the averaged network is smoother than the last step's, and the samples are drawn
# with it. (0.999 is the usual value for runs of hundreds of thousands of steps; this one
# has about 1 000.)

# %%
if __name__ == "__main__":
    net = unet()
    print(net.summary((2, 28, 28)))
    batch_rng = np.random.default_rng(SEED)
    start = time.perf_counter()
    history = net.fit(x_fit, x_fit, epochs=EPOCHS, batch_size=64,
                      optimizer=Adam(LinearDecayLR(2e-3, 2e-4, EPOCHS)), seed=SEED,
                      augment=lambda xb, yb: diffusion_batch(xb, batch_rng, schedule),
                      ema=0.995)
    print(f"training: {time.perf_counter() - start:.0f} s for {EPOCHS} epochs of "
          f"{len(x_fit)} images; last epoch's loss {history['train_loss'][-1]:.1f}")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(1, EPOCHS + 1), history["train_loss"], marker="o")
    ax.set(xlabel="epoch", ylabel="MSE of the predicted noise (1/2 sum per image)",
           title="training loss")
    show(fig, "loss")

# %% [markdown]
# ## Sampling: the full chain, and DDIM's few steps
#
# The full chain runs your ``reverse_step`` ``T`` times, from pure noise (left) to an image
# (right). DDIM (Song et al. 2021, ``NoiseSchedule.sample(..., steps=k)``) takes the same
# network and jumps over many steps at once, deterministically: 25 steps, 8 times fewer
# network evaluations, give images of comparable quality; 10 steps, blurrier ones.

# %%
if __name__ == "__main__":
    with net.ema_weights():
        start = time.perf_counter()
        keep = set(np.linspace(0, T - 1, 8).round().astype(int).tolist())
        full, chain = sample_ddpm(net, schedule, N_FULL, seed=SEED, keep=keep)
        seconds_full = time.perf_counter() - start
        start = time.perf_counter()
        fast = backends.to_host(schedule.sample(predict_noise(net, schedule),
                                                (N_SAMPLES, 1, 28, 28), steps=25, seed=SEED))
        seconds_fast = time.perf_counter() - start
        few = backends.to_host(schedule.sample(predict_noise(net, schedule), (96, 1, 28, 28),
                                               steps=10, seed=SEED))
    print(f"full chain: {seconds_full:.0f} s for {N_FULL} images ({T} steps); DDIM, 25 steps: "
          f"{seconds_fast:.0f} s for {N_SAMPLES} images")

    steps = sorted(chain, reverse=True)
    fig, axes = plt.subplots(6, len(steps) + 1, figsize=(len(steps) + 1, 6.4))
    for i, row in enumerate(axes):
        for ax, t in zip(row, steps):
            ax.imshow(to_images(chain[t][i, 0]), cmap="gray", vmin=0, vmax=1)
        row[-1].imshow(to_images(full[i, 0]), cmap="gray", vmin=0, vmax=1)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, t in zip(axes[0], steps + ["image"]):
        ax.set_title(f"t = {t}" if t != "image" else "x_0", fontsize=8)
    show(fig, "reverse_chain")

    for images, name, title in ((full, "samples_ddpm", f"DDPM, {T} steps"),
                                (fast, "samples_ddim25", "DDIM, 25 steps"),
                                (few, "samples_ddim10", "DDIM, 10 steps")):
        fig, axes = plt.subplots(8, 12, figsize=(10.8, 7.6))
        for ax, image in zip(axes.flat, to_images(images)):
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(title)
        show(fig, name)

# %% [markdown]
# ## How good are the samples?
#
# The chapter's measure, for real training images, the DDIM samples (as many as for the
# other models, so that the numbers compare), the full chain's (fewer: a Fréchet distance on
# fewer images is biased upwards, compare it with the real images' on as many) and the
# baseline, the plain autoencoder's decoder with random codes.
#
# Measured on the default run (4 epochs of 15 000 images, about 1 000 steps, 8 min on 2
# busy cores): DDIM's samples are nearer to the test images than the baseline's (Fréchet
# distance about 395 against 430) but fewer are recognised (37 % against 58 %): garment
# shapes, saturated, without details. The course's notebooks train for hours on a GPU;
# every doubling of the training here still improves the samples visibly.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    classifier = quality_classifier(x_train, y_train, seed=SEED, progress=True)
    _, _, ae_sample = baseline_autoencoder(x_train, seed=SEED, progress=True)
    print(f"quality measured with {classifier[2]} ({time.perf_counter() - start:.0f} s "
          "to train or load it and the baseline)")
    print_quality(f"real training images ({N_SAMPLES})",
                  quality(classifier, x_train[-N_SAMPLES:], x_test))
    print_quality(f"DDIM, 25 steps ({N_SAMPLES})", quality(classifier, to_images(fast), x_test))
    print_quality(f"plain autoencoder ({N_SAMPLES})",
                  quality(classifier, ae_sample(N_SAMPLES, rng), x_test))
    print_quality(f"real training images ({N_FULL})",
                  quality(classifier, x_train[-N_FULL:], x_test))
    print_quality(f"DDPM, full chain ({N_FULL})", quality(classifier, to_images(full), x_test))
