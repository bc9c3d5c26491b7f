# %% [markdown]
# # Exam: recognise the cultivar of a wine with your MLP
#
# **What you will show.** That you can prepare a new table for your network, choose its
# size and its training on a validation set (never on the test set), and report an honest
# confusion matrix of data the network has never seen.
#
# **Estimated time:** 1 h 30 (★ a few minutes, ★★ the choices, up to an hour).
#
# Thirteen chemical measures of 178 Italian wines from three cultivars (Forina et al.,
# 1988). The course's exam split gives 100 wines to train on and 78 to test on:
# ``nn.data.load_wine()`` returns it.
#
# Use the network you wrote in ``mlp.py`` (its ``train``, ``evaluate``, ``study``...). You
# write three functions, ``prepare_wine``, ``choose_settings`` and ``train_wine``:
#
# 1. prepare the data: the course's normalisation fitted on the **training** wines only and
#    applied unchanged to the test wines (slide "Normalization"), one-hot targets;
# 2. choose the network and the training (hidden neurons, learning rate, epochs, batch
#    size) on a **validation** part carved from the 100 training wines (slide "Monitoring
#    overtraining": training set, validation set, test set); the error curves of the
#    training and validation parts tell you how many epochs are enough;
# 3. train on the training wines with your choices and report, once, the confusion matrix
#    of the 78 test wines.
#
# The test set is for the final measure only: **never tune on it**. ``python -m nn check
# wine`` follows the same rule: it grades your functions on the training wines alone (a
# validation split of them) and never shows a test-set accuracy.

# %%
import numpy as np

from nn.data import train_valid_test_split

from mlp import (class_ids, fit_normalisation, normalise, predict, study,  # noqa: F401
                 targets, train)


def prepare_wine(wine):
    """Normalised inputs and one-hot targets of the exam split. ★

    Parameters
    ----------
    wine : dict ``{"train": (x, y), "test": (x, y)}`` as ``nn.data.load_wine()`` returns it

    Returns
    -------
    x_train (N_train, 13), t_train (N_train, 3), x_test (N_test, 13), t_test (N_test, 3)
        Inputs normalised with the statistics of the **training** wines only; targets
        one-hot, one column per cultivar.
    """
    (x_train, y_train), (x_test, y_test) = wine["train"], wine["test"]
    raise NotImplementedError("★ the normalisation statistics of the training wines, applied to both parts; the class ids of both parts as network targets (your mlp.py has what you need)")
    return x_train, t_train, x_test, t_test


def choose_settings(x_train, t_train, seed=0):
    """Your choice of network and training, made on the training wines alone. ★★ (exploration)

    Carve a validation part from the (normalised) training wines, compare a few candidate
    settings on it and return the best. Graded by its outcome: a network trained with your
    settings on other training wines must recognise the wines held out from them.

    Parameters
    ----------
    x_train : (N, 13) normalised inputs, t_train : (N, 3) one-hot targets
    seed : int, seeds the split and the trainings

    Returns
    -------
    dict of keyword arguments of your ``train`` (e.g. the hidden size, the learning rate, the
    number of epochs, the batch size), without ``seed``
    """
    raise NotImplementedError("★★ a stratified validation part of the training wines; a few candidate settings compared on it (your study, or your own loop); the best one as a dict of train's keyword arguments")
    return settings


def train_wine(x_train, t_train, seed=0):
    """Train your MLP on the training wines; returns the weights ``w1, w2`` and the history. ★

    With the settings you chose on a validation part (write them here, as the values
    :func:`choose_settings` found, so that this training does not repeat the search).
    ``seed`` must seed everything random, so that the same call gives the same network.
    """
    raise NotImplementedError("★ one call of your training with the settings you chose")
    return w1, w2, history


# %% [markdown]
# ## Choosing on a validation part
#
# ``choose_settings`` on the training wines; then the error curves of the chosen network on a
# validation quarter of them, to check the number of epochs. The test wines are not used.
# With 26 validation wines, one wine is 4 points: settings often tie, and the smaller
# network is the safer choice.

# %%
if __name__ == "__main__":
    from nn.course import show
    from nn.data import WINE_CLASSES, load_wine
    from nn.metrics import confusion_matrix, print_confusion

    from mlp import plot_errors

    wine = load_wine()
    x_train, t_train, x_test, t_test = prepare_wine(wine)
    settings = choose_settings(x_train, t_train, seed=0)
    print("chosen on the validation part:", settings)
    parts = train_valid_test_split(*wine["train"], valid=0.0, test=0.25, seed=0, stratify=True)
    x_fit, t_fit, x_valid, t_valid = prepare_wine({"train": parts["train"],
                                                   "test": parts["test"]})
    _, _, history = train(x_fit, t_fit, seed=0, test=(x_valid, t_valid), **settings)
    print(f"validation accuracy with these settings: {100 * history['test_accuracy'][-1]:.1f} %")
    show(plot_errors(history, "Wine: training and validation ('test') error"), "errors")

# %% [markdown]
# ## The final measure, once

# %%
if __name__ == "__main__":
    w1, w2, history = train_wine(x_train, t_train, seed=0)
    y_test = t_test.argmax(axis=1)
    cm = confusion_matrix(y_test, predict(w1, w2, x_test), 3)
    print_confusion(cm, WINE_CLASSES, title=f"Wine, {len(y_test)} test wines")
    print(f"Wine test accuracy: {100 * np.trace(cm) / cm.sum():5.1f} %")
