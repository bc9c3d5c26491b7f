# %% [markdown]
# # Data augmentation with Albumentations: fewer images, less overfitting
#
# **What you will learn.** What data augmentation does to a network trained on few images
# (overfitting, the gap between training and test accuracy, invariance); which transforms
# keep a label and which do not; how to build a random, repeatable pipeline with
# Albumentations; and how to measure learning curves honestly when the training images are
# augmented.
#
# **Estimated time:** 1 h 30 (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt` or `002_89640e05264e4932.txt`),
# "Data augmentation" (from Albumentations: contrast, horizontal flip, crop, median blur,
# hue / saturation / value, gamma; "one can choose a set of transforms that do not alter the
# labeling"; augmentation "cannot create new contexts") and the ASIRRA practical work
# ("explore the architectures, hyperparameters, and augmentation setups"). The slides show
# colour photographs; here the images are Fashion-MNIST's grey 28x28 garments (its bundled
# sample when offline), so colour transforms give way to brightness, contrast and gamma.
#
# With few training images a CNN learns them by heart: its training accuracy reaches 100 %
# while the test accuracy stalls far below. *Data augmentation* shows it, at every epoch,
# slightly different versions of the same images — flipped, shifted, rotated, brighter or
# with more contrast —, drawn at random on the fly. The network can no longer memorise
# pixels, and has to learn what survives those changes: the shape of a sleeve, the sole of
# a shoe.
#
# An augmentation must keep the label. A shirt seen in a mirror is still a shirt, and
# shifted by two pixels, turned by ten degrees or photographed in another light too; but an
# upside-down ankle boot is not something the test set will show, so no vertical flips
# here. For galaxies or radio sources, whose orientation on the sky means nothing, every
# flip and rotation would be allowed: the choice belongs to the data, not to the library.
#
# [Albumentations](https://albumentations.ai) transforms one image at a time, each
# transform applied with its probability ``p``. ``nn.data.Augment`` turns a pipeline into
# what ``Network.fit(augment=...)`` calls on every training batch ``(N, C, H, W)``:
#
#     augment = Augment(A.Compose([A.HorizontalFlip(p=0.5), ...], seed=0))
#     net.fit(x, y, augment=augment)
#
# ``A.Compose(..., seed=s)`` owns its random generator: two pipelines built with the same
# seed draw the same transforms, so a run can be repeated.
#
# One subtlety when reading the curves: the training accuracy that ``fit`` reports is
# measured on the augmented batches, with dropout on. To compare fairly with the test set,
# measure the training accuracy again at the end of each epoch, on the **clean** training
# images.
#
# You write ``augmentation_pipeline`` and ``accuracy_curves``. The experiment trains the
# same small CNN twice on 1 000 Fashion-MNIST images, with and without augmentation, same
# seed, same epochs, compares their learning curves, and then tests both on test images
# mirrored, shifted, rotated or darkened.

# %%
import numpy as np

import nn
from nn.data import Augment
from nn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from nn.losses import SoftmaxCrossEntropy


def augmentation_pipeline(seed=None):
    """A random, label-preserving augmentation for 28x28 grey images in [0, 1].

    Difficulty ★★ (reading the Albumentations documentation is part of it). An ``nn.data.Augment`` of ``A.Compose([...], seed=seed)`` holding, in this order:

    - ``A.HorizontalFlip(p=0.5)`` (no vertical flip: an upside-down garment is not in the
      data);
    - ``A.Affine`` with a small shift (``translate_percent`` within ±8 %), zoom
      (``scale`` 0.9 to 1.1) and rotation (``rotate`` within ±10 degrees), ``p=0.7``;
    - ``A.RandomBrightnessContrast`` (brightness and contrast within ±0.2, ``p=0.5``);
    - ``A.RandomGamma`` (``gamma_limit`` 80 to 125, i.e. gamma 0.8 to 1.25, ``p=0.5``).

    Albumentations keeps float32 images in [0, 1] (it clips after brightness and contrast).

    Parameters
    ----------
    seed : int or None
        Seeds the pipeline's own random generator: equal seeds, equal draws.

    Returns
    -------
    nn.data.Augment, called as ``augment(x, y) -> (x_augmented, y)`` on ``(N, 1, 28, 28)``
    """
    from nn.data.augment import import_albumentations

    A = import_albumentations()
    raise NotImplementedError("★★ the four transforms of the docstring with their ranges and probabilities, composed in that order with the pipeline's own seed, and wrapped for Network.fit")
    return augment


