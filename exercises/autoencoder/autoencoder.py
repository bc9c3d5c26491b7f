# %% [markdown]
# # A convolutional autoencoder with a 2-D latent space
#
# **What you will learn**: to design an encoder and a decoder from shapes alone (strided
# and transposed convolutions), to train a network on its own input (self-supervised
# learning), to measure a reconstruction, to read a latent space and to generate images
# from it, and to make its classes separate. **Estimated time**: 2 h 30 (about 1 h for the
# two halves, 30 min for the measures and the grid, 1 h for the exploration).
#
# Slides: `002_89640e05264e4932.txt`, "Self-supervised training with Auto-Encoders",
# "Transposed convolution for upsampling", "Visualizing the latent space", "Generated
# digits from an MNIST AutoEncoder" and its practical work, with the advanced question
# "How could you reduce class confusion in the latent space?".
#
# *Where nn departs from the slides*: Fashion-MNIST (clothes) replaces MNIST (digits), and
# falls back on the 3 000 images bundled with nn when offline; Adam replaces SGD with
# momentum; nn's transposed convolution has PyTorch's parameters (kernel, stride, padding)
# where CIANNA adds the internal padding by hand.
#
# An autoencoder learns to copy its input through a narrow passage. The **encoder** ``f``
# compresses an image ``x`` into a few numbers ``z = f(x)``, the *latent* code; the
# **decoder** ``g`` rebuilds an image ``x^ = g(z)`` from them. Both are trained together to
# minimise the reconstruction error, with the image itself as the target:
#
#     E = 1/2 sum_pixels (g(f(x)) - x)²        (nn.losses.MSE, per image, mean over a batch)
#
# No label is used: the network must find on its own what distinguishes the images. Here
# the latent code has only **2** values, so that it can be drawn: every image becomes a
# point of a plane.
#
# You write:
#
# - ★★ ``encoder()`` and ★★ ``decoder()``: the two halves, designed by you from the shapes
#   at their ends. The training network is ``Network(encoder_layers + decoder_layers,
#   MSE())``; since it holds the *same layer objects*, ``Network(encoder_layers)`` encodes
#   with the trained weights and ``Network(decoder_layers)`` decodes (``autoencoder()``);
# - ★ ``train_autoencoder(net, x, epochs)``: the training, with your choice of optimiser;
# - ★ ``reconstruction_error(net, x)``: the mean squared error of each image;
# - ★ ``polar_grid(radii, n_angles)``: points of the latent plane on circles, to decode;
# - ★★★ ``separated_autoencoder(x, y, epochs)``, the exploration: an autoencoder whose
#   latent plane mixes the classes less, graded by how well the classes separate.
#
# The experiment trains on Fashion-MNIST, measures the reconstruction error on the test
# set, shows reconstructions, the latent plane coloured by class (which the network never
# saw), images generated from points of the plane that no image was encoded to, and the
# latent plane of your separated autoencoder next to the plain one.

# %%
import numpy as np

from nn import Network
from nn.layers import ConvTranspose2D, Conv2D, Dense, Flatten, LeakyReLU, Sigmoid, Unflatten
from nn.losses import MSE, SoftmaxCrossEntropy
from nn.optim import Adam, LinearDecayLR

LATENT = 2
MAX_PARAMS = 300_000      # per half: small enough to train in minutes on a laptop's CPU


def encoder():
    """The encoder ``f``: ``(N, 1, 28, 28)`` images to ``(N, LATENT)`` latent codes.

    Yours to design (★★), as in the course's starter ("Encoder first, can be a classical CNN
    with compression of the spatial dimension"). The constraints:

    - convolutions that shrink the image: a convolution of stride ``s`` (or a pooling)
      divides the size by about ``s``; with a ``k x k`` kernel and padding ``p`` an image of
      ``H`` pixels gives ``floor((H + 2p - k) / s) + 1`` (go down to 7x7 or so);
    - a nonlinear activation after every hidden layer (the course uses a leaky ReLU of slope
      0.1). A layer followed by a ReLU or leaky ReLU takes ``init="he"``: He's variance,
      ``2 / fan_in``, keeps the scale of the signal through a ReLU, which zeroes half of it;
      the default, Xavier's, is made for sigmoid and tanh;
    - ``Flatten`` and dense layers down to ``LATENT`` values, the last one with **no**
      activation: a latent value may be any real number;
    - at most ``MAX_PARAMS`` parameters (``Network(layers).n_params()``).

    Returns
    -------
    list of nn layers, in order
    """
    raise NotImplementedError("★★ write down the shape after every layer, from 1x28x28 to LATENT values, before writing the layers; a stride of 2 halves a size, and the parameters pile up in the first dense layer")
    return layers


