# %% [markdown]
# # The multi-layer perceptron: backpropagation by hand on Iris and Pima
#
# **What you will learn.** The forward pass of a network of sigmoid neurons with slope
# ``beta``; how the error gradient is propagated back from the outputs to the hidden layer
# (you derive the course's deltas yourself); online, mini-batch and full-batch gradient
# descent; why the inputs are normalised, and with which statistics; how to monitor the
# training with the error and the confusion matrix; and how the hidden size and the learning
# rate change the result (an exploration).
#
# **Estimated time:** 3 h to 4 h (★ a few minutes, ★★ up to half an hour, ★★★ the
# derivation, up to an hour).
#
# Slides (course's master lectures, `004_3d9df880d40eb3ff.txt`): "Constructing a 'Deep'
# Neural Network" (the sigmoid and its derivative), "Error gradient backpropagation" and
# "Actual Network equations for an MLP with a single hidden layer" (the deltas), "How to
# measure classification performance?" (the confusion matrix), "Network depth and size" and
# "Learning rate" (the exploration), "Monitoring overtraining" and "Normalization".
#
# The network: inputs ``x_i`` (with the bias input **-1** appended, as in the perceptron),
# one hidden layer of sigmoid neurons with weights ``v_ij``, an output layer of sigmoid
# neurons with weights ``w_jk``; the hidden layer gets its own bias input -1 too. With
# ``g(h) = 1 / (1 + exp(-beta h))``:
#
#     hidden:  h_j = sum_i x_i v_ij,    a_j = g(h_j)
#     output:  h_k = sum_j a_j w_jk,    y_k = g(h_k)
#
# and the error of one example is the slides' ``E = 1/2 sum_k (y_k - t_k)^2``. In the code,
# ``w1`` holds the ``v_ij`` (shape ``(F + 1, H)``, last row for the bias input) and ``w2``
# the ``w_jk`` (shape ``(H + 1, K)``). Over a batch of examples, the gradients are
# **averaged**, so that the learning rate does not depend on the batch size (with one
# example per batch, the slides' online rule).
#
# Where this practical departs from the slides: the initial weights are uniform in
# ``±1/sqrt(fan-in)`` rather than ``±0.01`` (the hidden neurons then start different enough
# to learn quickly); and on Pima the held-out accuracy is about 75 %, not the slides' 90 %,
# which was measured on 50 test rows.
#
# You write the sigmoid and its derivative, the normalisation, the forward pass, the deltas,
# the gradients, the evaluation with its confusion matrix, the whole training loop, and the
# hidden-size / learning-rate study. At the end the same network built from the library's
# layers gives the same gradients as yours.

# %%
import numpy as np

from nn.metrics import format_confusion