def accuracy_curves(net, train, test, epochs, optimizer, augment=None, seed=0,
                    batch_size=32):
    """Train ``net`` and measure, after every epoch, its accuracy on the clean training
    images and on the test images.

    Difficulty ★★.

    Parameters
    ----------
    net : nn.Network
    train, test : (x, y) pairs, images ``(N, 1, H, W)`` and class ids
    epochs : int
    optimizer : nn.optim optimizer
    augment : callable or None
        Passed to ``net.fit``: applied to every training batch (None: no augmentation).
    seed, batch_size : passed to ``net.fit``

    Returns
    -------
    dict of lists, one value per epoch:

    - ``"train"``: accuracy on the training images *without* augmentation (``train=False``,
      measured at the end of the epoch, e.g. with ``net.evaluate`` in ``fit``'s callback);
    - ``"fit_train"``: the training accuracy ``fit`` reports (augmented batches);
    - ``"test"``: accuracy on the test images.
    """
    x_train, y_train = train
    curves = {"train": [], "fit_train": [], "test": []}
    raise NotImplementedError("★★ one training run of all the epochs with the augmentation, the test set as validation set, and a callback that measures the clean training accuracy at the end of every epoch; the two other curves come from the history of the run")
    return curves


def small_cnn(n_classes=10):
    """A small CNN for 1x28x28 images: two 3x3 convolutions (8 and 16 filters), each with a
    ReLU and a 2x2 max-pooling, then a dense layer of 64 and the softmax output (He
    initialisation before the ReLUs). No dropout, so that the only defence against
    overfitting is the augmentation."""
    return nn.Network([
        Conv2D(1, 8, 3, padding=1, init="he"), ReLU(), MaxPool2D(2),
        Conv2D(8, 16, 3, padding=1, init="he"), ReLU(), MaxPool2D(2), Flatten(),
        Dense(16 * 7 * 7, 64, init="he"), ReLU(), Dense(64, n_classes),
    ], SoftmaxCrossEntropy())


