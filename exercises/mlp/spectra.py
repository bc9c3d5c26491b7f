# %% [markdown]
# # Stellar spectra: online, full-batch, stochastic and class-rebalanced training
#
# **What you will learn.** How a per-example normalisation (each star's own brightness) and
# the course's per-feature normalisation fit together; how often to update the weights
# (online, full batch, mini-batch) and what it costs in time; how a strongly imbalanced
# training set hides its rare classes, and how rebalancing brings them back; how to read
# the recall of each class.
#
# **Estimated time:** 1 h 30 (★ a few minutes, ★★ up to half an hour).
#
# Slides (`004_3d9df880d40eb3ff.txt`): "Example: The Spectra dataset" (*the dataset is highly
# imbalanced which require rebalancing the training dataset!*), "Normalization" and "How to
# measure classification performance?". The MLP is the one you wrote in ``mlp.py``
# (imported from there: finish that practical first).
#
# The data: 1115 spectra of 3753 flux bins, from 3750 to 7502 angstrom, in the seven
# spectral types O, B, A, F, G, K, M. Without the course's files,
# ``nn.data.load_stellar_spectra`` gives a synthetic stand-in of the same shape and class
# counts (see ``datasets/README.md``); this is where the practical departs from the slides,
# together with the rebalancing below, which draws a new balanced epoch every time instead
# of the course's fixed per-class counts.
#
# Three questions:
#
# 1. **How often to update the weights?** After every example (*online*), once per pass over
#    the whole training set with the averaged gradient (*full batch*), or after each small
#    random batch (*stochastic*, mini-batch gradient descent).
# 2. **What to do with rare classes?** There are 12 O stars among 1115 spectra. A network
#    that never answers "O" loses almost nothing on the training error, so it may never
#    learn them. *Rebalancing* shows it every class equally often.
# 3. **How to read the result?** The overall accuracy hides the rare classes; the *recall*
#    of each class (the fraction of its stars found) shows them.
#
# You write the per-star normalisation, the preparation of the data (split and
# normalisation), the rebalanced order of an epoch, and the recall of each class.

# %%
import numpy as np

from nn.data import train_valid_test_split

from mlp import fit_normalisation, normalise, predict, targets, train


def normalise_flux(x):
    """Each spectrum divided by its own mean flux: ``(N, L)`` -> ``(N, L)``, rows of mean 1. ★

    This removes the distance (the overall brightness) of each star, which is not a property
    of its spectral type; what is left is the shape of the spectrum. Unlike the course's
    normalisation (one scale per *feature*, from the training set), this one is per
    *example*, so it needs no training statistics. Do not modify ``x`` in place.
    """
    raise NotImplementedError("★ one mean flux per spectrum (over its wavelengths), and every bin of that spectrum divided by it")
    return x


def balanced_order(y, rng):
    """Indices for one class-rebalanced epoch: as many examples of every class. ★★

    Each of the ``C`` classes present in ``y`` gets ``len(y) // C`` draws, so an epoch keeps
    its length; a class with fewer examples repeats them (drawn with replacement), a larger
    one contributes a random subset. The whole list is then shuffled.

    Parameters
    ----------
    y : (N,) class ids of the training set
    rng : numpy.random.Generator

    Returns
    -------
    (C * (N // C),) int array of indices into ``y``
    """
    raise NotImplementedError("★★ for each class present, draw its share of the epoch among the indices of its examples (with repetition only when it has too few), then shuffle the whole epoch with the same generator")
    return order


def recall_per_class(cm):
    """Recall of each class from a confusion matrix (rows = targets, columns = predictions). ★

    ``recall_i = cm[i, i] / sum_j cm[i, j]``: the fraction of the examples of class ``i`` that
    were predicted as ``i``. A class without any example gets NaN.
    """
    raise NotImplementedError("★ the examples of each class found, over the examples of that class (its row); NaN for a class whose row is empty")
    return recalls


def prepare_spectra(x, y, seed=0, test=0.3):
    """The data, ready for the MLP: split, per-star normalisation, course normalisation. ★★

    - each spectrum over its mean flux (:func:`normalise_flux`);
    - a stratified split that holds out ``test`` of every class, so that even the 12 O stars
      have a few test examples: use ``nn.data.train_valid_test_split`` with no validation
      part, this ``seed`` and ``stratify=True`` (it returns the parts in a dict);
    - the course's normalisation (your ``fit_normalisation`` and ``normalise`` of
      ``mlp.py``), fitted on the **training** part and applied unchanged to both parts.

    Returns
    -------
    x_train (N_train, L), y_train (N_train,), x_test (N_test, L), y_test (N_test,)
    """
    raise NotImplementedError("★★ the three steps above, in that order (the statistics of the second normalisation come from the training spectra only)")
    return x_train, y_train, x_test, y_test