def add_bias(x):
    """``(N, F)`` -> ``(N, F + 1)``: the bias input -1 appended (as in the perceptron)."""
    return np.concatenate([x, -np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)


def sigmoid(h, beta=1.0):
    """The logistic activation ``g(h)`` with slope ``beta``, element-wise, same shape. ★

    Slide "Constructing a 'Deep' Neural Network". It must not warn or return NaN for large
    ``|h|`` (``g`` tends to 0 and 1 there).
    """
    raise NotImplementedError("★ the slide's logistic function of beta times h, element by element")
    return a


def sigmoid_derivative(a, beta=1.0):
    """``dg/dh``, written with the sigmoid's own output ``a = g(h)`` (same shape as ``a``). ★

    The slide gives its "nice derivative form"; check it by differentiating ``g``.
    """
    raise NotImplementedError("★ the slide's derivative of the sigmoid, expressed with the output a only (no exponential needed)")
    return da


def fit_normalisation(x_train):
    """The course's normalisation statistics, from the training inputs ``(N, F)``. ★★

    Slide "Normalization" (and the course's starters): each feature is centred on its mean,
    then divided by its largest absolute deviation, so that it spans [-1, 1] on the training
    data. Apply them with :func:`normalise`, to the training data and, **unchanged**, to
    any other data (slide: "All labeled data must be normalized with the same values").

    Returns
    -------
    mean : (F,) the mean of each feature
    scale : (F,) the largest ``|x - mean|`` of each feature; 1 for a constant feature
        (it has nothing to divide, and must not give a division by zero)
    """
    raise NotImplementedError("★★ one mean per feature (per column, over the examples), then the largest absolute distance to it per feature, replaced by one where it is zero")
    return mean, scale


def normalise(x, mean, scale):
    """``(x - mean) / scale``, with the statistics of :func:`fit_normalisation`."""
    return (x - mean) / scale


def init_weights(n_inputs, n_hidden, n_outputs, rng):
    """Small random weights ``w1 (n_inputs + 1, n_hidden)`` and ``w2 (n_hidden + 1, n_outputs)``.

    Uniform in ``[-1/sqrt(n), 1/sqrt(n)]`` for a layer of ``n`` inputs, so that each weighted
    sum starts of order 1, in the sigmoid's steep part. The last row of each matrix is the
    weight of the bias input -1. Drawn from ``rng``, ``w1`` first.
    """
    a1, a2 = 1 / np.sqrt(n_inputs), 1 / np.sqrt(n_hidden)
    return (rng.uniform(-a1, a1, size=(n_inputs + 1, n_hidden)),
            rng.uniform(-a2, a2, size=(n_hidden + 1, n_outputs)))


def forward(w1, w2, x, beta=1.0):
    """Activations of the hidden and output layers, for a batch. ★★

    Parameters
    ----------
    w1 : (F + 1, H) weights ``v_ij`` of the hidden layer (last row: the bias input)
    w2 : (H + 1, K) weights ``w_jk`` of the output layer (last row: the bias input)
    x : (N, F) normalised inputs, without the bias column
    beta : float, slope of the sigmoids

    Returns
    -------
    hidden : (N, H) the hidden activations ``a_j`` (without the bias input)
    output : (N, K) the output activations ``y_k``
    """
    raise NotImplementedError("★★ the two layers of the equations above, one after the other; each layer's input gets its bias input before being weighed")
    return hidden, output


def error(output, t):
    """The quadratic error ``1/2 sum_k (y_k - t_k)^2`` of each example, averaged over the batch."""
    return 0.5 * np.sum((output - t) ** 2) / len(t)


def deltas(w2, hidden, output, t, beta=1.0):
    """The error signals ``delta = dE/dh`` of every neuron, for each example of a batch. ★★★

    Derive them yourself (slide "Error gradient backpropagation"), for the error ``E`` of one
    example: ``delta_o(k) = dE/dh_k`` for the output neurons, by the chain rule through
    ``y_k = g(h_k)``; then ``delta_h(j) = dE/dh_j`` for the hidden neurons, where ``E``
    depends on ``h_j`` through ``a_j`` and, from there, through every output's ``h_k``.
    Check your result against the slide "Actual Network equations for an MLP with a single
    hidden layer". The bias input of the hidden layer is a constant: its weights (the last
    row of ``w2``) carry no error back to any hidden neuron.

    Parameters
    ----------
    w2 : (H + 1, K) output weights
    hidden : (N, H), output : (N, K) the activations from :func:`forward`
    t : (N, K) targets
    beta : float

    Returns
    -------
    delta_h : (N, H) the hidden deltas
    delta_o : (N, K) the output deltas
    """
    raise NotImplementedError("★★★ the output deltas from the error and the slope of the output sigmoids; then every hidden delta, from the output deltas sent back through the weights that link that hidden neuron to the outputs, times the slope of its own sigmoid")
    return delta_h, delta_o


def gradients(w1, w2, x, t, beta=1.0):
    """Gradients of :func:`error` (the batch mean) with respect to both weight matrices. ★★

    Slide "Error gradient backpropagation": the derivative of ``E`` with respect to a weight
    is the delta of the neuron the weight feeds, times the activation the weight carries (an
    input with its bias -1, or a hidden activation with its bias -1). Sum these over the
    examples of the batch and divide by ``N``.

    Returns
    -------
    dw1 : (F + 1, H), dw2 : (H + 1, K) the gradients, shaped like ``w1`` and ``w2``
    """
    raise NotImplementedError("★★ the forward pass, the deltas, then for each layer the products of the activations it receives (with their bias input) and its deltas, summed over the examples (one matrix product per layer) and averaged")
    return dw1, dw2


def output_classes(output):
    """Class ids from the output activations ``(N, K)``: argmax, or ``> 0.5`` for K = 1."""
    if output.shape[1] == 1:
        return (output[:, 0] > 0.5).astype(np.int64)
    return output.argmax(axis=1)


def class_ids(t):
    """Class ids ``(N,)`` from targets: argmax of one-hot rows, the value of a 0/1 column."""
    return t[:, 0].astype(np.int64) if t.shape[1] == 1 else t.argmax(axis=1)


def evaluate(w1, w2, x, t, beta=1.0):
    """The network's quadratic error and confusion matrix on a set of examples. ★★

    What the course's ``confmat`` prints at each control step. The predicted class of an
    example is given by :func:`output_classes`, its true class by :func:`class_ids`.

    Parameters
    ----------
    w1, w2, x, beta : as in :func:`forward`
    t : (N, K) targets (one-hot rows, or one 0/1 column for two classes)

    Returns
    -------
    err : float, :func:`error` of the outputs
    cm : (C, C) int64 confusion matrix, ``C = max(K, 2)``; ``cm[i, j]`` counts the examples
        of true class ``i`` predicted as ``j`` (count it yourself, as in the perceptron)
    """
    raise NotImplementedError("★★ one forward pass over the set; the error of its outputs; then the table of counts of (true class, predicted class) pairs")
    return err, cm


def predict(w1, w2, x, beta=1.0):
    """Class ids ``(N,)``: the output neuron with the largest activation (or, for a single
    output neuron, 1 where it is above 0.5)."""
    return output_classes(forward(w1, w2, x, beta)[1])


def train(x, t, n_hidden=5, lr=0.5, epochs=100, batch_size=1, beta=1.0, seed=0,
          test=None, sampler=None, print_every=0, class_names=None):
    """Train the network by gradient descent on the quadratic error. ★★

    The course leaves this loop to you (its starters give only the data and the weights).
    What it must do:

    - random numbers from one generator, ``np.random.default_rng(seed)``, in this order: the
      initial weights (:func:`init_weights`), then, at the start of every epoch, the order of
      the examples: a permutation of ``0 .. N-1``, or, when ``sampler`` is given, the
      indices that ``sampler(rng)`` returns (the next practical uses it to rebalance the
      classes);
    - an epoch cuts its order into consecutive batches of ``batch_size`` examples (the last
      one may be shorter) and, after each batch, moves both weight matrices against their
      :func:`gradients`, scaled by the learning rate;
    - after each epoch, :func:`evaluate` the training set (and the test set, if given) and
      append to ``history`` the error and the accuracy (the fraction of the counts on the
      confusion matrix's diagonal);
    - every ``print_every`` epochs (if not 0) and after the last one, print the confusion
      matrix (of the test set if given, else of the training set) with
      ``nn.metrics.format_confusion`` and the epoch's errors, as the course's starters do.

    Parameters
    ----------
    x : (N, F) normalised training inputs
    t : (N, K) training targets (one-hot rows, or one 0/1 column)
    n_hidden : int, hidden neurons ``H``
    lr : float, learning rate ``eta``
    epochs : int, passes over the training set
    batch_size : int
        Examples per weight update: 1 is the online rule, ``N`` or more full-batch gradient
        descent, anything between stochastic (mini-batch) gradient descent.
    beta : float, slope of the sigmoids
    seed : int
    test : (x_test, t_test), optional, a held-out set, only measured (never trained on)
    sampler : callable, optional, ``sampler(rng) -> indices`` of one epoch, in order
    print_every : int, 0 for never
    class_names : sequence of str, optional, for the printed confusion matrix

    Returns
    -------
    w1, w2 : the trained weights
    history : dict of lists, one value per epoch: ``"train_error"``, ``"train_accuracy"``
        and, with a test set, ``"test_error"``, ``"test_accuracy"``
    """
    raise NotImplementedError("★★ the generator and the initial weights; then for each epoch: its order, one gradient step per batch, the measures appended to history, and the printout at the chosen epochs")
    return w1, w2, history


def targets(y, n_classes):
    """Network targets from class ids: one 0/1 column for two classes, one-hot rows for more."""
    y = np.asarray(y)
    return y[:, None].astype(np.float64) if n_classes == 2 else np.eye(n_classes)[y]


def accuracy(w1, w2, x, y, beta=1.0):
    """Fraction of the examples whose predicted class is ``y``."""
    return float(np.mean(predict(w1, w2, x, beta) == y))


def plot_errors(history, title):
    """The error curves of :func:`train`: training (and test) error per epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(history["train_error"]) + 1)
    ax.plot(epochs, history["train_error"], label="training")
    if "test_error" in history:
        ax.plot(epochs, history["test_error"], label="test")
    ax.set(xlabel="epoch", ylabel="quadratic error per example", title=title, yscale="log")
    ax.legend()
    return fig


# %% [markdown]
# ## Explore: hidden size and learning rate
#
# Slides "Network depth and size" and "Learning rate": finding the architecture and the
# learning rate "is always an exploratory and iterative process". Write ``study``: train one
# network per pair (hidden size, learning rate) on the training part and measure it on a
# **validation** part carved from the training data (slide "Monitoring overtraining": the
# test set is kept for the final measure, never for choices). It is graded by its outcome:
# every pair present, and the best pair as good as the measured reference.

# %%
def study(x_train, t_train, x_valid, t_valid, hidden_sizes, learning_rates, epochs=30,
          batch_size=1, beta=1.0, seed=0):
    """Validation accuracy for every (hidden size, learning rate). ★★ (exploration)

    Every network is trained with your :func:`train` from the same ``seed``, for ``epochs``
    epochs with ``batch_size``.

    Returns
    -------
    dict ``{(n_hidden, lr): accuracy}``, one entry per pair of ``hidden_sizes`` and
    ``learning_rates``, the accuracy on ``(x_valid, t_valid)`` a float in [0, 1]
    """
    raise NotImplementedError("★★ one training per pair of settings, and the accuracy of its network on the validation part (from your evaluate)")
    return table


def plot_study(table, title):
    """The table of :func:`study` as an image: hidden sizes down, learning rates across."""
    import matplotlib.pyplot as plt

    hidden = sorted({h for h, _ in table})
    rates = sorted({lr for _, lr in table})
    grid = np.array([[table[(h, lr)] for lr in rates] for h in hidden])
    fig, ax = plt.subplots(figsize=(1.2 * len(rates) + 2, 0.6 * len(hidden) + 1.5))
    image = ax.imshow(100 * grid, cmap="viridis", vmin=0, vmax=100)
    for i in range(len(hidden)):
        for j in range(len(rates)):
            ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center",
                    color="w" if grid[i, j] < 0.6 else "k")
    ax.set(xticks=range(len(rates)), xticklabels=[f"{lr:g}" for lr in rates],
           yticks=range(len(hidden)), yticklabels=hidden, xlabel="learning rate",
           ylabel="hidden neurons", title=title)
    fig.colorbar(image, ax=ax, label="validation accuracy (%)")
    return fig


# %% [markdown]
# ## Iris
#
# 4 inputs, 5 hidden neurons, 3 outputs (one per species, one-hot targets), trained online:
# one weight update per flower, in a new random order every epoch. 30 % of each species is
# held out as the test set. The confusion matrix of the test set is printed every 25 epochs.

# %%
if __name__ == "__main__":
    from nn.course import show
    from nn.data import (IRIS_CLASSES, PIMA_CLASSES, load_iris, load_pima,
                         train_valid_test_split)

    SEED = 0

    def prepare(x, y, seed, test=0.3):
        """Stratified train/test split, normalised with the training statistics."""
        parts = train_valid_test_split(x, y, valid=0.0, test=test, seed=seed, stratify=True)
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        mean, scale = fit_normalisation(x_train)
        return normalise(x_train, mean, scale), y_train, normalise(x_test, mean, scale), y_test

    xi_train, yi_train, xi_test, yi_test = prepare(*load_iris(), seed=SEED)
    w1_iris, w2_iris, iris_history = train(
        xi_train, targets(yi_train, 3), n_hidden=5, lr=0.5, epochs=100, batch_size=1,
        seed=SEED, test=(xi_test, targets(yi_test, 3)), print_every=25,
        class_names=IRIS_CLASSES)
    iris_accuracy = accuracy(w1_iris, w2_iris, xi_test, yi_test)
    show(plot_errors(iris_history, "Iris, online"), "iris_errors")

# %% [markdown]
# ## Pima Indians diabetes
#
# 8 inputs, 5 hidden neurons, one output neuron (1 = diabetes), online, 30 epochs. Watch the
# two error curves: when the test error stops falling while the training error still
# falls, the network starts learning the training women by heart (over-fitting), and more
# epochs would not help. (A 0 in glucose, blood pressure, skin-fold, insulin or body-mass
# index means "not measured"; replacing those zeros by the median of the measured training
# values is worth a try.) The slides' 90 % was measured on 50 test rows; on 230 held-out
# women expect about 75 %.

# %%
if __name__ == "__main__":
    xp_train, yp_train, xp_test, yp_test = prepare(*load_pima(), seed=SEED)
    w1_pima, w2_pima, pima_history = train(
        xp_train, targets(yp_train, 2), n_hidden=5, lr=0.1, epochs=30, batch_size=1,
        seed=SEED, test=(xp_test, targets(yp_test, 2)), print_every=10,
        class_names=PIMA_CLASSES)
    pima_accuracy = accuracy(w1_pima, w2_pima, xp_test, yp_test)
    show(plot_errors(pima_history, "Pima, online"), "pima_errors")

# %% [markdown]
# ## The study, on Iris and on Pima
#
# A validation part (25 % of each class) is carved from the **training** part; the test part
# above is not touched. Which learning rates are too small to learn anything in 30 epochs?
# Which are so large that the training becomes unstable? How many hidden neurons does Iris
# need (slide: "how many would you need by eye?"), and does Pima gain from more?

# %%
if __name__ == "__main__":
    HIDDEN, RATES = (1, 2, 5, 10, 20), (0.001, 0.01, 0.1, 0.5, 2.0, 10.0)
    for name, (xs, ys, n_classes) in {"Iris": (xi_train, yi_train, 3),
                                      "Pima": (xp_train, yp_train, 2)}.items():
        parts = train_valid_test_split(xs, ys, valid=0.0, test=0.25, seed=SEED, stratify=True)
        (x_fit, y_fit), (x_valid, y_valid) = parts["train"], parts["test"]
        table = study(x_fit, targets(y_fit, n_classes), x_valid, targets(y_valid, n_classes),
                      HIDDEN, RATES, epochs=30, seed=SEED)
        best = max(table, key=table.get)
        print(f"{name}: best validation accuracy {100 * table[best]:.1f} % with "
              f"{best[0]} hidden neurons and a learning rate of {best[1]:g}")
        show(plot_study(table, f"{name}: validation accuracy after 30 epochs"),
             f"study_{name.lower()}")

# %% [markdown]
# ## The same network, packaged
#
# ``nn`` builds this network from layers: ``Dense`` (``y = x @ W + b``), ``Sigmoid(beta)``,
# and the loss ``MSE`` (the same quadratic error, averaged over the batch). ``Dense`` keeps
# the bias apart: the course's weight on the input -1 is ``b`` with its sign flipped. With
# our weights loaded, one forward and backward pass gives the same gradients as
# :func:`gradients`, to rounding.

# %%
if __name__ == "__main__":
    import nn
    from nn.gradcheck import rel_error
    from nn.layers import Dense, Sigmoid
    from nn.losses import MSE

    beta = 1.0
    ti_train = targets(yi_train, 3)
    with nn.backends.using("numpy", "fp64"):
        net = nn.Network([Dense(4, 5), Sigmoid(beta), Dense(5, 3), Sigmoid(beta)], MSE())
        for dense, w in ((net.layers[0], w1_iris), (net.layers[2], w2_iris)):
            dense.params["W"][...] = w[:-1]
            dense.params["b"][...] = -w[-1]
        net.loss.forward(net.forward(xi_train), ti_train)
        net.backward(net.loss.backward())
        print(net.summary())
    dw1, dw2 = gradients(w1_iris, w2_iris, xi_train, ti_train, beta)
    for name, dense, dw in (("hidden", net.layers[0], dw1), ("output", net.layers[2], dw2)):
        print(f"{name} layer: relative difference of the gradients, weights "
              f"{rel_error(dense.grads['W'], dw[:-1]):.1e}, bias "
              f"{rel_error(dense.grads['b'], -dw[-1]):.1e}")

# %%
if __name__ == "__main__":
    print(f"Iris test accuracy: {100 * iris_accuracy:5.1f} %  (at least 95 % expected)")
    print(f"Pima test accuracy: {100 * pima_accuracy:5.1f} %  (at least 75 % expected)")
