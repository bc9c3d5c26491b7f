# %% [markdown]
# # The perceptron: OR gate, Iris and Pima with a step neuron written by hand
#
# **What you will learn.** How one binary neuron makes a linear separation; why it needs a
# bias input; how the perceptron learning rule follows from an error function; how to train
# it online, epoch after epoch; how to read a confusion matrix (recall, precision,
# accuracy); and why one neuron can learn OR but never XOR.
#
# **Estimated time:** 2 h to 2 h 30 (★ a few minutes, ★★ up to half an hour).
#
# The slides are the course's master lectures (`004_3d9df880d40eb3ff.txt`): "Model of a
# Neuron", "Training a Neuron", "The bias node", "The Perceptron algorithm" and "How to
# measure classification performance? → Confusion Matrix". Keep them open.
#
# Rosenblatt's perceptron is one layer of McCulloch-Pitts neurons. Neuron ``j`` adds up its
# inputs ``x_i`` weighted by ``w_ij`` and fires (outputs 1) when the sum ``h_j`` is positive,
# else it stays at 0. Each example gets one more input, fixed at **-1** (the bias node),
# whose weight learns the threshold, so that the separating plane need not pass through 0.
# In this practical the bias input is the **last** column of the inputs and its weight the
# **last** row of ``w``; ``w`` has shape ``(F + 1, K)`` for ``F`` features and ``K``
# neurons.
#
# **Sign convention.** The slides write the learning rule twice, once with ``+`` ("Training
# a Neuron") and once with ``-`` ("The Perceptron algorithm"). This practical uses the second
# one: the error term is *output minus target*, ``a - t``, and the correction is
# **subtracted**, as in gradient descent on ``E = 1/2 (a - t)^2``. Why this one: a neuron
# that fires when it should not (``a - t = +1``) must have its weights **lowered** (same
# slide), so the term in ``a - t`` must come with a minus sign; the ``+`` form is the same
# rule only if its difference is read as ``t - a``.
#
# You write the neuron, the forward pass, the learning rule, the whole training loop, the
# prediction, the confusion matrix and its scores, and two small explorations. The
# experiments (the OR gate, Iris, the Pima diabetes table) are given; at the end the same
# perceptron is built from the library's layers ``Dense`` and ``Step``.

# %%
import numpy as np


def add_bias(x):
    """Append the constant bias input -1 to every example. ★

    Parameters
    ----------
    x : (N, F) array

    Returns
    -------
    (N, F + 1) array: ``x`` unchanged in the first ``F`` columns, -1 in the last one
    """
    raise NotImplementedError('★ glue one more column to the right of x, holding the bias input of the slide "The bias node" for every example')
    return xb


def init_weights(n_inputs, n_outputs, rng):
    """The course's small random start: ``(n_inputs + 1, n_outputs)`` weights, U(-0.01, 0.01).

    The extra (last) row is the weight of the bias input -1. Given: slide "The Perceptron
    algorithm", Initialization.
    """
    return rng.uniform(-0.01, 0.01, size=(n_inputs + 1, n_outputs))


def step(h, threshold=0.0):
    """The perceptron's binary activation ``g(h)``: 1.0 where ``h > threshold``, else 0.0. ★

    Same shape as ``h``, floats (0.0 and 1.0) so that ``a - t`` is a number. Note the strict
    inequality of the slide "Model of a Neuron": ``h == threshold`` gives 0.
    """
    raise NotImplementedError('★ the activation of the slide "Model of a Neuron": one where the sum is strictly above the threshold, zero elsewhere, as floats of the shape of h')
    return a


def forward(w, xb):
    """Activations of all the neurons, for a batch of examples. ★

    Parameters
    ----------
    w : (F + 1, K) weights, the last row for the bias input
    xb : (N, F + 1) inputs with the bias column (see :func:`add_bias`)

    Returns
    -------
    a : (N, K) array of 0.0 and 1.0, ``a[n, j]`` the output of neuron ``j`` for example
        ``n`` (slide "The Perceptron algorithm": ``h_j`` then ``g(h_j)``)
    """
    raise NotImplementedError("★ every weighted sum h_j of every example at once (one matrix product between the inputs and the weights), then the step activation")
    return a


