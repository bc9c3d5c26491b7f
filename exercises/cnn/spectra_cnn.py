# %% [markdown]
# # A 1D CNN on stellar spectra, against the MLP of Course I
#
# **What you will learn.** How a convolution works along one axis (a spectrum is a 1D
# image); how strides shrink a long input and widen what each neuron sees; why a CNN's
# inputs are normalised per channel and not per bin; and, as an open task, how to design
# and train a 1D CNN that beats the MLP of Course I on the same split.
#
# **Estimated time:** 2 h 30 (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt`), "1D CNN for spectra" and its
# practical work ("Using the stellar spectra dataset from the Perceptron and MLP parts of
# the course, build a 1D CNN that performs the classification ... you might need to use
# larger filters and to reduce the convoluted dimensionality more aggressively"); the
# master course (`004_3d9df880d40eb3ff.txt`), "Example: The Spectra dataset"; the lecture
# `003_34b0db9ed1061ff1.txt`, "1-D convolution" and "Options: strides".
#
# A spectrum is a one-dimensional image: ``(C, L) = (1, 3753)``, one channel of flux along
# the wavelength axis. What tells the spectral types apart is mostly *local*: absorption
# lines a few angstrom wide (the Balmer series, Ca II H and K, He I, the TiO band heads),
# each at its own wavelength but moved a little by the star's Doppler shift. A 1D
# convolution slides the same small filter along the spectrum, so a filter that has learnt a
# line shape finds it wherever it sits; and it needs only ``kernel x channels`` weights, not
# one weight per flux bin as a dense layer does.
#
# **Output length.** A convolution with kernel ``k``, stride ``s`` and padding ``p`` puts its
# window at ``0, s, 2s, ...`` on the input padded to ``L + 2p``, as long as the whole window
# fits. Derive the number of positions (you did it for images in the im2col practical).
#
# **The course's network.** Three convolutions of kernel 8, stride 4 and padding 2 shrink
# the spectrum about fourfold each (3753 bins become 938, 234, then 58 positions) while the
# number of filters doubles from 8 to 16 to 32, each followed by a ReLU. The 32 maps of 58
# values are then flattened and classified by two dense hidden layers of 256 ReLU neurons,
# each followed by dropout 0.4, and an output of one logit per type (7), the softmax being
# in the loss. It has **548,223 parameters**, of which the three convolutions hold 5,240
# (under 1 %): almost all are in the first dense layer. The stride widens what one neuron
# sees: a neuron of the first layer sees 8 bins (8 angstrom), of the second
# ``8 + 7·4 = 36``, of the third ``36 + 7·16 = 148`` angstrom, with neighbouring neurons 64
# angstrom apart — wide enough to take in a line and its continuum, or a whole TiO band
# head. The layers followed by a ReLU get He's initialisation (``init="he"``).
#
# **Preparing spectra.** As in Course I, each spectrum is first divided by its own mean flux
# (the star's distance says nothing about its type). Then the inputs are *standardised*,
# ``(x - mean) / std``, with statistics taken on the **training** spectra only and applied
# unchanged to the test spectra. For a CNN, one mean and one standard deviation **per
# channel**, over all spectra and all wavelengths — here a single channel, so two numbers —,
# as images are normalised per colour channel and not per pixel. A convolution applies the
# same filter at every wavelength; it needs a line to look the same wherever it is. Course
# I's per-bin normalisation (one mean and one scale for each of the 3753 bins) would give
# every bin its own units: the same absorption line would be deep in one place and shallow
# in another, and bins that barely vary (noise only) would be blown up to the size of real
# features. The experiment compares the two. Last, a convolution wants channels:
# ``(N, L)`` becomes ``(N, 1, L)``.
#
# **Your own CNN** (the slides' practical, graded by outcome): ``train_to_beat_the_mlp``
# designs *and trains* a 1D CNN of your choice on the prepared training spectra. The test
# trains it with two seeds and the MLP of Course I (3753 inputs, 16 sigmoid neurons, 7
# sigmoid outputs, quadratic error, plain gradient descent, 40 epochs) with three, on the
# same split of the synthetic spectra, and asks your mean test accuracy to beat the MLP's
# mean by at least 2 points. Keep it quick: a few seconds of training per seed on a laptop
# (the slides' hint, "larger filters and reduce the dimensionality more aggressively", is
# also the way to speed).
#
# You write ``conv_output_length``, ``prepare_for_cnn``, ``spectra_cnn`` and
# ``train_to_beat_the_mlp``. The experiment then trains the CNNs and the MLP on the same
# split and compares accuracy, recall of each type, size and time. (The slides' spectra
# are real Kitt Peak spectra; offline, nn generates a synthetic stand-in with the same
# shape and classes.)