def stratified_subset(y, n_per_class, seed=0):
    """Indices of ``n_per_class`` random examples of every class of ``y``, shuffled."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(y == c), n_per_class, replace=False)
              for c in np.unique(y)]
    return rng.permutation(np.concatenate(chosen))


# %% [markdown]
# ## The data
#
# 100 training images of every class (1 000 in all), drawn at random from Fashion-MNIST's
# training set, and 200 test images of every class (2 000) to measure the accuracy after
# each epoch. Without the full data set, the bundled sample is used instead.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist
    from nn.optim import Adam

    SEED, EPOCHS = 0, 30
    x_full, y_full = load_fashion_mnist("train")
    keep = stratified_subset(y_full, 100, seed=SEED)
    x_train, y_train = x_full[keep], y_full[keep]
    x_full, y_full = load_fashion_mnist("test")
    keep = stratified_subset(y_full, min(200, np.bincount(y_full).min()), seed=SEED)
    x_test, y_test = x_full[keep], y_full[keep]
    print(f"{len(x_train)} training images, {len(x_test)} test images {x_test.shape[1:]}")

# %% [markdown]
# ## What the network sees
#
# The first column is the image, the others are what the pipeline makes of it, each call a
# new random draw.

# %%
if __name__ == "__main__":
    augment = augmentation_pipeline(seed=SEED)
    examples = [int(np.flatnonzero(y_train == c)[0]) for c in (0, 1, 5, 7, 8, 9)]
    n_versions = 7
    fig, axes = plt.subplots(len(examples), n_versions + 1,
                             figsize=(1.3 * (n_versions + 1), 1.3 * len(examples)))
    for row, i in zip(axes, examples):
        copies = np.repeat(x_train[i:i + 1], n_versions, axis=0)
        versions, _ = augment(copies, np.repeat(y_train[i:i + 1], n_versions))
        for ax, image in zip(row, [x_train[i], *versions]):
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
        row[0].set_ylabel(FASHION_MNIST_CLASSES[y_train[i]], fontsize=8)
    axes[0, 0].set_title("image", fontsize=9)
    for ax in axes[0, 1:]:
        ax.set_title("augmented", fontsize=9)
    show(fig, "examples")

# %% [markdown]
# ## The same network, with and without augmentation
#
# Same initial weights (``nn.use(seed=...)`` before building each network), same order of
# batches (``fit``'s seed), same number of epochs; only the augmentation differs.

# %%
if __name__ == "__main__":
    results, nets = {}, {}
    for name, augment in (("plain", None), ("augmented", augmentation_pipeline(seed=SEED))):
        nn.use(seed=SEED)
        net = nets[name] = small_cnn()
        start = time.perf_counter()
        results[name] = accuracy_curves(net, (x_train, y_train), (x_test, y_test), EPOCHS,
                                        Adam(1e-3), augment=augment, seed=SEED)
        seconds = time.perf_counter() - start
        curves = results[name]
        best = int(np.argmax(curves["test"]))
        gap = curves["train"][-1] - curves["test"][-1]
        print(f"{name:>9}: after {EPOCHS} epochs, training accuracy "
              f"{100 * curves['train'][-1]:5.1f} %, test {100 * curves['test'][-1]:5.1f} % "
              f"(gap {100 * gap:4.1f} points; best test {100 * curves['test'][best]:.1f} % "
              f"at epoch {best + 1}), {seconds:.0f} s")

# %% [markdown]
# Without augmentation the training accuracy reaches 100 % within a few epochs: the network
# has learnt its 1 000 images by heart. With it, the training accuracy grows more slowly and
# the gap to the test accuracy is smaller. The dotted line is what ``fit`` reports for the
# augmented run: the accuracy on the augmented batches, lower still.
#
# The test accuracy itself barely moves (within a point or so, either way, with other seeds
# too): Fashion-MNIST's test images are as tidy as its training images — centred, upright,
# the shoes all pointing left, on a black background —, so the variations the augmentation
# teaches never show up in this test set.

# %%
if __name__ == "__main__":
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, EPOCHS + 1)
    for name, curves in results.items():
        line, = ax.plot(epochs, curves["train"], "--", label=f"{name}, training (clean images)")
        ax.plot(epochs, curves["test"], color=line.get_color(), label=f"{name}, test")
    ax.plot(epochs, results["augmented"]["fit_train"], ":", color=line.get_color(),
            label="augmented, training (as fit reports it)")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0.5, 1.01),
           title=f"small CNN, {len(x_train)} training images")
    ax.legend(fontsize=8)
    show(fig, "curves")

# %% [markdown]
# ## What augmentation buys: invariance
#
# Change the test images in the ways the augmentation changed the training images — mirror
# them, shift them by two pixels, turn them by 10 degrees, zoom out, darken them — and
# measure both networks again. The network trained on plain images has learnt, for
# instance, that a shoe points left and sits in the middle: mirrored or shifted by two
# pixels, much of the test set defeats it. The augmented one has learnt shoes, and loses
# little. (Darkening barely matters to either.) Whether such invariance is worth its price
# depends on the data the network will meet: a telescope image can arrive rotated or
# shifted, a Fashion-MNIST test image never does.

# %%
if __name__ == "__main__":
    import albumentations as A

    def transformed(transform):
        """The test images through one fixed transform (applied to every image)."""
        return Augment(A.Compose([transform], seed=SEED))(x_test, y_test)[0]

    test_sets = {
        "as is": x_test,
        "mirrored": x_test[..., ::-1].copy(),
        "shifted 2 px": transformed(A.Affine(translate_px={"x": (2, 2), "y": (2, 2)}, p=1)),
        "rotated 10°": transformed(A.Affine(rotate=(10, 10), p=1)),
        "zoomed out 0.9": transformed(A.Affine(scale=(0.9, 0.9), p=1)),
        "darker (gamma 1.25)": transformed(A.RandomGamma(gamma_limit=(125, 125), p=1)),
    }
    robustness = {name: {test: nets[name].evaluate(x, y_test)["accuracy"]
                         for test, x in test_sets.items()} for name in nets}
    print(f"{'test images':<20}" + "".join(f"{name:>11}" for name in robustness))
    for test in test_sets:
        print(f"{test:<20}" + "".join(f"{100 * robustness[name][test]:9.1f} %"
                                      for name in robustness))

    fig, ax = plt.subplots(figsize=(8, 3.5))
    positions = np.arange(len(test_sets))
    for k, (name, accuracies) in enumerate(robustness.items()):
        ax.bar(positions + 0.4 * (k - 0.5), list(accuracies.values()), width=0.4, label=name)
    ax.set(xticks=positions, ylabel="test accuracy", ylim=(0, 1))
    ax.set_xticklabels([name.replace(" (", "\n(") for name in test_sets], fontsize=8)
    ax.legend(fontsize=8)
    show(fig, "invariance")