def update(w, xb, t, lr):
    """One online step of the perceptron learning rule, for a single example. ★★

    Derive it from the slides "Training a Neuron" and "The Perceptron algorithm": the change
    of ``w_ij`` is proportional to the input ``x_i`` that the weight carries, to the error of
    its neuron ``j`` (the derivative of ``E = 1/2 (a_j - t_j)^2`` with the step's slope left
    out) and to the learning rate, with the sign convention stated at the top of this file.
    Check your signs on a neuron that fired when its target was 0: its weights on positive
    inputs must go down.

    Parameters
    ----------
    w : (F + 1, K) weights (do not modify it in place: return new weights)
    xb : (F + 1,) one example, with its bias input
    t : (K,) its targets, 0.0 or 1.0
    lr : float, the learning rate ``eta``

    Returns
    -------
    (F + 1, K) updated weights. A neuron whose output equals its target keeps its weights.
    """
    raise NotImplementedError('★★ first the outputs of the K neurons for this one example, then change every weight w_ij by the rule of the slide "The Perceptron algorithm" (all (F + 1) x K of them at once: each pairs one input with one neuron\'s error)')
    return w


def class_ids(t):
    """Class ids ``(N,)`` from targets ``(N, K)``: the 0/1 value for one neuron, else argmax."""
    return t[:, 0].astype(np.int64) if t.shape[1] == 1 else t.argmax(axis=1)


def train(x, t, lr=0.1, epochs=50, seed=0):
    """Train a perceptron online: the procedure of the slide "The Perceptron algorithm". ★★

    What the procedure must do, in order:

    - random numbers come from one generator, ``np.random.default_rng(seed)``, and are
      drawn in this order (so that a run can be repeated, and checked): first the initial
      weights with :func:`init_weights`, then, at the start of every epoch, a new random
      order of the ``N`` examples (a permutation of ``0 .. N-1``);
    - an epoch visits every example once, in that order, and applies :func:`update` to
      it (online learning: the weights change after each example);
    - after each epoch, the training accuracy (:func:`accuracy`, with the class ids that
      :func:`class_ids` reads from ``t``) is appended to ``history``;
    - when the classes cannot be separated by a plane the rule never settles and the last
      weights may be poor, so keep a copy of the weights of the epoch with the best
      training accuracy (the first such epoch on ties: the "pocket" of Gallant 1990) and
      return them;
    - stop early once every training example is classified correctly (slide: "or until
      the output is correct").

    Parameters
    ----------
    x : (N, F) inputs (without the bias column)
    t : (N, K) targets, 0 or 1 (one column per neuron)
    lr : float, learning rate
    epochs : int, the largest number of passes over the training set
    seed : int

    Returns
    -------
    best_w : (F + 1, K) the weights of the best epoch
    history : list of floats, the training accuracy after each epoch that was run
    """
    raise NotImplementedError("★★ the generator, the initial weights, then for each epoch: a fresh random order, one update per example, the training accuracy, the pocket and the early stop described above")
    return best_w, history


def predict(w, x):
    """Predicted class ids ``(N,)`` for raw inputs ``x (N, F)``. ★

    With one neuron (K = 1) the class is its output, 0 or 1. With several (one per class,
    slide "The Perceptron algorithm", one-hot targets), several neurons may fire at once,
    or none: the class is the neuron with the **largest weighted sum** ``h``, the most
    convinced one.
    """
    raise NotImplementedError("★ the weighted sums of the examples with their bias input; then either the single neuron's step output, or the index of the largest sum of each example, as integers")
    return classes


def accuracy(w, x, y):
    """Fraction of the examples whose predicted class is ``y``."""
    return float(np.mean(predict(w, x) == y))


