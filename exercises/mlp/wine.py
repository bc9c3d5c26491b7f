# %% [markdown]
# # Exam: recognise the cultivar of a wine with your MLP
#
# Thirteen chemical measures of 178 Italian wines from three cultivars (Forina et al.,
# 1988). The course's exam split gives 100 wines to train on and 78 to test on:
# ``nn.data.load_wine()`` returns it.
#
# Use the network you wrote in ``mlp.py``: prepare the data (normalisation fitted on the
# training wines only, one-hot targets), choose the network and the training (hidden
# neurons, learning rate, epochs, batch size), then report the confusion matrix of the test
# wines. The test set is for the final measure only: never tune on it. Look at the error
# curves of the training set to choose the number of epochs.

# %%
import numpy as np

from mlp import fit_normalisation, normalise, predict, targets, train  # noqa: F401


def prepare_wine(wine):
    """Normalised inputs and one-hot targets of the exam split.

    Parameters
    ----------
    wine : dict ``{"train": (x, y), "test": (x, y)}`` from ``nn.data.load_wine()``

    Returns
    -------
    x_train (100, 13), t_train (100, 3), x_test (78, 13), t_test (78, 3)
        Inputs normalised with the statistics of the **training** wines; targets one-hot.
    """
    (x_train, y_train), (x_test, y_test) = wine["train"], wine["test"]
    raise NotImplementedError("normalise both parts with x_train's statistics; targets(y, 3)")
    return x_train, t_train, x_test, t_test


def train_wine(x_train, t_train, seed=0):
    """Train your MLP on the training wines; returns the weights ``w1, w2`` and the history.

    The choices (hidden neurons, learning rate, epochs, batch size) are yours; ``seed``
    must seed everything random, so that the same call gives the same network.
    """
    raise NotImplementedError("call train(x_train, t_train, ...) with the settings you chose")
    return w1, w2, history


# %%
if __name__ == "__main__":
    from nn.course import show
    from nn.data import WINE_CLASSES, load_wine
    from nn.metrics import confusion_matrix, print_confusion

    from mlp import plot_errors

    x_train, t_train, x_test, t_test = prepare_wine(load_wine())
    w1, w2, history = train_wine(x_train, t_train, seed=0)
    show(plot_errors(history, "Wine, training set"), "errors")
    y_test = t_test.argmax(axis=1)
    cm = confusion_matrix(y_test, predict(w1, w2, x_test), 3)
    print_confusion(cm, WINE_CLASSES, title=f"Wine, {len(y_test)} test wines")
    print(f"Wine test accuracy: {100 * np.trace(cm) / cm.sum():5.1f} %")
