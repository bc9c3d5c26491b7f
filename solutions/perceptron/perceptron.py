# %% [markdown]
# # The perceptron: OR gate, Iris and Pima with a step neuron written by hand
#
# Rosenblatt's perceptron is one layer of binary neurons. Neuron ``k`` adds up its inputs
# weighted by ``w[:, k]`` and fires (outputs 1) when the sum is positive:
#
#     h_k = sum_i x_i w_ik        a_k = 1 if h_k > 0 else 0
#
# The threshold is learnt like any other weight: every example gets one more input, fixed at
# **-1** (the bias node), whose weight plays the role of the threshold.
#
# Learning is *online*: after each example, every weight moves against the error of its
# neuron,
#
#     w_ik <- w_ik - lr (a_k - t_k) x_i
#
# so a neuron that fired when it should not have (``a - t = 1``) lowers the weights of the
# inputs that made it fire, and the other way round. Weights start small, uniform in
# [-0.01, 0.01], and the examples are visited in a new random order at every epoch.
#
# You write the neuron, the forward pass, the learning rule, the training loop and the
# prediction; the experiments (the OR gate, Iris, the Pima diabetes table) are given. At the
# end the same perceptron is built from the library's layers, ``Dense`` and ``Step``.

# %%
import numpy as np


def add_bias(x):
    """Append the constant bias input -1 to every example.

    Parameters
    ----------
    x : (N, F) array

    Returns
    -------
    (N, F + 1) array, whose last column is -1
    """
    # BEGIN SOLUTION concatenate a column of -1 to the right of x (np.concatenate or np.hstack)
    xb = np.concatenate([x, -np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)
    # END SOLUTION
    return xb


def init_weights(n_inputs, n_outputs, rng):
    """The course's small random start: ``(n_inputs + 1, n_outputs)`` weights, U(-0.01, 0.01).

    The extra row is the weight of the bias input -1.
    """
    return rng.uniform(-0.01, 0.01, size=(n_inputs + 1, n_outputs))


def step(h, threshold=0.0):
    """The perceptron's binary neuron: 1.0 where ``h > threshold``, else 0.0 (same shape)."""
    # BEGIN SOLUTION return 1.0 where h exceeds the threshold and 0.0 elsewhere (a float array)
    a = np.where(h > threshold, 1.0, 0.0)
    # END SOLUTION
    return a


def forward(w, xb):
    """Activations of the perceptron's neurons.

    Parameters
    ----------
    w : (F + 1, K) weights, the last row for the bias input
    xb : (N, F + 1) inputs with the bias column (see :func:`add_bias`)

    Returns
    -------
    (N, K) array of 0.0 and 1.0: ``a = step(xb @ w)``
    """
    # BEGIN SOLUTION weigh the inputs (a matrix product) and pass the sums through step
    a = step(xb @ w)
    # END SOLUTION
    return a


def update(w, xb, t, lr):
    """One step of the perceptron learning rule, for a single example.

    Parameters
    ----------
    w : (F + 1, K) weights
    xb : (F + 1,) one example, with its bias input
    t : (K,) its targets, 0 or 1
    lr : float, the learning rate

    Returns
    -------
    (F + 1, K) updated weights: ``w_ik - lr (a_k - t_k) x_i`` with ``a = step(xb @ w)``
    """
    # BEGIN SOLUTION compute the activations a of this example, then w - lr * outer(xb, a - t)
    a = forward(w, xb[None, :])[0]
    w = w - lr * np.outer(xb, a - t)
    # END SOLUTION
    return w


def train(x, t, lr=0.1, epochs=50, seed=0):
    """Train a perceptron online, visiting the examples in a new random order every epoch.

    When the classes cannot be separated by a plane, the rule never settles: every epoch
    moves the weights again, and the last ones may be poor. So the weights with the best
    training accuracy at the end of an epoch are kept aside ("in the pocket", Gallant 1990)
    and returned; on separable data they are the final, perfect ones.

    Parameters
    ----------
    x : (N, F) inputs (without the bias column)
    t : (N, K) targets, 0 or 1 (one column per neuron)
    lr : float, learning rate
    epochs : int, passes over the training set
    seed : int, seeds the initial weights and the orders

    Returns
    -------
    w : (F + 1, K) the weights with the best training accuracy
    history : list of the training accuracy after each epoch
    """
    rng = np.random.default_rng(seed)
    y = t[:, 0].astype(np.int64) if t.shape[1] == 1 else t.argmax(axis=1)
    xb = add_bias(x)
    w = init_weights(x.shape[1], t.shape[1], rng)
    best_w, best, history = w, -1.0, []
    for _ in range(epochs):
        # BEGIN SOLUTION visit the examples in the order rng.permutation(N) and apply update to each
        for i in rng.permutation(len(xb)):
            w = update(w, xb[i], t[i], lr)
        # END SOLUTION
        history.append(accuracy(w, x, y))
        if history[-1] > best:
            best_w, best = w.copy(), history[-1]
    return best_w, history


def predict(w, x):
    """Predicted class ids ``(N,)`` for raw inputs ``x (N, F)``.

    With one neuron (K = 1) the class is its output, 0 or 1. With several (one per class),
    the class is the neuron with the largest weighted sum ``h``: several neurons may fire at
    once, or none, and the sum says which one is the most convinced.
    """
    # BEGIN SOLUTION add the bias; for one neuron return its step output as int, else argmax of h
    h = add_bias(x) @ w
    classes = (h[:, 0] > 0).astype(np.int64) if w.shape[1] == 1 else h.argmax(axis=1)
    # END SOLUTION
    return classes


def targets(y, n_classes):
    """Targets for the perceptron: one 0/1 column for two classes, one-hot rows for more."""
    y = np.asarray(y)
    if n_classes == 2:
        return y[:, None].astype(np.float64)
    return np.eye(n_classes)[y]


def accuracy(w, x, y):
    """Fraction of the examples whose predicted class is ``y``."""
    return float(np.mean(predict(w, x) == y))


# %% [markdown]
# ## The OR gate
#
# Four examples, two inputs; the output is 1 when one input at least is 1. The two classes
# can be separated by a line, so the learning rule is guaranteed to find one and stop
# changing. The neuron fires where ``w_0 x_1 + w_1 x_2 - w_2 > 0``: its separating line is
# ``x_2 = (w_2 - w_0 x_1) / w_1``.

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import show

    x_or = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y_or = np.array([0, 1, 1, 1])
    w_or, or_history = train(x_or, targets(y_or, 2), lr=0.25, epochs=10, seed=0)
    or_accuracy = accuracy(w_or, x_or, y_or)
    print("weights (x1, x2, bias):", np.round(w_or[:, 0], 3))
    print("outputs:", predict(w_or, x_or), " targets:", y_or)
    print(f"OR gate accuracy: {100 * or_accuracy:.0f} %")

    fig, ax = plt.subplots(figsize=(4, 4))
    for label, marker in ((0, "o"), (1, "s")):
        ax.scatter(*x_or[y_or == label].T, marker=marker, s=80, label=f"OR = {label}")
    x1 = np.linspace(-0.5, 1.5, 2)
    ax.plot(x1, (w_or[2, 0] - w_or[0, 0] * x1) / w_or[1, 0], "k-", label="separating line")
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="$x_1$", ylabel="$x_2$",
           title="perceptron on the OR gate")
    ax.legend(loc="upper right", fontsize=8)
    show(fig, "or_gate")