# %% [markdown]
# ## The data
#
# ``load_stellar_spectra()`` reads the course's files when they are in the data cache, and
# otherwise warns and generates the synthetic stand-in. The split is stratified: 30 % of
# every type is held out for the test.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.data import SPECTRAL_TYPES, WAVELENGTHS, load_stellar_spectra
    from nn.metrics import confusion_matrix, print_confusion

    SEED = 0
    x_all, y_all = load_stellar_spectra()
    x_train, y_train, x_test, y_test = prepare_spectra(x_all, y_all, seed=SEED)
    t_train, t_test = targets(y_train, 7), targets(y_test, 7)
    print(f"{len(y_train)} training and {len(y_test)} test spectra of {x_train.shape[1]} bins")
    print("training spectra per type:",
          dict(zip(SPECTRAL_TYPES, np.bincount(y_train, minlength=7).tolist())))

    fig, ax = plt.subplots(figsize=(8, 4))
    flux = normalise_flux(np.asarray(x_all, dtype=np.float64))
    for k, name in enumerate(SPECTRAL_TYPES):
        ax.plot(WAVELENGTHS, flux[np.flatnonzero(y_all == k)[0]] + 1.5 * k, lw=0.5)
        ax.text(WAVELENGTHS[-1] + 20, 1.5 * k + 1, name)
    ax.set(xlabel="wavelength (angstrom)", ylabel="flux / mean flux (shifted)",
           title="one spectrum of each type")
    show(fig, "examples")

# %% [markdown]
# ## Four ways to train
#
# The same network (3753 inputs, 16 hidden neurons, 7 outputs); what changes is how many
# examples each weight update sees, and which ones. Online training makes one update per
# example (about 780 per epoch), stochastic training one per batch of 32 (25 per epoch), full
# batch a single one per epoch: it needs ten times more epochs to get as far. The learning
# rates differ because a gradient averaged over many examples is smoother and allows a
# longer step. Compare the times too: the stochastic run does the same arithmetic as the
# online one in a few large matrix products instead of many small ones.

# %%
if __name__ == "__main__":
    N_HIDDEN = 16
    runs = {
        "online": dict(batch_size=1, lr=0.05, epochs=40),
        "full batch": dict(batch_size=len(y_train), lr=10.0, epochs=400),
        "stochastic": dict(batch_size=32, lr=1.0, epochs=40),
        "rebalanced": dict(batch_size=32, lr=1.0, epochs=40,
                           sampler=lambda rng: balanced_order(y_train, rng)),
    }
    results = {}
    for name, settings in runs.items():
        start = time.perf_counter()
        w1, w2, history = train(x_train, t_train, n_hidden=N_HIDDEN, seed=SEED,
                                test=(x_test, t_test), **settings)
        cm = confusion_matrix(y_test, predict(w1, w2, x_test), 7)
        results[name] = dict(history=history, cm=cm, accuracy=np.trace(cm) / cm.sum(),
                             recall=recall_per_class(cm))
        print(f"{name:>10}: test accuracy {100 * results[name]['accuracy']:5.1f} % after "
              f"{settings['epochs']} epochs ({time.perf_counter() - start:.1f} s)")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for name, result in results.items():
        epochs = np.arange(1, len(result["history"]["train_error"]) + 1)
        line, = axes[0].plot(epochs, result["history"]["train_error"], label=name)
        axes[1].plot(epochs, result["history"]["test_error"], color=line.get_color(), label=name)
    axes[0].set(title="training error", xlabel="epoch", ylabel="quadratic error per example",
                xscale="log", yscale="log")
    axes[1].set(title="test error", xlabel="epoch", xscale="log")
    axes[1].legend()
    show(fig, "errors")

# %% [markdown]
# ## Recall of each type
#
# The confusion matrices show where the mistakes go: mostly to a neighbouring type, whose
# temperatures overlap. Without rebalancing, the network here never answers O: the 8 O stars
# of the training set weigh about 1 % of its error. Rebalanced, it sees as many O stars as
# K stars, and finds most of them; the price is a few more mistakes among the common types.

# %%
if __name__ == "__main__":
    for name in ("stochastic", "rebalanced"):
        print_confusion(results[name]["cm"], SPECTRAL_TYPES, title=f"\n{name}, test set")
    print("\nrecall per type (test set)")
    print(f"{'':>10}  " + "  ".join(f"{t:>5}" for t in SPECTRAL_TYPES) + "   accuracy")
    for name, result in results.items():
        print(f"{name:>10}  " + "  ".join(f"{100 * r:4.0f}%" for r in result["recall"])
              + f"   {100 * result['accuracy']:5.1f} %")
    rarest = int(np.argmin(np.bincount(y_train, minlength=7)))
    before = results["stochastic"]["recall"][rarest]
    after = results["rebalanced"]["recall"][rarest]
    print(f"\nrecall of the rarest type, {SPECTRAL_TYPES[rarest]}: {100 * before:.0f} % without "
          f"rebalancing, {100 * after:.0f} % with it")