def targets(y, n_classes):
    """Targets for the perceptron: one 0/1 column for two classes, one-hot rows for more."""
    y = np.asarray(y)
    if n_classes == 2:
        return y[:, None].astype(np.float64)
    return np.eye(n_classes)[y]


def confusion(y, predicted, n_classes):
    """The confusion matrix of the slide "How to measure classification performance?". ★★

    Parameters
    ----------
    y : (N,) int, the true classes
    predicted : (N,) int, the predicted classes
    n_classes : int, ``C`` (a class may have no example and never be predicted)

    Returns
    -------
    cm : (C, C) int64, ``cm[i, j]`` = number of examples of true class ``i`` predicted as
        class ``j`` (rows: the truth, "Actual"; columns: the prediction, "Predicted")
    """
    raise NotImplementedError("★★ start from a C x C table of integer zeros and count each example once, in the row of its true class and the column of its predicted class")
    return cm


def scores(cm):
    """Recall and precision of each class, and the accuracy, from a confusion matrix. ★★

    The slide's definitions, for class ``i``: recall ``TP / (TP + FN)`` (the fraction of
    its examples that were found), precision ``TP / (TP + FP)`` (the fraction of the
    examples predicted as ``i`` that really are ``i``); accuracy, the fraction of all
    examples classified correctly. Read TP, FN and FP in the rows and columns of ``cm``.

    Returns
    -------
    recall : (C,) floats in [0, 1], NaN for a class with no example
    precision : (C,) floats in [0, 1], NaN for a class that is never predicted
    accuracy : float
    """
    raise NotImplementedError("★★ the diagonal holds the true positives; the totals of the rows and of the columns hold the rest; divide only where a total is not zero and leave NaN elsewhere")
    return recall, precision, accuracy


# %% [markdown]
# ## Explore: what can one neuron learn?
#
# Slide "The Perceptron algorithm": *each neuron only performs a linear separation*. Check
# it on the logic gates. ``gate_study`` trains one neuron on each gate of ``GATES`` (the four
# inputs of ``GATE_INPUTS``, one target column) and returns its best training accuracy.
# Which gates reach 100 %? Why can XOR never do better than 3 out of 4?
#
# Then make XOR learnable without changing the neuron: ``xor_features`` computes, from the
# two inputs of each example only, the inputs you give the neuron (the two originals and/or
# new ones). Find features that make the two XOR classes separable by a plane. This is
# graded by its outcome (a perceptron trained on your features reaches 100 % on XOR), not by
# which features you chose. This is what the hidden layer of the next practical will learn
# to do by itself.

# %%
GATE_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "NAND": [1, 1, 1, 0], "XOR": [0, 1, 1, 0]}


def gate_study(lr=0.25, epochs=30, seed=0):
    """Best training accuracy of one neuron on every gate of ``GATES``. ★

    Returns
    -------
    dict ``{gate name: accuracy}`` with a float in [0, 1] for every gate of ``GATES``
    """
    raise NotImplementedError("★ one perceptron per gate, trained with your train on the four inputs and that gate's outputs as a single target column; keep the best training accuracy it reached")
    return study


def xor_features(x):
    """Inputs for a single neuron that make XOR linearly separable. ★★ (open)

    Parameters
    ----------
    x : (N, 2) array of 0.0 and 1.0, the two inputs of each example

    Returns
    -------
    (N, F) array, ``F >= 1``: the features of each example, computed from its own two
    inputs only (the function never sees the targets)
    """
    raise NotImplementedError("★★ your choice: features computed from each example's own two inputs, at least one of them not a weighted sum of the inputs (a plane in the old inputs stays a plane)")
    return features