def decoder():
    """The decoder ``g``: ``(N, LATENT)`` codes to ``(N, 1, 28, 28)`` images in (0, 1).

    Yours to design (★★): the encoder's path backwards ("the decoder, that should expand back
    the spatial dimension to the original image size"). The constraints:

    - dense layers from the ``LATENT`` values up to the values of a few small feature maps,
      reshaped into ``(C, H, W)`` maps by ``Unflatten``;
    - transposed convolutions that enlarge them, slide "Transposed convolution for
      upsampling". nn's ``ConvTranspose2D`` follows PyTorch: an input of ``H`` pixels gives
      ``(H - 1) s - 2p + k`` pixels with stride ``s``, padding ``p`` and a ``k x k`` kernel;
      choose them to land exactly on 28x28;
    - nonlinear activations in between (``init="he"`` before a ReLU or leaky ReLU);
    - one channel at the end and an output activation that covers the range of the
      pixels, [0, 1];
    - at most ``MAX_PARAMS`` parameters.

    Returns
    -------
    list of nn layers, in order
    """
    raise NotImplementedError("★★ work backwards from 1x28x28: which kernel, stride and padding double a size by the transposed convolution's rule, and how many doublings lead to 28 from a small map")
    return layers


def autoencoder():
    """The autoencoder and its two halves: ``(net, encode, decode)``.

    ``net = Network(encoder() + decoder(), MSE())`` is trained; ``encode`` and ``decode`` are
    networks made of the *same* layer objects, so they use the weights ``net`` learns.
    """
    enc, dec = encoder(), decoder()
    return Network(enc + dec, MSE()), Network(enc), Network(dec)


def train_autoencoder(net, x, epochs, valid=None, seed=0, progress=True):
    """Train the autoencoder ``net`` on the images ``x``: self-supervised, no labels (★).

    The slides leave the training to you (the starter's learning rate, its decay and the
    momentum are all ``VAL``): choose the optimiser, its learning rate and schedule, and
    the batch size. What is the target of an autoencoder?

    Parameters
    ----------
    net : nn.Network, images to images, loss MSE
    x : (N, 1, H, W) training images, pixels in [0, 1]
    epochs : int
    valid : (M, 1, H, W) images, optional: measure the loss on them after each epoch
    seed : int, the same seed gives the same run
    progress : bool, show the progress bar

    Returns
    -------
    dict, the history ``Network.fit`` returns.

    The test trains a small autoencoder of its own with this function, 3 epochs on the
    2 000 bundled training images: the reconstruction error of the test images must fall
    below 0.055 (the mean image's is 0.087); and 100 epochs on 6 images must nearly learn
    them by heart.
    """
    raise NotImplementedError("★ self-supervised: the slides' autoencoder reconstructs its input, which says what the targets are, for the validation images too; Adam at a few thousandths, decreasing, works well")
    return history


def reconstruction_error(net, x):
    """The mean squared error of each image's reconstruction, per pixel (★).

    Parameters
    ----------
    net : nn.Network mapping images to images of the same shape
    x : (N, C, H, W) images

    Returns
    -------
    (N,) array: for image ``n``, the mean over its ``C*H*W`` pixels of the squared
    difference between its reconstruction by ``net`` and itself. (The MSE loss is
    ``C*H*W / 2`` times this.)
    """
    raise NotImplementedError("★ reconstruct the images with the network, then for each image the mean over its pixels of the squared difference with the original")
    return errors


def polar_grid(radii, n_angles):
    """Points of the plane on circles around the origin, in polar coordinates (★).

    The slides' generated digits come from "a regular sampling in polar coordinates in the
    latent space".

    Parameters
    ----------
    radii : sequence of R radii
    n_angles : number of points on each circle, at angles ``theta_j = 2 pi j / n_angles``,
        ``j = 0 .. n_angles - 1`` (counter-clockwise from the first axis)

    Returns
    -------
    (R * n_angles, 2) array: row ``i * n_angles + j`` is the point at radius ``r_i`` and angle
    ``theta_j`` (one circle after the other), in Cartesian coordinates.
    """
    raise NotImplementedError("★ the n_angles angles, every radius paired with every angle circle by circle, and the two Cartesian coordinates of each pair as columns")
    return points


