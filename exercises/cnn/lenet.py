# %% [markdown]
# # LeNet on Fashion-MNIST (and MNIST)
#
# The course's convolutional network, a LeNet, on real images: Fashion-MNIST, 70 000
# grey-level 28x28 pictures of ten kinds of clothing (60 000 to train, 10 000 to test), and
# the handwritten digits of MNIST when they can be downloaded. The layers, as on the slides:
#
#     input 1x28x28
#     conv 5x5, 6 filters, padding 2   -> 6x28x28    leaky ReLU(0.1)
#     max-pool 2x2                     -> 6x14x14
#     conv 5x5, 16 filters             -> 16x10x10   leaky ReLU(0.1)
#     max-pool 2x2                     -> 16x5x5
#     conv 3x3, 48 filters             -> 48x3x3     leaky ReLU(0.1)
#     flatten                          -> 432
#     dense 1024, leaky ReLU(0.1), dropout 0.5
#     dense 256,  leaky ReLU(0.1), dropout 0.2
#     dense 10, softmax
#
# A convolution without padding shrinks the image by ``kernel - 1`` pixels; a max-pool of
# 2x2 halves it. The softmax is not a layer here: ``SoftmaxCrossEntropy`` applies it inside
# the loss, where its gradient with the cross-entropy is simply ``p - t``. Almost all the
# weights (706 000 of 718 000) are in the two large dense layers, which is why they are
# followed by dropout; the convolutions hold 1.3 % of the weights but do 37 % of the
# multiplications, because each filter weight is used at every position of the image.
#
# You write three functions:
#
# - ``lenet``: the network above, with ``nn.layers``;
# - ``random_flips``: data augmentation. A coat mirrored left-right is still a coat, so each
#   training batch is shown with a random half of its images mirrored: the network sees
#   twice as many different pictures and overfits less;
# - ``predict_with_flips``: the same idea at test time. The network gives class
#   probabilities for an image and for its mirror image; their average is a better
#   estimate than either (two slightly different looks at the same garment, whose errors
#   partly cancel), for the price of two forward passes.
#
# The rest is the experiment: inputs standardised with the training set's mean and standard
# deviation, Adam with a learning rate that decreases linearly, the test accuracy, the
# course's confusion matrix, learning curves, and the speed in images per second.

# %%
import numpy as np

from nn import Network
from nn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D
from nn.losses import SoftmaxCrossEntropy


def lenet(n_classes=10):
    """The course's LeNet for 1x28x28 images, ``n_classes`` logits out.

    Returns
    -------
    nn.Network: the layers of the table above, in its order (``Conv2D``, ``LeakyReLU``,
    ``MaxPool2D``, ``Flatten``, ``Dense``, ``Dropout`` from ``nn.layers``; the last Dense
    gives ``n_classes`` outputs), with the loss ``SoftmaxCrossEntropy()``. ``net.summary((1,
    28, 28))`` should then show the shapes of the table and 717,894 parameters.
    """
    raise NotImplementedError("list the layers of the table (work out the inputs of the first Dense from the shape after the third conv) and return Network(layers, SoftmaxCrossEntropy())")
    return net


def random_flips(x, rng):
    """Mirror each image left-right with probability 1/2 (a new array; ``x`` is unchanged).

    Parameters
    ----------
    x : (N, C, H, W) images
    rng : numpy.random.Generator, one draw per image

    Returns
    -------
    (N, C, H, W): image ``n`` is ``x[n]`` or ``x[n, :, :, ::-1]``.
    """
    raise NotImplementedError("draw N booleans with rng.random(N) < 0.5, copy x and reverse the last axis of the chosen images")
    return out


def predict_with_flips(net, x, batch_size=256):
    """Class probabilities of the images ``x`` averaged with those of their mirror images.

    Parameters
    ----------
    net : nn.Network returning logits ``z`` (the softmax is in its loss)
    x : (N, C, H, W) images
    batch_size : int, passed to ``net.predict``

    Returns
    -------
    (N, K) array: ``(softmax(z(x)) + softmax(z(x[:, :, :, ::-1]))) / 2``, each row sums to 1.
    The softmax of a row is ``exp(z_k - max z) / sum_l exp(z_l - max z)``.
    """
    raise NotImplementedError("softmax of net.predict(x) and of net.predict on the images reversed along the last axis, averaged")
    return p


def images_per_second(f, n_images, repeat=1):
    """Time ``f()``, which processes ``n_images`` images, and return images per second
    (the best of ``repeat`` runs, the least disturbed by other programs)."""
    import time

    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def train_lenet(x, y, valid, epochs, batch_size=128, lr=2e-3, flips=True, seed=0,
                progress=True):
    """A new :func:`lenet` trained with Adam (learning rate from ``lr`` down to ``lr / 20``,
    linearly) on standardised images, each batch randomly flipped when ``flips``. Returns the
    network and the history of :meth:`nn.Network.fit` (with ``"seconds"``, the time of the
    whole training, the evaluation of ``valid`` after each epoch included)."""
    import time

    from nn.optim import Adam, LinearDecayLR

    net = lenet(n_classes=int(y.max()) + 1)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    history = net.fit(x, y, epochs=epochs, batch_size=batch_size,
                      optimizer=Adam(LinearDecayLR(lr, lr / 20, epochs)), valid=valid,
                      seed=seed, augment=(lambda xb, yb: (random_flips(xb, rng), yb)) if flips
                      else None, progress=progress)
    history["seconds"] = time.perf_counter() - start
    return net, history