# %% [markdown]
# ## The OR gate
#
# Four examples, two inputs; the output is 1 when one input at least is 1. The two classes
# can be separated by a line, so the learning rule is guaranteed to find one and stop
# changing. The neuron fires where ``w_0 x_1 + w_1 x_2 - w_2 > 0``: its separating line is
# ``x_2 = (w_2 - w_0 x_1) / w_1`` (slide "The bias node").

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import show

    x_or, y_or = GATE_INPUTS, np.array(GATES["OR"])
    w_or, or_history = train(x_or, targets(y_or, 2), lr=0.25, epochs=10, seed=0)
    or_accuracy = accuracy(w_or, x_or, y_or)
    print("weights (x1, x2, bias):", np.round(w_or[:, 0], 3))
    print("outputs:", predict(w_or, x_or), " targets:", y_or)
    print(f"OR gate accuracy: {100 * or_accuracy:.0f} % after {len(or_history)} epochs")

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
# ## Gates, and XOR made separable

# %%
if __name__ == "__main__":
    print("best training accuracy of one neuron per gate:")
    for gate, acc in gate_study().items():
        print(f"  {gate:>4}: {100 * acc:5.1f} %")
    y_xor = np.array(GATES["XOR"])
    w_xor, xor_history = train(xor_features(GATE_INPUTS), targets(y_xor, 2), lr=0.25,
                               epochs=30, seed=0)
    print(f"XOR with your features: {100 * max(xor_history):.0f} % "
          f"after {len(xor_history)} epochs")

# %% [markdown]
# ## Iris
#
# Three species, four measures. One neuron per class, trained to fire for its own class
# only. Setosa is separable from the others by a plane; versicolor is not, so its neuron
# never settles, and the training accuracy keeps jumping from one epoch to the next (which
# is why ``train`` keeps the best weights in its pocket). Inputs are normalised with the
# statistics of the training part only (you will write this normalisation yourself in the
# MLP practical; here it comes from ``nn.data``). 30 % of each class is held out for the
# test. The slides quote 80 % for a perceptron on Iris; with the pocket and a held-out 30 %
# we measure more.

# %%
if __name__ == "__main__":
    from nn.data import (IRIS_CLASSES, PIMA_CLASSES, CenterMaxAbs, load_iris, load_pima,
                         train_valid_test_split)
    from nn.metrics import format_confusion

    def split_and_normalise(x, y, seed, test=0.3):
        """Stratified train/test parts, normalised with the training part's statistics."""
        parts = train_valid_test_split(x, y, valid=0.0, test=test, seed=seed, stratify=True)
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        norm = CenterMaxAbs().fit(x_train)
        return norm.transform(x_train), y_train, norm.transform(x_test), y_test

    SEED = 0
    xi_train, yi_train, xi_test, yi_test = split_and_normalise(*load_iris(), seed=SEED)
    w_iris, iris_history = train(xi_train, targets(yi_train, 3), lr=0.1, epochs=50, seed=SEED)
    cm_iris = confusion(yi_test, predict(w_iris, xi_test), 3)
    recall, precision, iris_accuracy = scores(cm_iris)
    print(format_confusion(cm_iris, IRIS_CLASSES,
                           title=f"Iris, perceptron, {len(yi_test)} test flowers"))
    print("your recall:", np.round(100 * recall, 1), " precision:", np.round(100 * precision, 1))

# %% [markdown]
# ## Pima Indians diabetes
#
# Eight clinical measures, two classes, so one neuron. 65 % of the women have no diabetes:
# a perceptron that always answered "no" would already reach 65 %, and the confusion matrix
# tells whether it learnt more than that (look at the recall of "diabetes"). The slides quote
# 70 % for a perceptron.

# %%
if __name__ == "__main__":
    xp_train, yp_train, xp_test, yp_test = split_and_normalise(*load_pima(), seed=SEED)
    w_pima, pima_history = train(xp_train, targets(yp_train, 2), lr=0.1, epochs=50, seed=SEED)
    cm_pima = confusion(yp_test, predict(w_pima, xp_test), 2)
    pima_accuracy = scores(cm_pima)[2]
    print(format_confusion(cm_pima, PIMA_CLASSES,
                           title=f"Pima, perceptron, {len(yp_test)} test women"))

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