def latent_knn_accuracy(z, y, k=5):
    """How well the classes separate in the latent space: the share of the codes whose
    ``k`` nearest other codes (Euclidean distance) mostly carry their own label.

    Given, to grade the exploration: 10 % is chance for 10 classes, 100 % means every code
    sits among codes of its own class. ``z`` is ``(N, LATENT)``, ``y`` the ``(N,)`` labels;
    ties between labels go to the smallest label.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    hits = 0
    for start in range(0, len(z), 1000):               # 1000 rows of distances at a time
        rows = np.arange(start, min(start + 1000, len(z)))
        d = ((z[rows, None, :] - z[None, :, :]) ** 2).sum(axis=-1)
        d[np.arange(len(rows)), rows] = np.inf         # a code is not its own neighbour
        neighbours = np.argpartition(d, k, axis=1)[:, :k]
        votes = [np.bincount(y[row], minlength=y.max() + 1).argmax() for row in neighbours]
        hits += int(np.sum(np.array(votes) == y[rows]))
    return hits / len(z)


def separated_autoencoder(x, y, epochs, seed=0, progress=False):
    """Exploration (★★★, graded by what it reaches): an autoencoder whose latent plane mixes
    the classes less.

    The slides' advanced question: "How could you reduce class confusion in the latent
    space?" The plain autoencoder never sees a label, so pullovers, coats and shirts, which
    look alike, share a region of the plane. Here you may use the labels ``y``. One way:
    first train the encoder *as a classifier* (its layers, then a dense layer from the
    latent values to 10 class scores, with a softmax cross-entropy), then use the same,
    trained layer objects as the encoder of an autoencoder and train a decoder on their
    codes (nn will get ``net.load_weights(path, n_layers)``, which loads the first layers of
    a saved network; until then, reuse the layer objects, or copy their ``params``). Keep
    the encoder fixed or let it move, try something else: your choice.

    Parameters
    ----------
    x : (N, 1, 28, 28) training images
    y : (N,) their class ids, 0 to 9
    epochs : int, the training budget (the test gives 5, as to the plain autoencoder it
        compares with); you may use it for each of your training stages
    seed : int, the same seed gives the same run
    progress : bool, show the progress bars

    Returns
    -------
    (net, encode, decode) : trained, as ``autoencoder()`` returns them: ``net`` maps images
    to images, ``encode`` images to ``(N, LATENT)`` codes, ``decode`` codes to images.

    Graded on the 1 000 bundled test images after training on the 2 000 bundled training
    images: ``latent_knn_accuracy`` of the codes at least 10 points above the plain
    autoencoder's (about 55 % there), and still an autoencoder: a reconstruction error
    below 3/4 of the mean image's (0.065).
    """
    raise NotImplementedError("★★★ the labels shape the plane only through what the encoder learns from them; measure each stage with latent_knn_accuracy, and watch what a later training does to the plane")
    return net, encode, decode


# %% [markdown]
# ## The data and the network
#
# Fashion-MNIST, pixels in [0, 1] as they are (the output activation must be able to match
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
# The validation loss is the MSE loss (half the *sum* of the squared errors of an image);
# ``reconstruction_error`` gives the mean per pixel.

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    history = train_autoencoder(net, x_train, EPOCHS, valid=x_test, seed=SEED)
    seconds = time.perf_counter() - start
    print(f"training: {seconds:.0f} s for {EPOCHS} epochs, "
          f"{EPOCHS * len(x_train) / seconds:.0f} images/s")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    ax.plot(epochs, history["train_loss"], label="training")
    if "valid_loss" in history:
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
# sandals and sneakers sit together, apart from the clothes. ``latent_knn_accuracy``
# measures it: how often the 5 nearest codes of a test image mostly carry its label.

# %%
if __name__ == "__main__":
    z = encode.predict(x_test)
    plain_knn = latent_knn_accuracy(z, y_test)
    print(f"5-nearest-neighbour accuracy in the latent plane: {plain_knn:.1%} (chance: 10 %)")
    centre, spread = z.mean(axis=0), z.std(axis=0)
    RADII, N_ANGLES = np.array([0.5, 1.0, 1.5, 2.0]), 12
    grid = centre + polar_grid(RADII, N_ANGLES) * spread     # circles stretched to the spread

    def plot_latent(ax, z, title):
        colours = plt.get_cmap("tab10")
        for c, name in enumerate(FASHION_MNIST_CLASSES):
            points = z[y_test == c]
            ax.scatter(points[:, 0], points[:, 1], s=2, color=colours(c), label=name)
        ax.set(xlabel="z[0]", ylabel="z[1]", title=title)

    fig, ax = plt.subplots(figsize=(8, 7))
    plot_latent(ax, z, "test images in the latent plane")
    ax.scatter(grid[:, 0], grid[:, 1], s=60, marker="+", color="black", label="decoded below")
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

# %% [markdown]
# ## Exploration: less class confusion in the latent plane
#
# Your ``separated_autoencoder``, trained on the same images with a few epochs per stage.
# Compare the two planes, the two neighbour accuracies and the two reconstruction errors:
# what did the separation cost? Which classes still overlap, and why those?

# %%
if __name__ == "__main__":
    start = time.perf_counter()
    sep_net, sep_encode, _ = separated_autoencoder(x_train, y_train, epochs=4, seed=SEED,
                                                   progress=True)
    seconds = time.perf_counter() - start
    sep_z = sep_encode.predict(x_test)
    sep_knn = latent_knn_accuracy(sep_z, y_test)
    sep_error = reconstruction_error(sep_net, x_test).mean()
    print(f"trained in {seconds:.0f} s")
    print(f"5-nearest-neighbour accuracy: plain {plain_knn:.1%}, separated {sep_knn:.1%}")
    print(f"reconstruction error:         plain {errors.mean():.4f}, separated {sep_error:.4f}")

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    plot_latent(axes[0], z, f"plain autoencoder: {plain_knn:.0%} 5-NN accuracy")
    plot_latent(axes[1], sep_z, f"separated: {sep_knn:.0%} 5-NN accuracy")
    legend = axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    for handle in legend.legend_handles:
        handle.set_sizes([30])
    show(fig, "latent_separated")