# %% [markdown]
# ## Iris
#
# Three species, four measures. One neuron per class, trained to fire for its own class
# only. Setosa is separable from the others by a plane; versicolor is not, so its neuron
# never settles, and the training accuracy keeps jumping from one epoch to the next (which
# is why ``train`` keeps the best weights in its pocket). Inputs are normalised with the
# statistics of the training part only (you will write this normalisation yourself in the
# MLP practical; here it comes from ``nn.data``). 30 % of each class is held out for the
# test.

# %%
if __name__ == "__main__":
    from nn.data import (IRIS_CLASSES, PIMA_CLASSES, CenterMaxAbs, load_iris, load_pima,
                         train_valid_test_split)
    from nn.metrics import confusion_matrix, print_confusion

    def split_and_normalise(x, y, seed, test=0.3):
        """Stratified train/test parts, normalised with the training part's statistics."""
        parts = train_valid_test_split(x, y, valid=0.0, test=test, seed=seed, stratify=True)
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        norm = CenterMaxAbs().fit(x_train)
        return norm.transform(x_train), y_train, norm.transform(x_test), y_test

    SEED = 0
    xi_train, yi_train, xi_test, yi_test = split_and_normalise(*load_iris(), seed=SEED)
    w_iris, iris_history = train(xi_train, targets(yi_train, 3), lr=0.1, epochs=50, seed=SEED)
    iris_accuracy = accuracy(w_iris, xi_test, yi_test)
    print_confusion(confusion_matrix(yi_test, predict(w_iris, xi_test), 3), IRIS_CLASSES,
                    title=f"Iris, perceptron, {len(yi_test)} test flowers")

# %% [markdown]
# ## Pima Indians diabetes
#
# Eight clinical measures, two classes, so one neuron. 65 % of the women have no diabetes:
# a perceptron that always answered "no" would already reach 65 %, and the confusion matrix
# tells whether it learnt more than that.

# %%
if __name__ == "__main__":
    xp_train, yp_train, xp_test, yp_test = split_and_normalise(*load_pima(), seed=SEED)
    w_pima, pima_history = train(xp_train, targets(yp_train, 2), lr=0.1, epochs=50, seed=SEED)
    pima_accuracy = accuracy(w_pima, xp_test, yp_test)
    print_confusion(confusion_matrix(yp_test, predict(w_pima, xp_test), 2), PIMA_CLASSES,
                    title=f"Pima, perceptron, {len(yp_test)} test women")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in (("OR gate", or_history), ("Iris", iris_history),
                          ("Pima", pima_history)):
        ax.plot(np.arange(1, len(history) + 1), 100 * np.array(history), label=name)
    ax.set(xlabel="epoch", ylabel="training accuracy (%)",
           title="only separable data lets the perceptron settle")
    ax.legend()
    show(fig, "training_accuracy")

# %% [markdown]
# ## The same perceptron, packaged
#
# In ``nn`` the perceptron is a ``Dense`` layer (``y = x @ W + b``) followed by a ``Step``.
# The library keeps the bias apart from the weights: the course's weight on the input -1 is
# ``b`` with its sign flipped. Loading our trained Iris weights into these layers gives the
# same outputs.

# %%
if __name__ == "__main__":
    import nn
    from nn.layers import Dense, Step

    with nn.backends.using("numpy", "fp64"):
        net = nn.Network([Dense(4, 3, init="uniform"), Step()])
        net.layers[0].params["W"][...] = w_iris[:-1]
        net.layers[0].params["b"][...] = -w_iris[-1]
        same = np.array_equal(net.predict(xi_test), forward(w_iris, add_bias(xi_test)))
        print(net.summary())
    print("nn.Network gives the same outputs as forward:", same)

# %%
if __name__ == "__main__":
    print(f"OR gate accuracy:    {100 * or_accuracy:5.1f} %")
    print(f"Iris test accuracy:  {100 * iris_accuracy:5.1f} %  (at least 80 % expected)")
    print(f"Pima test accuracy:  {100 * pima_accuracy:5.1f} %  (at least 65 % expected)")