# %%
import numpy as np

import nn
from nn.layers import Conv1D, Dense, Dropout, Flatten, ReLU, Sigmoid
from nn.losses import MSE, SoftmaxCrossEntropy

KERNEL, STRIDE, PADDING = 8, 4, 2
FILTERS = (8, 16, 32)


def conv_output_length(length, kernel_size, stride=1, padding=0):
    """Number of positions of a 1D convolution (or pooling) window.

    Difficulty ★. The window starts at ``0, stride, 2 stride, ...`` on the input padded
    with ``padding`` zeros on each side, and must fit inside it.

    Parameters
    ----------
    length, kernel_size, stride, padding : int

    Returns
    -------
    int, e.g. 938 for ``(3753, 8, 4, 2)``
    """
    raise NotImplementedError("★ count the starting positions that keep the whole window inside the padded input")
    return out


def prepare_for_cnn(x_train, x_test):
    """Spectra ``(N, L)`` ready for a 1D CNN: ``(N, 1, L)`` float32.

    Difficulty ★★.

    1. each spectrum divided by its own mean flux (removes the star's brightness);
    2. standardised, ``(x - mean) / std``, with ONE mean and ONE standard deviation: those of
       all the flux values of the **training** spectra (after step 1), applied unchanged to
       the test spectra (a zero spread is replaced by 1);
    3. a channel axis: ``(N, L) -> (N, 1, L)``.

    Parameters
    ----------
    x_train : (N_train, L) flux
    x_test : (N_test, L) flux

    Returns
    -------
    x_train, x_test : (N_train, 1, L) and (N_test, 1, L) float32
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    raise NotImplementedError("★★ each spectrum over its own mean flux, then the two statistics of all the training values, applied to both sets (a spread of zero replaced by one), and a channel axis in float32")
    return x_train, x_test


def spectra_cnn(n_bins=3753, n_classes=7):
    """The course's 1D CNN (see "The course's network" above) for spectra ``(N, 1, n_bins)``.

    Difficulty ★★. The length after each convolution depends on ``n_bins``: compute it
    with :func:`conv_output_length`.

    Returns
    -------
    nn.Network taking ``(N, 1, n_bins)`` to ``(N, n_classes)`` logits, with the loss
    ``SoftmaxCrossEntropy()``; 548,223 parameters for 3753 bins and 7 classes; dropout active
    only in training.
    """
    raise NotImplementedError("★★ the three convolutions with their ReLUs, following the length of the spectrum through them, then the flattening, the two dense hidden layers with their ReLUs and dropouts, and the output layer")
    return net


def train_to_beat_the_mlp(x_train, y_train, seed=0):
    """A 1D CNN of your own design, trained on the prepared spectra: it must beat the MLP of
    Course I on the same split (see "Your own CNN" above).

    Difficulty ★★★ (an exploration, graded by what it reaches).

    Parameters
    ----------
    x_train : (N, 1, L) float32 spectra from :func:`prepare_for_cnn`
    y_train : (N,) int class ids (7 types)
    seed : int, for the weights (``nn.use(seed=...)`` before building) and the batches

    Returns
    -------
    nn.Network, trained, taking ``(N, 1, L)`` to ``(N, 7)`` logits.
    """
    raise NotImplementedError("★★★ your architecture and your training: try larger filters and larger strides early, fewer dense weights, dropout, the learning rate and the number of epochs, and watch both the test accuracy and the time")
    return net


def spectra_mlp(n_bins=3753, n_classes=7, n_hidden=16):
    """The MLP of Course I from ``nn`` layers: sigmoid hidden and output neurons, trained on
    the quadratic error ``1/2 sum_k (y_k - t_k)^2`` (``MSE``; integer targets become one-hot
    rows). It takes flat spectra ``(N, n_bins)``."""
    return nn.Network([Dense(n_bins, n_hidden), Sigmoid(), Dense(n_hidden, n_classes), Sigmoid()],
                      MSE())


def split_spectra(x, y, seed=0, test=0.3):
    """Stratified train/test split, as in Course I: ``test`` of every type held out.

    Returns ``x_train, y_train, x_test, y_test`` (the flux untouched).
    """
    from nn.data import train_valid_test_split

    parts = train_valid_test_split(x, y, valid=0.0, test=test, seed=seed, stratify=True)
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    return x_train, y_train, x_test, y_test


# %% [markdown]
# ## The data, prepared
#
# ``load_stellar_spectra()`` reads the course's files when they are in the data cache, and
# otherwise warns and generates the synthetic stand-in. The split is the one of Course I:
# 30 % of every type held out, stratified. The figure follows one star through the
# preparation: the raw flux, the flux over its mean, and the CNN's input — the same curve,
# shifted and scaled as a whole, its lines as deep as before relative to each other — and,
# for comparison, the per-bin normalisation of Course I.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import SPECTRAL_TYPES, WAVELENGTHS, Standardize, load_stellar_spectra
    from nn.metrics import print_confusion, recall

    SEED = 0
    x_all, y_all = load_stellar_spectra()
    x_train_raw, y_train, x_test_raw, y_test = split_spectra(x_all, y_all, seed=SEED)
    x_train, x_test = prepare_for_cnn(x_train_raw, x_test_raw)
    print(f"CNN inputs: training {x_train.shape}, test {x_test.shape}, {x_train.dtype}")
    print("training spectra per type:",
          dict(zip(SPECTRAL_TYPES, np.bincount(y_train, minlength=7).tolist())))
    lengths = [x_train.shape[-1]]
    for _ in FILTERS:
        lengths.append(conv_output_length(lengths[-1], KERNEL, STRIDE, PADDING))
    print("lengths through the convolutions:", " -> ".join(map(str, lengths)))

    star = int(np.flatnonzero(y_train == SPECTRAL_TYPES.index("A"))[0])
    flux_train = x_train_raw / x_train_raw.mean(axis=1, keepdims=True)
    per_bin = Standardize(axis=0).fit(flux_train)
    fig, axes = plt.subplots(4, 1, figsize=(9, 7.5), sharex=True)
    raw = x_train_raw[star]
    panels = [(raw, "flux"), (flux_train[star], "flux / mean"),
              (x_train[star, 0], "CNN input"),
              (per_bin.transform(flux_train[star:star + 1])[0], "per bin")]
    for ax, (values, label) in zip(axes, panels):
        ax.plot(WAVELENGTHS, values, lw=0.5)
        ax.set(ylabel=label)
    axes[0].set_title(f"one training spectrum of type {SPECTRAL_TYPES[y_train[star]]}")
    axes[-1].set(xlabel="wavelength (angstrom)")
    show(fig, "preparation")

# %% [markdown]
# ## The two networks
#
# Same split, same inputs (the MLP takes them flat). Each is trained as it is usually
# trained: the CNN with Adam and the cross-entropy of its softmax, the MLP as in Course I,
# plain gradient descent with a learning rate of 1 on the quadratic error, 40 epochs of
# batches of 32.

# %%
if __name__ == "__main__":
    nn.use(seed=SEED)
    cnn = spectra_cnn(x_train.shape[-1], len(SPECTRAL_TYPES))
    print(cnn.summary(x_train.shape[1:]))
    nn.use(seed=SEED)
    mlp = spectra_mlp(x_train.shape[-1], len(SPECTRAL_TYPES))
    print(mlp.summary())

# %%
if __name__ == "__main__":
    from nn.optim import SGD, Adam

    runs = {
        "1D CNN": dict(net=cnn, x=(x_train, x_test), epochs=20, optimizer=Adam(1e-3)),
        "MLP": dict(net=mlp, x=(x_train[:, 0], x_test[:, 0]), epochs=40, optimizer=SGD(1.0)),
    }
    results = {}
    for name, run in runs.items():
        (xs_train, xs_test), net = run["x"], run["net"]
        start = time.perf_counter()
        history = net.fit(xs_train, y_train, epochs=run["epochs"], batch_size=32,
                          optimizer=run["optimizer"], valid=(xs_test, y_test), seed=SEED,
                          progress=False)
        seconds = time.perf_counter() - start
        cm = net.evaluate(xs_test, y_test)["confusion"]
        results[name] = dict(history=history, cm=cm, seconds=seconds, params=net.n_params(),
                             accuracy=np.trace(cm) / cm.sum(), recall=recall(cm))
        print(f"{name}: test accuracy {100 * results[name]['accuracy']:.1f} % after "
              f"{run['epochs']} epochs, {seconds:.1f} s")

# %% [markdown]
# ## Accuracy, recall of each type, size and time
#
# The overall accuracy hides the rare types: there are only 4 O stars in the test set (12
# in all), so read the recall of each type too. On five splits of the stand-in (seeds 0 to
# 4) the CNN reached 75.2–80.3 % and the MLP 70.1–75.8 %, the CNN ahead on every split by
# 2.7 to 8.1 points; the CNN found 0 to 4 of the 4 test O stars (55 % on average), the MLP none.
# Part of that last difference is the loss, not the convolutions: with sigmoid outputs and
# the quadratic error, a type that makes 1 % of the data can be ignored at almost no cost
# (Course I's rebalancing was the cure), while the softmax cross-entropy punishes a
# confident miss hard.

# %%
if __name__ == "__main__":
    for name, result in results.items():
        print_confusion(result["cm"], SPECTRAL_TYPES, title=f"\n{name}, test set")
    print(f"\n{'':>8}  " + "  ".join(f"{t:>4}" for t in SPECTRAL_TYPES)
          + f"  {'accuracy':>9}  {'parameters':>10}  {'time':>7}")
    for name, result in results.items():
        recalls = "  ".join(f"{100 * r:3.0f}%" for r in result["recall"])
        print(f"{name:>8}  {recalls}  {100 * result['accuracy']:7.1f} %  "
              f"{result['params']:>10,}  {result['seconds']:5.1f} s")
    o_star = SPECTRAL_TYPES.index("O")
    print(f"\nrecall of the O stars: CNN {100 * results['1D CNN']['recall'][o_star]:.0f} %, "
          f"MLP {100 * results['MLP']['recall'][o_star]:.0f} % "
          f"({int(results['MLP']['cm'][o_star].sum())} O stars in the test set)")

# %% [markdown]
# The learning curves show the price of the CNN's size: its training accuracy climbs close
# to 100 % while the test accuracy levels off — with some 780 training spectra, half a
# million weights can learn the training set by heart, which is what the dropout layers
# hold back. The MLP, with 60 000 weights, learns more slowly and overfits less.

# %%
if __name__ == "__main__":
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    for name, result in results.items():
        history = result["history"]
        epochs = np.arange(1, len(history["train_accuracy"]) + 1)
        line, = axes[0].plot(epochs, history["train_accuracy"], "--", lw=1,
                             label=f"{name}, training")
        axes[0].plot(epochs, history["valid_accuracy"], color=line.get_color(),
                     label=f"{name}, test")
    axes[0].set(xlabel="epoch", ylabel="accuracy", title="learning curves", ylim=(0, 1.02))
    axes[0].legend(fontsize=8)
    for ax, (name, result) in zip(axes[1:], results.items()):
        cm = result["cm"]
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(cm)):
            for j in range(len(cm)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
        ticks = np.arange(len(SPECTRAL_TYPES))
        ax.set(xticks=ticks, yticks=ticks, xticklabels=SPECTRAL_TYPES,
               yticklabels=SPECTRAL_TYPES, xlabel="predicted", ylabel="target",
               title=f"{name}: {100 * result['accuracy']:.1f} %")
    fig.tight_layout()
    show(fig, "comparison")

# %% [markdown]
# ## One scale per channel, or one per bin?
#
# The same CNN, same seed, same epochs, on inputs normalised bin by bin as in Course I
# (``nn.data.Standardize(axis=0)``: each bin to mean 0 and standard deviation 1 over the
# training spectra). On five different splits of the stand-in (seeds 0 to 4) the CNN
# reached 75.2–80.3 % (mean 78.4 %) with one mean and one scale, 72.5–77.6 % (mean 75.3 %)
# per bin, lower on every split; the MLP, which has a weight of its own for every bin,
# hardly cares (73.7 % and 74.4 % on average). Here, on one split:

# %%
if __name__ == "__main__":
    flux_test = x_test_raw / x_test_raw.mean(axis=1, keepdims=True)
    bin_train = per_bin.transform(flux_train)[:, None].astype(np.float32)
    bin_test = per_bin.transform(flux_test)[:, None].astype(np.float32)
    nn.use(seed=SEED)
    cnn_per_bin = spectra_cnn(x_train.shape[-1], len(SPECTRAL_TYPES))
    cnn_per_bin.fit(bin_train, y_train, epochs=runs["1D CNN"]["epochs"], batch_size=32,
                    optimizer=Adam(1e-3), seed=SEED, progress=False)
    per_bin_accuracy = cnn_per_bin.evaluate(bin_test, y_test)["accuracy"]
    print(f"1D CNN, test accuracy: {100 * results['1D CNN']['accuracy']:.1f} % with one mean "
          f"and one scale, {100 * per_bin_accuracy:.1f} % with one per bin")

# %% [markdown]
# ## Your CNN against the MLP
#
# ``train_to_beat_the_mlp`` with three seeds, against the MLP of Course I with three seeds,
# on the same split: the spread between seeds is part of the answer (with 335 test
# spectra, one spectrum is 0.3 points, and a network's initial weights alone move its
# accuracy by several points).

# %%
if __name__ == "__main__":
    scores = {"your CNN": [], "MLP": []}
    seconds = {"your CNN": 0.0, "MLP": 0.0}
    for seed in (0, 1, 2):
        start = time.perf_counter()
        yours = train_to_beat_the_mlp(x_train, y_train, seed=seed)
        seconds["your CNN"] += time.perf_counter() - start
        scores["your CNN"].append(yours.evaluate(x_test, y_test)["accuracy"])
        start = time.perf_counter()
        nn.use(seed=seed)
        mlp_seed = spectra_mlp(x_train.shape[-1], len(SPECTRAL_TYPES))
        mlp_seed.fit(x_train[:, 0], y_train, epochs=40, batch_size=32, optimizer=SGD(1.0),
                     seed=seed, progress=False)
        seconds["MLP"] += time.perf_counter() - start
        scores["MLP"].append(mlp_seed.evaluate(x_test[:, 0], y_test)["accuracy"])
    for name, values in scores.items():
        print(f"{name:>9}: test accuracy {' '.join(f'{100 * v:.1f} %' for v in values)} "
              f"(mean {100 * np.mean(values):.1f} %), {seconds[name] / 3:.1f} s per training")
    print(f"your CNN has {yours.n_params():,} parameters, the course's CNN {cnn.n_params():,}")