# %% [markdown]
# ## The data
#
# ``load_fashion_mnist`` finds the whole set when it is installed (Debian's
# ``dataset-fashion-mnist`` package) or downloadable, and otherwise falls back, with a
# warning, on the 2 000 + 1 000 images bundled with nn (the accuracy is then much lower).
# The pixels, in [0, 1], are standardised with one mean and one standard deviation, both
# measured on the training images only.
#
# The network trains on all 60 000 training images, and the test set doubles as the
# validation set of the learning curves: it is watched, epoch by epoch, but nothing is
# chosen from it here. To choose anything from such curves (the number of epochs, a
# learning rate), keep a separate validation set out of the training images
# (``nn.data.split_indices``), or the test accuracy stops being an honest estimate.

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import models_dir, show
    from nn.data import FASHION_MNIST_CLASSES, Standardize, load_fashion_mnist

    SEED = 0
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    norm = Standardize(axis=None).fit(x_train)
    x_train, x_test = norm.transform(x_train), norm.transform(x_test)
    print(f"{len(y_train)} training and {len(y_test)} test images; pixel mean "
          f"{norm.shift.item():.3f}, standard deviation {norm.scale.item():.3f}")

    fig, axes = plt.subplots(2, 10, figsize=(12, 3))
    for c, column in enumerate(axes.T):
        for ax, index in zip(column, np.flatnonzero(y_test == c)[:2]):
            ax.imshow(x_test[index, 0], cmap="gray")
            ax.axis("off")
        column[0].set_title(FASHION_MNIST_CLASSES[c], fontsize=9)
    show(fig, "examples")

    net = lenet()
    print(net.summary((1, 28, 28)))

# %% [markdown]
# ## Training
#
# Adam, batches of 128, the learning rate going down linearly from 2e-3 towards 1e-4: large
# steps while far from a minimum, small ones at the end to settle into it. The test loss and
# accuracy are measured after every epoch, with dropout off. The training curves are
# measured with dropout on and on flipped images, so they sit below the test curves at
# first; when the training accuracy goes on rising and the test accuracy no longer does, the
# network has started to learn its training images by heart.
#
# The training speed is measured apart, on one epoch of 10 240 images of a fresh network,
# without the evaluations.

# %%
if __name__ == "__main__":
    EPOCHS = 22
    net, history = train_lenet(x_train, y_train, (x_test, y_test), EPOCHS, seed=SEED)
    print(f"training: {history['seconds']:.0f} s for {EPOCHS} epochs, test evaluations included")
    n_speed = min(10240, len(y_train))
    speed = images_per_second(lambda: lenet().fit(x_train[:n_speed], y_train[:n_speed],
                                                  batch_size=128, progress=False), n_speed)
    print(f"training speed: {speed:.0f} images/s (forward, backward and update, batches of 128)")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, EPOCHS + 1)
    for key, label in (("train", "training (dropout on, flips)"), ("valid", "test")):
        axes[0].plot(epochs, history[f"{key}_loss"], label=label)
        axes[1].plot(epochs, 100 * np.array(history[f"{key}_accuracy"]), label=label)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    axes[1].legend()
    show(fig, "learning_curves")

# %% [markdown]
# ## Test accuracy and confusion matrix
#
# Rows are the true classes, columns the predictions. The hard classes are the tops: shirts,
# T-shirts, pullovers and coats are confused with each other far more than with trousers,
# bags or shoes. Then the same network, its probabilities averaged over each test image and
# its mirror image (``predict_with_flips``).

# %%
if __name__ == "__main__":
    from nn.metrics import confusion_matrix, print_confusion

    result = net.evaluate(x_test, y_test)
    print(f"test accuracy: {100 * result['accuracy']:.2f} %  (loss {result['loss']:.3f})")
    print_confusion(result["confusion"], FASHION_MNIST_CLASSES, title="\nFashion-MNIST, test set")
    p_flips = predict_with_flips(net, x_test)
    cm_flips = confusion_matrix(y_test, p_flips, 10)
    print(f"\ntest accuracy with flips at test time: {100 * np.trace(cm_flips) / len(y_test):.2f} %")
    print_confusion(cm_flips, FASHION_MNIST_CLASSES, title="\nFashion-MNIST, test set, with flips")
    speed = images_per_second(lambda: net.predict(x_test, batch_size=500), len(x_test), repeat=3)
    print(f"\ninference: {speed:.0f} images/s (batches of 500, dropout off, no gradients)")

    path = net.save(models_dir() / "lenet_fashion_mnist.npz")
    norm.save(models_dir() / "lenet_fashion_mnist_standardize.npz")
    print(f"saved the network to {path} and its standardisation beside it")

# %% [markdown]
# ## MNIST
#
# The same network, from scratch, on handwritten digits. MNIST is easier than Fashion-MNIST:
# a LeNet reaches about 99 %. Mirrored digits are not digits, so no flips here (a 2 mirrored
# is no 2, and it would teach the network that it is one); the network is trained on the
# images as they are, for fewer epochs.

# %%
if __name__ == "__main__":
    from nn.data import DownloadError, MNIST_CLASSES, load_mnist

    try:
        xm, ym = load_mnist("train")
        xm_test, ym_test = load_mnist("test")
    except DownloadError as exc:
        print(f"MNIST skipped: it could not be downloaded ({exc})")
    else:
        mnist_norm = Standardize(axis=None).fit(xm)
        MNIST_EPOCHS = 12
        mnist_net, mnist_history = train_lenet(mnist_norm.transform(xm), ym, None, MNIST_EPOCHS,
                                               flips=False, seed=SEED)
        result = mnist_net.evaluate(mnist_norm.transform(xm_test), ym_test)
        print(f"MNIST test accuracy: {100 * result['accuracy']:.2f} % after {MNIST_EPOCHS} "
              f"epochs ({mnist_history['seconds']:.0f} s)")
        print_confusion(result["confusion"], MNIST_CLASSES, title="\nMNIST, test set")
